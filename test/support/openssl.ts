// Issues keys and certificates with OpenSSL the way the tls provider does
// (same subject, SANs, key type, usages and validity). The unit tests' mock
// provider and the end-to-end harness both use it, so every certificate a
// test sees is a real one made from the stack's settings.
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CertificateSubject, KeyAlgorithm } from "../../components/config";
import { opensslSubject } from "../../components/certificate";

/** The tls provider's usage names (snake_case) and OpenSSL's names for them. */
const KEY_USAGE_NAMES: Record<string, string> = {
    digital_signature: "digitalSignature",
    key_encipherment: "keyEncipherment",
    cert_signing: "keyCertSign",
    crl_signing: "cRLSign",
};
const EXTENDED_USAGE_NAMES: Record<string, string> = { server_auth: "serverAuth", client_auth: "clientAuth" };

/** A private key in the PEM encoding the tls provider uses (PKCS#1 for RSA, SEC1 for ECDSA). */
export function generateKey(algorithm: KeyAlgorithm): string {
    const [family, size] = algorithm.split("-");
    if (family === "RSA") {
        return crypto.generateKeyPairSync("rsa", { modulusLength: Number(size) }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    }
    const namedCurve = size === "P256" ? "prime256v1" : "secp384r1";
    return crypto.generateKeyPairSync("ec", { namedCurve }).privateKey.export({ type: "sec1", format: "pem" }).toString();
}

export interface CertificateRequest {
    keyPem: string;
    subject: CertificateSubject;
    dnsNames?: string[];
    ipAddresses?: string[];
}

export interface CertificateOptions extends CertificateRequest {
    validityHours: number;
    allowedUses: string[];
    isCa?: boolean;
}

/** Runs openssl; what it says on stderr ("Certificate request self-signature ok") is only shown when it fails. */
function openssl(args: string[]): Buffer {
    return execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
}

function inTempDir<T>(work: (dir: string) => T): T {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-openssl-"));
    try {
        return work(dir);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function subjectAltName(req: CertificateRequest): string | undefined {
    const names = [...(req.dnsNames ?? []).map((n) => `DNS:${n}`), ...(req.ipAddresses ?? []).map((ip) => `IP:${ip}`)];
    return names.length ? names.join(",") : undefined;
}

function extensionLines(opts: CertificateOptions): string[] {
    const unknown = opts.allowedUses.filter((u) => !Object.hasOwn(KEY_USAGE_NAMES, u) && !Object.hasOwn(EXTENDED_USAGE_NAMES, u));
    if (unknown.length) throw new Error(`openssl helper: no OpenSSL name for the usage(s) ${unknown.join(", ")}`);
    const keyUsage = opts.allowedUses.filter((u) => Object.hasOwn(KEY_USAGE_NAMES, u)).map((u) => KEY_USAGE_NAMES[u]);
    const extended = opts.allowedUses.filter((u) => Object.hasOwn(EXTENDED_USAGE_NAMES, u)).map((u) => EXTENDED_USAGE_NAMES[u]);
    const san = subjectAltName(opts);
    return [
        `basicConstraints = critical, CA:${opts.isCa ? "TRUE, pathlen:0" : "FALSE"}`,
        ...(keyUsage.length ? [`keyUsage = critical, ${keyUsage.join(", ")}`] : []),
        ...(extended.length ? [`extendedKeyUsage = ${extended.join(", ")}`] : []),
        ...(san ? [`subjectAltName = ${san}`] : []),
        "subjectKeyIdentifier = hash",
    ];
}

function days(hours: number): string {
    return String(Math.max(1, Math.round(hours / 24)));
}

export function selfSignedCert(opts: CertificateOptions): string {
    return inTempDir((dir) => {
        fs.writeFileSync(path.join(dir, "key.pem"), opts.keyPem, { mode: 0o600 });
        fs.writeFileSync(path.join(dir, "ext.cnf"), ["[req]", "distinguished_name = dn", "[dn]", "[ext]", ...extensionLines(opts)].join("\n"));
        return openssl([
            "req", "-x509", "-new", "-sha256", "-key", path.join(dir, "key.pem"), "-subj", opensslSubject(opts.subject),
            "-days", days(opts.validityHours), "-config", path.join(dir, "ext.cnf"), "-extensions", "ext",
        ]).toString();
    });
}

export function certRequest(req: CertificateRequest): string {
    return inTempDir((dir) => {
        fs.writeFileSync(path.join(dir, "key.pem"), req.keyPem, { mode: 0o600 });
        const san = subjectAltName(req);
        return openssl([
            "req", "-new", "-sha256", "-key", path.join(dir, "key.pem"), "-subj", opensslSubject(req.subject),
            ...(san ? ["-addext", `subjectAltName = ${san}`] : []),
        ]).toString();
    });
}

/** Signs a CSR with a CA, keeping the CSR's SANs (as tls.LocallySignedCert does). */
export function signCert(opts: { csrPem: string; caCertPem: string; caKeyPem: string; validityHours: number; allowedUses: string[] }): string {
    return inTempDir((dir) => {
        const file = (name: string, content: string) => {
            fs.writeFileSync(path.join(dir, name), content, { mode: 0o600 });
            return path.join(dir, name);
        };
        const csrSans = openssl(["req", "-noout", "-text", "-in", file("req.pem", opts.csrPem)]).toString();
        const sanLine = /X509v3 Subject Alternative Name:\s*\n\s*(.+)/.exec(csrSans)?.[1]?.replace(/IP Address:/g, "IP:");
        const ext = extensionLines({ keyPem: "", subject: {} as CertificateSubject, validityHours: opts.validityHours, allowedUses: opts.allowedUses })
            .concat(sanLine ? [`subjectAltName = ${sanLine}`] : [], ["authorityKeyIdentifier = keyid"]);
        return openssl([
            "x509", "-req", "-sha256", "-in", path.join(dir, "req.pem"), "-CA", file("ca.pem", opts.caCertPem), "-CAkey", file("cakey.pem", opts.caKeyPem),
            "-set_serial", `0x${crypto.randomBytes(16).toString("hex")}`, "-days", days(opts.validityHours), "-extfile", file("ext.cnf", ext.join("\n")),
        ]).toString();
    });
}
