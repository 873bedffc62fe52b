// Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven
// by playwright-core (no browser download), with its own HOME so the NSS
// certificate database it reads is a throwaway one, and a helper that trusts
// a CA in that database the way a user does on Linux (`certutil`, from
// Debian's libnss3-tools). scripts/trust-ca.sh mirrors trustCaForUser().
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Browser, chromium } from "playwright-core";

/** Debian's Chromium (package `chromium`); CI installs it. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/** The nickname the CA gets in the user's NSS database. */
export const CA_NICKNAME = "https-ml-api local CA"; // as scripts/trust-ca.sh names it

function requireTool(file: string, what: string, debianPackage: string): void {
    if (!fs.existsSync(file)) {
        throw new Error(`${what} not found at ${file}: install Debian's ${debianPackage} package (apt-get install -y ${debianPackage}); CI installs it.`);
    }
}

/** A fresh, empty home directory for one browser (its ~/.pki/nssdb is Chromium's trust store on Linux). */
export function makeBrowserHome(prefix = "mlapi-browser-home-"): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Launches Debian's headless Chromium with HOME set to `home` (so it uses that home's NSS database). */
export async function launchChromium(options: { home: string }): Promise<Browser> {
    requireTool(CHROMIUM_PATH, "Chromium", "chromium");
    return chromium.launch({
        executablePath: CHROMIUM_PATH,
        args: CHROMIUM_ARGS,
        env: { ...process.env, HOME: options.home },
        timeout: 30_000,
    });
}

/** The NSS shared database Chromium on Linux reads for user-trusted certificates. */
export function nssDbDir(home: string): string {
    return path.join(home, ".pki", "nssdb");
}

function certutil(args: string[]): string {
    const certutilPath = "/usr/bin/certutil";
    requireTool(certutilPath, "certutil", "libnss3-tools");
    const result = spawnSync(certutilPath, args, { encoding: "utf8", timeout: 10_000 });
    if (result.status !== 0) {
        throw new Error(`certutil ${args.join(" ")} failed (${result.status}): ${result.stdout}${result.stderr}`);
    }
    return result.stdout;
}

/**
 * Trusts the CA in `caPemFile` for websites, for the user whose home is `home`:
 * creates ~/.pki/nssdb if it is missing (as Chromium would, empty password),
 * then `certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n mlapi-local-ca -i ca.pem`.
 * Chromium must be (re)started afterwards to see it.
 */
export function trustCaForUser(home: string, caPemFile: string): void {
    // The user's command (scripts/trust-ca.sh), limited to this HOME's browsers.
    requireTool("/usr/bin/certutil", "certutil", "libnss3-tools");
    const result = spawnSync("bash", [path.join(__dirname, "../../scripts/trust-ca.sh"), "--browsers", "--ca-file", caPemFile], {
        encoding: "utf8",
        env: { ...process.env, HOME: home },
        timeout: 20_000,
    });
    if (result.status !== 0) throw new Error(`trust-ca.sh failed (${result.status}): ${result.stdout}${result.stderr}`);
}

/** The trust flags of `nickname` in the user's NSS database (e.g. "C,,"), or undefined if absent. */
export function trustedCaFlags(home: string, nickname = CA_NICKNAME): string | undefined {
    const dir = nssDbDir(home);
    if (!fs.existsSync(path.join(dir, "cert9.db"))) return undefined;
    const listing = certutil(["-d", `sql:${dir}`, "-L"]);
    const line = listing.split("\n").find((l) => l.startsWith(`${nickname} `));
    return line?.trim().split(/\s+/).pop();
}
