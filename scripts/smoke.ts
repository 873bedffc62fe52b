// Smoke check of a deployed stack: TLS, the frontend, one prediction per
// model, and every replica seen behind the proxy. Prints a short report and
// exits non-zero when a check fails.
//
//   npm run smoke                       # reads url, certificate, replicas from `pulumi stack output`
//   npm run smoke -- --url https://127.0.0.1:8443/ --ca ca.pem --replicas 2
import * as crypto from "crypto";
import * as fs from "fs";
import { certificateFacts, daysLeft } from "../components/certificate";
import { TUTORIAL_PAGE_PATHS } from "../components/nginxConfig";
import { peerCertificate, stackOutputs } from "./lib/deployed";
import { MODEL_PATHS, SEED_KEYS, SEED_PAYLOADS, postJson, request } from "../test/support/http";

export interface SmokeOptions {
    url: string;
    /** Trust anchor (PEM): the stack's certificate, or its local CA. */
    trustPem?: string;
    /** Accept any certificate (reports it, like curl --insecure). */
    insecure?: boolean;
    /** Replica names expected behind the proxy, or just how many. */
    replicas: string[] | number;
}

export interface SmokeCheck {
    name: string;
    ok: boolean;
    detail: string;
}

async function check(name: string, run: () => Promise<string>): Promise<SmokeCheck> {
    try {
        return { name, ok: true, detail: await run() };
    } catch (error) {
        return { name, ok: false, detail: error instanceof Error ? error.message : String(error) };
    }
}

async function tlsHandshake(options: SmokeOptions): Promise<string> {
    const peer = await peerCertificate(options.url, { ca: options.trustPem, insecure: options.insecure });
    const facts = certificateFacts(peer.certPem);
    const verified = peer.authorized ? "verified" : `NOT verified (${peer.authorizationError})`;
    return `${peer.protocol}, ALPN ${peer.alpn || "none"}, certificate ${verified}, ${daysLeft(facts.notAfter, Date.now())} days left, SHA-256 ${facts.fingerprintSha256}`;
}

export async function runSmoke(options: SmokeOptions): Promise<SmokeCheck[]> {
    const base = options.url.endsWith("/") ? options.url : `${options.url}/`;
    const http = { ca: options.trustPem, insecure: options.insecure };
    const expected = typeof options.replicas === "number" ? options.replicas : options.replicas.length;
    return [
        await check("TLS", () => tlsHandshake(options)),
        await check("frontend", async () => {
            const page = await request(base, http);
            if (page.status !== 200 || !/<html/i.test(page.body)) throw new Error(`GET / answered ${page.status}`);
            // The tutorial's page addresses are part of its contract: each is the model form.
            for (const address of TUTORIAL_PAGE_PATHS) {
                const form = await request(`${base}${address.slice(1)}`, http);
                if (form.status !== 200 || !form.body.includes('id="prediction-form"')) throw new Error(`GET ${address} answered ${form.status} without the model form`);
            }
            return `GET / 200 ${page.headers["content-type"]}, HSTS ${page.headers["strict-transport-security"] ? "on" : "MISSING"}; ${TUTORIAL_PAGE_PATHS.join(", ")} 200`;
        }),
        ...(await Promise.all(
            (["classifier", "regressor"] as const).map((model) =>
                check(`prediction (${model})`, async () => {
                    const answer = await postJson(`${base}${MODEL_PATHS[model]}`, SEED_PAYLOADS[model], http);
                    const value = answer.status === 200 ? answer.json()[SEED_KEYS[model]] : undefined;
                    if (typeof value !== "number") throw new Error(`answered ${answer.status}: ${answer.body.slice(0, 200)}`);
                    return `"${SEED_KEYS[model]}": ${value}`;
                }),
            ),
        )),
        await check("replicas", async () => {
            const seen = new Set<string>();
            for (let attempt = 0; attempt < expected * 10 && seen.size < expected; attempt++) {
                const health = await request(`${base}api/health`, http);
                if (health.status === 200) seen.add(health.json().replica);
            }
            const names = [...seen].sort();
            const missing = typeof options.replicas === "number" ? [] : options.replicas.filter((r) => !seen.has(r));
            if (seen.size < expected || missing.length) throw new Error(`saw ${names.join(", ") || "none"}; expected ${expected}${missing.length ? ` (missing ${missing.join(", ")})` : ""}`);
            return `${seen.size} of ${expected} answered: ${names.join(", ")}`;
        }),
    ];
}

export function formatReport(url: string, checks: SmokeCheck[]): string {
    const lines = checks.map((c) => `${c.ok ? "PASS" : "FAIL"}  ${c.name.padEnd(24)} ${c.detail}`);
    const failed = checks.filter((c) => !c.ok).length;
    return [`Smoke check of ${url}`, ...lines, `${checks.length - failed} passed, ${failed} failed`].join("\n");
}

/** The local CA, or a self-signed certificate itself; a CA-issued certificate is checked against the system store. */
export function trustAnchor(outputs: Record<string, unknown>): string | undefined {
    if (typeof outputs.caCertificatePem === "string") return outputs.caCertificatePem;
    const cert = new crypto.X509Certificate(String(outputs.certificatePem));
    const selfSigned = cert.issuer === cert.subject && cert.verify(cert.publicKey);
    return selfSigned ? cert.toString() : undefined;
}

async function main(argv: string[]): Promise<number> {
    const flag = (name: string) => {
        const index = argv.indexOf(`--${name}`);
        return index >= 0 ? argv[index + 1] : undefined;
    };
    let options: SmokeOptions;
    const url = flag("url");
    if (url) {
        const ca = flag("ca");
        options = { url, trustPem: ca ? fs.readFileSync(ca, "utf8") : undefined, insecure: argv.includes("--insecure"), replicas: Number(flag("replicas") ?? 1) };
    } else {
        const outputs = stackOutputs();
        // A swarm stack's tasks have no names of their own: it outputs how many there are.
        options = { url: String(outputs.url), trustPem: trustAnchor(outputs), replicas: (outputs.replicaNames as string[] | undefined) ?? Number(outputs.appReplicas) };
    }
    const checks = await runSmoke(options);
    console.log(formatReport(options.url, checks));
    return checks.every((c) => c.ok) ? 0 : 1;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (error) => {
            console.error(`smoke: ${error instanceof Error ? error.message : error}`);
            process.exit(2);
        },
    );
}
