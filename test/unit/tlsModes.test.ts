// The TLS modes beside self-signed: a local CA, a CSR for a public CA, and a
// certificate the user brings. Same wiring into Nginx; keys only as secrets.
import * as crypto from "crypto";
import { PROXY_FILES } from "../../components/layout";
import { generateKey, selfSignedCert } from "../support/openssl";
import { DEFAULTS } from "../../components/config";
import { isSecretInput, plain, runProgram, ProgramRun } from "./program";

jest.setTimeout(60_000);

const uploads = (run: ProgramRun) => {
    const loader = run.ofType("docker:index/container:Container").find((c) => c.inputs.name.endsWith("-proxy-install"))!;
    expect(isSecretInput(loader.inputs.uploads)).toBe(true);
    return Object.fromEntries(plain(loader.inputs.uploads).map((u: any) => [u.file, u.content])) as Record<string, string>;
};
const keyBodyOf = (pem: string) => pem.split("\n")[1];
const everyPlainOutput = (run: ProgramRun) => JSON.stringify(Object.values(run.outputs).map((o) => o.value));

test("local-ca: a CA signs the served certificate; its certificate is an output, its key goes nowhere", async () => {
    const run = await runProgram({ tlsMode: "local-ca" });
    const [caKey] = run.ofType("tls:index/privateKey:PrivateKey").filter((k) => k.name.includes("-ca-"));
    const caCertPem = run.outputs.caCertificatePem.value as string;
    const served = new crypto.X509Certificate(uploads(run)[PROXY_FILES.certificate]);
    const ca = new crypto.X509Certificate(caCertPem);
    expect(ca.ca).toBe(true);
    expect(served.checkIssued(ca)).toBe(true);
    expect(served.verify(ca.publicKey)).toBe(true);
    expect(served.subjectAltName).toBe("DNS:localhost, DNS:customized-ubuntu-server-smm, IP Address:127.0.0.1");
    // The CA key: only in the signing resource, as a secret; never uploaded, never an output.
    const caKeyBody = keyBodyOf(plain(caKey.state.privateKeyPem));
    const signer = run.ofType("tls:index/locallySignedCert:LocallySignedCert")[0];
    expect(isSecretInput(signer.inputs.caPrivateKeyPem)).toBe(true);
    for (const r of run.resources.filter((r) => r.type.startsWith("docker:"))) expect(JSON.stringify(r.inputs)).not.toContain(caKeyBody);
    expect(everyPlainOutput(run)).not.toContain(caKeyBody);
    expect(everyPlainOutput(run)).not.toMatch(/PRIVATE KEY/);
});

test("csr: serves a self-signed certificate and outputs a CSR for the same key and names", async () => {
    const run = await runProgram({ tlsMode: "csr" });
    const csrPem = run.outputs.certificateSigningRequestPem.value as string;
    expect(csrPem).toContain("BEGIN CERTIFICATE REQUEST");
    const served = new crypto.X509Certificate(uploads(run)[PROXY_FILES.certificate]);
    const csrInputs = run.ofType("tls:index/certRequest:CertRequest")[0].inputs;
    expect(csrInputs.dnsNames).toEqual(DEFAULTS.certDnsNames);
    expect(csrInputs.subject.commonName).toBe("localhost");
    expect(plain(csrInputs.privateKeyPem)).toBe(uploads(run)[PROXY_FILES.certificateKey]);
    expect(served.issuer).toBe(served.subject);
    expect(served.verify(served.publicKey)).toBe(true);
    expect(run.outputs.caCertificatePem).toBeUndefined();
});

test("provided: the user's certificate and secret key are served; without a key, the stack's own (the CSR's) is", async () => {
    const keyPem = generateKey("ECDSA-P256");
    const certPem = selfSignedCert({ keyPem, subject: { ...DEFAULTS.certSubject, commonName: "api.example.test" }, dnsNames: ["api.example.test"], validityHours: 24 * 30, allowedUses: ["server_auth"] });
    const withKey = await runProgram({ tlsMode: "provided", tlsCertificatePem: certPem, tlsPrivateKeyPem: keyPem });
    expect(uploads(withKey)[PROXY_FILES.certificate]).toBe(certPem.trim());
    expect(uploads(withKey)[PROXY_FILES.certificateKey]).toBe(keyPem);
    expect(everyPlainOutput(withKey)).not.toContain(keyBodyOf(keyPem));
    expect(withKey.ofType("tls:index/selfSignedCert:SelfSignedCert")).toHaveLength(0);
    expect(withKey.outputs.certificateFingerprintSha256.value).toBe(new crypto.X509Certificate(certPem).fingerprint256);

    const withoutKey = await runProgram({ tlsMode: "provided", tlsCertificatePem: certPem });
    const stackKey = plain(withoutKey.ofType("tls:index/privateKey:PrivateKey")[0].state.privateKeyPem);
    expect(uploads(withoutKey)[PROXY_FILES.certificateKey]).toBe(stackKey);
});
