// Pure facts about certificates, shared by the TLS component, the unit tests
// and the end-to-end harness (which issues its certificate with openssl from
// the same settings).
import * as crypto from "crypto";
import { CertificateSubject, KeyAlgorithm, StackSettings } from "./config";

/**
 * Key usages of a TLS server certificate, in the names the tls provider
 * accepts (snake_case: the camelCase names in @pulumi/tls's docstrings are
 * refused). Key encipherment only means something for RSA keys (RSA key
 * exchange); an ECDSA certificate only signs.
 */
export function serverCertUses(algorithm: KeyAlgorithm): string[] {
    return algorithm.startsWith("RSA") ? ["server_auth", "digital_signature", "key_encipherment"] : ["server_auth", "digital_signature"];
}

/** Key usages of the local CA's certificate. */
export const CA_CERT_USES = ["cert_signing", "crl_signing", "digital_signature"];

/** The local CA lives long (it is what users trust); server certificates under it stay short-lived. */
export const CA_VALIDITY_DAYS = 3650;

export interface KeyParameters {
    algorithm: "RSA" | "ECDSA";
    rsaBits?: number;
    ecdsaCurve?: "P256" | "P384";
}

export function keyParameters(algorithm: KeyAlgorithm): KeyParameters {
    const [family, size] = algorithm.split("-");
    return family === "RSA" ? { algorithm: "RSA", rsaBits: Number(size) } : { algorithm: "ECDSA", ecdsaCurve: size as "P256" | "P384" };
}

/** The subject in the shape `tls.SelfSignedCert` / `tls.CertRequest` take. */
export function certSubjectArgs(subject: CertificateSubject) {
    return {
        country: subject.country,
        province: subject.province,
        locality: subject.locality,
        organization: subject.organization,
        organizationalUnit: subject.organizationalUnit,
        commonName: subject.commonName,
    };
}

/** "/C=KE/ST=Nairobi/..." for `openssl req -subj`. */
export function opensslSubject(subject: CertificateSubject): string {
    const escape = (v: string) => v.replace(/[/\\]/g, (c) => `\\${c}`);
    return [
        ["C", subject.country],
        ["ST", subject.province],
        ["L", subject.locality],
        ["O", subject.organization],
        ["OU", subject.organizationalUnit],
        ["CN", subject.commonName],
    ]
        .map(([k, v]) => `/${k}=${escape(v)}`)
        .join("");
}

export const HOURS_PER_DAY = 24;

export function validityHours(settings: Pick<StackSettings, "certValidityDays">): number {
    return settings.certValidityDays * HOURS_PER_DAY;
}

export function renewalHours(settings: Pick<StackSettings, "certRenewalDays">): number {
    return settings.certRenewalDays * HOURS_PER_DAY;
}

/**
 * The renewal generation of the server certificate at time `nowMs`.
 *
 * `earlyRenewalHours` alone does not replace a certificate on a plain
 * `pulumi up` (pulumi-tls #39), so the generation is part of the key's and
 * certificate's resource names: when it changes, Pulumi creates a new key and
 * certificate and deletes the old ones. Generations last
 * `validity - renewal` hours, so a certificate issued at any time t during
 * generation g is replaced no later than t + validity - renewal, i.e. by the
 * first `pulumi up` once it is inside its renewal window (possibly earlier,
 * never more than once per generation).
 */
export function renewalGeneration(nowMs: number, settings: Pick<StackSettings, "certValidityDays" | "certRenewalDays">): number {
    const periodMs = (validityHours(settings) - renewalHours(settings)) * 3600 * 1000;
    return Math.floor(nowMs / periodMs);
}

export interface CertificateFacts {
    fingerprintSha256: string;
    notBefore: string;
    notAfter: string;
    subject: string;
    subjectAltName: string;
}

/** Reads the facts users check a certificate by from its PEM. */
export function certificateFacts(certPem: string): CertificateFacts {
    const cert = new crypto.X509Certificate(certPem);
    return {
        fingerprintSha256: cert.fingerprint256,
        notBefore: new Date(cert.validFrom).toISOString(),
        notAfter: new Date(cert.validTo).toISOString(),
        subject: cert.subject.replace(/\n/g, ", "),
        subjectAltName: cert.subjectAltName ?? "",
    };
}

/** Whole days from `nowMs` until `notAfter` (negative once expired). */
export function daysLeft(notAfter: string, nowMs: number): number {
    return Math.floor((Date.parse(notAfter) - nowMs) / (24 * 3600 * 1000));
}
