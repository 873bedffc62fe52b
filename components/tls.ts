// The TLS material Nginx serves: a private key and a certificate, made by
// Pulumi (never by hand, never in an image). Four modes share one output shape
// so the proxy is wired the same way whatever issued the certificate.
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import {
    CA_CERT_USES,
    CA_VALIDITY_DAYS,
    HOURS_PER_DAY,
    certSubjectArgs,
    certificateFacts,
    daysLeft,
    keyParameters,
    renewalGeneration,
    renewalHours,
    serverCertUses,
    validityHours,
} from "./certificate";
import { StackSettings } from "./config";

export type TlsSettings = Pick<
    StackSettings,
    "tlsMode" | "certSubject" | "certDnsNames" | "certIpAddresses" | "certValidityDays" | "certRenewalDays" | "keyAlgorithm" | "providedCertificatePem"
>;

export interface TlsCertificateArgs {
    settings: TlsSettings;
    /** Key of a user-provided certificate (tlsMode "provided"); without it the stack's own key (the CSR's) is used. */
    providedPrivateKeyPem?: pulumi.Input<string>;
    /** The clock that decides renewal; injectable for tests. */
    now?: () => number;
}

export class TlsCertificate extends pulumi.ComponentResource {
    /** The certificate Nginx serves (PEM). */
    readonly certPem: pulumi.Output<string>;
    /** Its private key (PEM), always a secret. */
    readonly privateKeyPem: pulumi.Output<string>;
    /** The local CA's certificate to trust (tlsMode "local-ca" only); never its key. */
    readonly caCertPem?: pulumi.Output<string>;
    /** A certificate signing request for a public CA (tlsMode "csr" only). */
    readonly certRequestPem?: pulumi.Output<string>;
    readonly fingerprintSha256: pulumi.Output<string>;
    readonly notAfter: pulumi.Output<string>;
    readonly daysLeft: pulumi.Output<number>;

    constructor(name: string, args: TlsCertificateArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mlapi:tls:TlsCertificate", name, {}, opts);
        const { settings } = args;
        const now = (args.now ?? Date.now)();
        const parent = { parent: this };
        const subject = certSubjectArgs(settings.certSubject);
        const names = { dnsNames: settings.certDnsNames, ipAddresses: settings.certIpAddresses };
        const lifetime = { validityPeriodHours: validityHours(settings), earlyRenewalHours: renewalHours(settings) };
        const allowedUses = serverCertUses(settings.keyAlgorithm);

        // Self-signed and CA-signed certificates renew themselves: their
        // generation is part of the names (see renewalGeneration). A CSR's or
        // a provided certificate's key must stay put until the user renews.
        const renews = settings.tlsMode === "self-signed" || settings.tlsMode === "local-ca";
        const suffix = renews ? `-g${renewalGeneration(now, settings)}` : "";
        const key = new tls.PrivateKey(`${name}-key${suffix}`, keyParameters(settings.keyAlgorithm), parent);

        let certPem: pulumi.Output<string>;
        let caCertPem: pulumi.Output<string> | undefined;
        let certRequestPem: pulumi.Output<string> | undefined;
        let servedKeyPem: pulumi.Input<string> = key.privateKeyPem;

        switch (settings.tlsMode) {
            case "self-signed":
            case "csr": {
                const cert = new tls.SelfSignedCert(
                    `${name}-cert${suffix}`,
                    { privateKeyPem: key.privateKeyPem, subject, ...names, ...lifetime, allowedUses },
                    parent,
                );
                certPem = cert.certPem;
                if (settings.tlsMode === "csr") {
                    const csr = new tls.CertRequest(`${name}-csr`, { privateKeyPem: key.privateKeyPem, subject, ...names }, parent);
                    certRequestPem = csr.certRequestPem;
                }
                break;
            }
            case "local-ca": {
                // The CA keeps its name across renewals: users trust it once.
                const caKey = new tls.PrivateKey(`${name}-ca-key`, keyParameters("ECDSA-P256"), parent);
                const caCert = new tls.SelfSignedCert(
                    `${name}-ca-cert`,
                    {
                        privateKeyPem: caKey.privateKeyPem,
                        subject: { ...subject, commonName: `${settings.certSubject.organization} local CA` },
                        isCaCertificate: true,
                        maxPathLength: 0,
                        validityPeriodHours: CA_VALIDITY_DAYS * HOURS_PER_DAY,
                        allowedUses: CA_CERT_USES,
                    },
                    parent,
                );
                const csr = new tls.CertRequest(`${name}-csr${suffix}`, { privateKeyPem: key.privateKeyPem, subject, ...names }, parent);
                const cert = new tls.LocallySignedCert(
                    `${name}-cert${suffix}`,
                    {
                        certRequestPem: csr.certRequestPem,
                        caPrivateKeyPem: caKey.privateKeyPem,
                        caCertPem: caCert.certPem,
                        ...lifetime,
                        allowedUses,
                    },
                    parent,
                );
                certPem = cert.certPem;
                caCertPem = caCert.certPem;
                break;
            }
            case "provided": {
                const provided = settings.providedCertificatePem;
                if (!provided) throw new Error('tlsMode "provided" needs tlsCertificatePem');
                certPem = pulumi.output(provided);
                servedKeyPem = args.providedPrivateKeyPem ?? key.privateKeyPem;
                break;
            }
        }

        // Mocks and some engines do not mark provider secrets by themselves:
        // make the key a secret here, whatever produced it.
        this.privateKeyPem = pulumi.secret(servedKeyPem);
        this.certPem = certPem;
        this.caCertPem = caCertPem;
        this.certRequestPem = certRequestPem;
        const facts = certPem.apply(certificateFacts);
        this.fingerprintSha256 = facts.fingerprintSha256;
        this.notAfter = facts.notAfter;
        this.daysLeft = facts.notAfter.apply((notAfter) => daysLeft(notAfter, now));

        this.registerOutputs({
            certPem: this.certPem,
            caCertPem: this.caCertPem,
            certRequestPem: this.certRequestPem,
            fingerprintSha256: this.fingerprintSha256,
            notAfter: this.notAfter,
            daysLeft: this.daysLeft,
        });
    }
}
