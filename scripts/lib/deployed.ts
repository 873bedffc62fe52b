// What the smoke check and the status report read from a deployed stack:
// its outputs (`pulumi stack output`), a config value (`pulumi config get`)
// and the certificate its HTTPS port presents.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as tls from "tls";

const PROJECT_ROOT = path.resolve(__dirname, "../..");

/**
 * The stack's outputs as `pulumi stack output --json` prints them (secrets
 * shown as "[secret]"). Uses the passphrase file scripts/stack.sh keeps
 * beside the local state unless a passphrase is given.
 */
export function stackOutputs(stack = process.env.STACK ?? "dev"): Record<string, unknown> {
    const json = execFileSync("pulumi", ["stack", "output", "--json", "--stack", stack], { cwd: PROJECT_ROOT, env: pulumiEnv(), encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    return JSON.parse(json);
}

/** One config value of the stack (`pulumi config get`, secrets decrypted); undefined when the key is not set. */
export function stackConfigValue(stack: string, key: string): string | undefined {
    try {
        return execFileSync("pulumi", ["config", "get", key, "--stack", stack], { cwd: PROJECT_ROOT, env: pulumiEnv(), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).replace(/\n$/, "");
    } catch (error) {
        const stderr = String((error as { stderr?: unknown }).stderr ?? "");
        if (/configuration key .* not found/i.test(stderr)) return undefined;
        throw new Error(`pulumi config get ${key} --stack ${stack}: ${stderr.trim().split("\n")[0] || (error instanceof Error ? error.message : String(error))}`);
    }
}

/** The environment pulumi runs in: the passphrase file scripts/stack.sh keeps beside the local state, unless a passphrase is given. */
function pulumiEnv(): NodeJS.ProcessEnv {
    const env = { ...process.env };
    const passphraseFile = path.join(PROJECT_ROOT, ".pulumi-state", "passphrase");
    if (!env.PULUMI_CONFIG_PASSPHRASE && !env.PULUMI_CONFIG_PASSPHRASE_FILE && fs.existsSync(passphraseFile)) env.PULUMI_CONFIG_PASSPHRASE_FILE = passphraseFile;
    return env;
}

export interface PeerCertificate {
    certPem: string;
    protocol: string | null;
    alpn: string | false | null;
    authorized: boolean;
    authorizationError?: string;
}

/** One TLS handshake with `url`'s host and port: the certificate it presents and whether `ca` (or the system store) trusts it. */
export function peerCertificate(url: string, options: { ca?: string; insecure?: boolean } = {}): Promise<PeerCertificate> {
    const target = new URL(url);
    return new Promise((resolve, reject) => {
        const socket = tls.connect(
            {
                host: target.hostname.replace(/^\[|\]$/g, ""),
                port: Number(target.port || 443),
                ca: options.ca,
                rejectUnauthorized: !options.insecure,
                servername: /^[\d.]+$|:/.test(target.hostname) ? undefined : target.hostname,
                ALPNProtocols: ["h2", "http/1.1"],
            },
            () => {
                const cert = socket.getPeerX509Certificate();
                const facts = { protocol: socket.getProtocol(), alpn: socket.alpnProtocol, authorized: socket.authorized, authorizationError: socket.authorizationError?.toString() };
                socket.end();
                if (!cert) return reject(new Error("no certificate presented"));
                resolve({ certPem: cert.toString(), ...facts });
            },
        );
        socket.once("error", reject);
        socket.setTimeout(10_000, () => socket.destroy(new Error("TLS handshake timed out")));
    });
}
