// Typed, validated stack configuration: every key, its default (the
// tutorial's stack) and what is allowed, in one place. Parsing is pure so the
// rules are testable without a Pulumi engine; `loadSettings` adapts it to
// `pulumi.Config`. All problems are reported at once, before any resource
// exists.
import { RunError } from "@pulumi/pulumi";
import * as crypto from "crypto";
import * as fs from "fs";
import * as net from "net";

export const KEY_ALGORITHMS = ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/**
 * self-signed: the tutorial's setup, a certificate signed by its own key.
 * local-ca: a local certificate authority (trust it once) signs the server certificate.
 * csr: serves a self-signed certificate and outputs a CSR for a public CA.
 * provided: serves a certificate the user brings (with its key, or the CSR's key).
 */
export const TLS_MODES = ["self-signed", "local-ca", "csr", "provided"] as const;
export type TlsMode = (typeof TLS_MODES)[number];

/**
 * docker: one Docker host, the stack's containers (the default).
 * swarm: a Docker Swarm cluster, the stack's services (components/swarm/).
 */
export const PLATFORMS = ["docker", "swarm"] as const;
export type Platform = (typeof PLATFORMS)[number];

export interface CertificateSubject {
    country: string;
    province: string;
    locality: string;
    organization: string;
    organizationalUnit: string;
    commonName: string;
}

export interface StackSettings {
    /** Where the stack runs: one Docker host or a Docker Swarm cluster. */
    platform: Platform;
    /** The model repository served (docs/model-repository.md), relative to the project folder or absolute. */
    modelRepository: string;
    /** Number of Flask + Gunicorn containers behind Nginx. */
    replicas: number;
    /** Host port published for HTTPS / HTTP (HTTP only redirects). */
    httpsPort: number;
    httpPort: number;
    /** Host address the ports are bound to; 127.0.0.1 keeps the stack private to the machine. */
    bindAddress: string;
    /** Host port of the operator listener (metrics and status), always on 127.0.0.1 only; 0: not published. */
    operatorPort: number;
    /**
     * Path of the Docker engine's socket on the engine's host, mounted into
     * the proxy's keeper (which starts Nginx again after an engine restart).
     */
    engineSocket: string;
    tlsMode: TlsMode;
    certSubject: CertificateSubject;
    certDnsNames: string[];
    certIpAddresses: string[];
    certValidityDays: number;
    /** A certificate this close to expiry is replaced on the next `pulumi up`. */
    certRenewalDays: number;
    keyAlgorithm: KeyAlgorithm;
    /** PEM certificate (chain) for tlsMode "provided". */
    providedCertificatePem?: string;
    /** Base image of both Dockerfiles (Debian stable slim by default). */
    baseImage: string;
    /** Platform both images are built for, e.g. linux/amd64 (default: this machine's). */
    imagePlatform: string;
    /**
     * Extra CA certificate(s), PEM, that pip trusts while the app image
     * builds, for networks that intercept TLS (read from buildCaCertFile).
     * Never in the final image.
     */
    buildCaCertPem?: string;
    /** Gunicorn processes per replica; 0 means "this replica's share of the host's CPUs". */
    appWorkers: number;
    appMemoryMb: number;
    /**
     * Nginx worker processes; 0: one per CPU. One worker proxies far more
     * requests than one CPU of the app serves (BENCHMARKS.md), and every
     * extra worker competes with the replicas for the same CPUs.
     */
    proxyWorkers: number;
    proxyMemoryMb: number;
    /** Requests per second and burst allowed per client address under /api/. */
    rateLimitPerSecond: number;
    rateLimitBurst: number;
    /** Largest request body accepted, by Nginx and by the app. */
    maxBodyKb: number;
    /** Private subnet of the app network; Docker gives the replicas and the proxy their addresses in it. */
    appSubnet: string;
    /** Swarm: the registry (host[:port][/path]) the images are pushed to and every node pulls from. */
    registryAddress?: string;
    /** Swarm: the registry's user (its password is the secret registryPassword). */
    registryUsername?: string;
    /** Swarm: Docker endpoint of a manager (unix://, tcp://, ssh://); unset: the docker provider's own (docker:host, else this machine's engine). */
    swarmManagerHost?: string;
    /** Swarm: the address clients reach an edge node at, for the url output. */
    edgeAddress: string;
    /** Swarm: proxy tasks, and port forwarders (at most one per node: each holds the node's ports). */
    proxyReplicas: number;
    /** Swarm: the placement constraint of the proxy tasks and port forwarders: the edge nodes. */
    proxyConstraint: string;
    /** Swarm: private subnet of the network between the port forwarders and the proxy tasks; the proxy believes client addresses (PROXY protocol) from it only. */
    frontSubnet: string;
}

/** Node's names for CPU architectures, in Docker's (and Go's) names. */
const DOCKER_ARCHITECTURES: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm/v7", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };

/**
 * The platform Docker builds for when none is given (the docker provider's
 * default, which it warns about on every build): Linux on this machine's CPU.
 */
export function hostImagePlatform(arch: string = process.arch): string {
    return `linux/${DOCKER_ARCHITECTURES[arch] ?? arch}`;
}

const IMAGE_PLATFORM = /^linux\/(amd64|arm64|arm\/v[5-7]|386|ppc64le|s390x|riscv64)$/;

export const DEFAULTS: StackSettings = {
    platform: "docker",
    modelRepository: "models",
    replicas: 2,
    httpsPort: 443,
    httpPort: 80,
    bindAddress: "127.0.0.1",
    operatorPort: 9180,
    engineSocket: "/var/run/docker.sock",
    tlsMode: "self-signed",
    certSubject: {
        country: "KE",
        province: "Nairobi",
        locality: "Nairobi",
        organization: "Teaching Lab",
        organizationalUnit: "IT Department",
        commonName: "localhost",
    },
    certDnsNames: ["localhost", "customized-ubuntu-server-smm"],
    certIpAddresses: ["127.0.0.1"],
    certValidityDays: 90,
    certRenewalDays: 30,
    keyAlgorithm: "RSA-2048",
    baseImage: "debian:trixie-slim",
    imagePlatform: hostImagePlatform(),
    appWorkers: 0,
    appMemoryMb: 256,
    proxyWorkers: 1,
    proxyMemoryMb: 128,
    rateLimitPerSecond: 100,
    rateLimitBurst: 200,
    maxBodyKb: 64,
    appSubnet: "10.213.77.0/24",
    edgeAddress: "127.0.0.1",
    proxyReplicas: 1,
    proxyConstraint: "node.role==manager",
    frontSubnet: "10.213.78.0/24",
};

/** Bounds of the integer keys: [min, max]. */
const INTEGER_BOUNDS = {
    replicas: [1, 32],
    httpsPort: [1, 65535],
    httpPort: [1, 65535],
    operatorPort: [0, 65535],
    certValidityDays: [1, 825],
    certRenewalDays: [1, 824],
    appWorkers: [0, 64],
    appMemoryMb: [64, 65536],
    proxyWorkers: [0, 64],
    proxyMemoryMb: [32, 65536],
    rateLimitPerSecond: [1, 1000000],
    rateLimitBurst: [0, 1000000],
    maxBodyKb: [1, 102400],
    proxyReplicas: [1, 32],
} as const satisfies Partial<Record<keyof StackSettings, readonly [number, number]>>;

type IntegerKey = keyof typeof INTEGER_BOUNDS;

const SUBJECT_KEYS: Record<keyof CertificateSubject, string> = {
    country: "certCountry",
    province: "certProvince",
    locality: "certLocality",
    organization: "certOrganization",
    organizationalUnit: "certOrganizationalUnit",
    commonName: "certCommonName",
};

/** Every configuration key the program reads (without the project prefix). */
export const CONFIG_KEYS: readonly string[] = [
    ...Object.keys(INTEGER_BOUNDS),
    "bindAddress",
    "engineSocket",
    "tlsMode",
    ...Object.values(SUBJECT_KEYS),
    "certDnsNames",
    "certIpAddresses",
    "keyAlgorithm",
    "tlsCertificatePem",
    "tlsPrivateKeyPem",
    "baseImage",
    "imagePlatform",
    "buildCaCertFile",
    "appSubnet",
    "platform",
    "modelRepository",
    "registryAddress",
    "registryUsername",
    "registryPassword",
    "swarmManagerHost",
    "edgeAddress",
    "proxyConstraint",
    "frontSubnet",
];

/** Keys that mean something on one platform only, and what they do there. */
const PLATFORM_KEYS: Record<Platform, Record<string, string>> = {
    docker: {
        registryAddress: "the swarm's registry",
        registryUsername: "the swarm's registry user",
        registryPassword: "the swarm's registry password",
        swarmManagerHost: "the swarm's manager",
        edgeAddress: "the address of the swarm's edge nodes",
        proxyReplicas: "the swarm's proxy tasks",
        proxyConstraint: "where the swarm's proxy tasks run",
        frontSubnet: "the network between the swarm's port forwarders and proxy tasks",
    },
    swarm: {
        bindAddress: "the host address one Docker host publishes on (a swarm's host-mode ports take every address of an edge node; edgeAddress names the one clients use)",
        operatorPort: "the operator listener of one Docker host (a swarm publishes no operator port: host-mode ports cannot be bound to loopback)",
        engineSocket: "the engine socket of one Docker host's proxy keeper (Swarm restarts its tasks itself)",
    },
};

/** Keys earlier versions read, and what took their place. */
const RETIRED_KEYS: Record<string, string> = {
    appThreads: "each Gunicorn process now serves its connections from one gevent event loop, without threads; appWorkers sets the processes per replica",
};

/** A RunError: Pulumi prints its message alone, without a stack trace. */
export class ConfigError extends RunError {
    constructor(readonly problems: string[]) {
        super(`Invalid stack configuration:\n  - ${problems.join("\n  - ")}`);
        this.name = "ConfigError";
    }
}

/** Reads a raw value by key: strings, numbers, booleans or arrays as Pulumi config yields them. */
export type RawConfig = (key: string) => unknown;

/**
 * Parses and validates the configuration. `prefix` is only used in messages
 * (e.g. "https-ml-api:") so they name the key as the user typed it.
 */
export function parseSettings(raw: RawConfig, prefix = "", presentKeys: string[] = []): StackSettings {
    const problems: string[] = [];
    // A typo (`replica`) would otherwise silently fall back to a default.
    for (const key of presentKeys.filter((k) => !CONFIG_KEYS.includes(k))) {
        if (Object.hasOwn(RETIRED_KEYS, key)) {
            problems.push(`${prefix}${key} is no longer a setting: ${RETIRED_KEYS[key]}; remove it with \`pulumi config rm ${prefix}${key}\``);
            continue;
        }
        const close = CONFIG_KEYS.find((known) => known.toLowerCase().startsWith(key.toLowerCase().slice(0, 4)));
        problems.push(`${prefix}${key} is not a setting of this stack${close ? ` (did you mean ${prefix}${close}?)` : ""}; the settings are listed in README.md`);
    }
    const name = (key: string) => `${prefix}${key}`;
    const show = (value: unknown) => {
        const shown = JSON.stringify(value) ?? String(value);
        return shown.length > 60 ? `${shown.slice(0, 56)}..."` : shown;
    };

    const integer = (key: IntegerKey): number => {
        const value = raw(key);
        const [min, max] = INTEGER_BOUNDS[key];
        if (value === undefined || value === "") return DEFAULTS[key];
        const parsed = typeof value === "number" ? value : typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
        if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
            problems.push(`${name(key)} is ${show(value)}: expected a whole number from ${min} to ${max}`);
            return DEFAULTS[key];
        }
        return parsed;
    };

    const text = (key: string, fallback: string, check: (v: string) => string | undefined): string => {
        const value = raw(key);
        if (value === undefined) return fallback;
        if (typeof value !== "string") {
            problems.push(`${name(key)} is ${show(value)}: expected a string`);
            return fallback;
        }
        const trimmed = value.trim();
        const problem = check(trimmed);
        if (problem) {
            problems.push(`${name(key)} is ${show(value)}: ${problem}`);
            return fallback;
        }
        return trimmed;
    };

    const oneOf = <T extends string>(key: string, allowed: readonly T[], fallback: T): T =>
        text(key, fallback, (v) => (allowed.includes(v as T) ? undefined : `expected one of ${allowed.join(", ")}`)) as T;

    const list = (key: string, fallback: string[], check: (item: string) => string | undefined, allowEmpty: boolean): string[] => {
        const value = raw(key);
        if (value === undefined) return fallback;
        const items = toStringList(value);
        if (items === undefined) {
            problems.push(`${name(key)} is ${show(value)}: expected a list of strings (a YAML list, a JSON array or comma-separated)`);
            return fallback;
        }
        if (!allowEmpty && items.length === 0) {
            problems.push(`${name(key)} is empty: expected at least one entry`);
            return fallback;
        }
        const bad = items.map((item) => [item, check(item)] as const).filter(([, problem]) => problem);
        for (const [item, problem] of bad) problems.push(`${name(key)} has ${show(item)}: ${problem}`);
        return bad.length ? fallback : [...new Set(items)];
    };

    /** The content of the PEM certificate file a key names (read once), or undefined when unset. */
    const pemFile = (key: string): string | undefined => {
        let content = "";
        const file = text(key, "", (path) => {
            try {
                content = fs.readFileSync(path, "utf8");
            } catch {
                return "expected the path of a readable PEM file with the CA certificate(s)";
            }
            return pemCertificateProblem(content);
        });
        return file ? content : undefined;
    };

    const subjectField = (field: keyof CertificateSubject): string =>
        text(SUBJECT_KEYS[field], DEFAULTS.certSubject[field], (v) =>
            field === "country"
                ? /^[A-Z]{2}$/.test(v) ? undefined : "expected a two-letter ISO 3166 country code such as KE"
                : v.length === 0 ? "must not be empty" : v.length > 64 ? "expected at most 64 characters" : undefined,
        );

    const settings: StackSettings = {
        platform: oneOf("platform", PLATFORMS, DEFAULTS.platform),
        modelRepository: text("modelRepository", DEFAULTS.modelRepository, (v) => (v.length > 0 && !v.includes("\0") ? undefined : "expected the path of a model repository folder (docs/model-repository.md), such as models or /srv/my-models")),
        replicas: integer("replicas"),
        httpsPort: integer("httpsPort"),
        httpPort: integer("httpPort"),
        operatorPort: integer("operatorPort"),
        bindAddress: text("bindAddress", DEFAULTS.bindAddress, (v) => (net.isIP(v) ? undefined : "expected an IPv4 or IPv6 address such as 127.0.0.1 (0.0.0.0 exposes the stack on every interface)")),
        engineSocket: text("engineSocket", DEFAULTS.engineSocket, (v) =>
            /^\/[^\s:]*[^\s:/]$/.test(v) ? undefined : "expected the absolute path of the Docker engine's socket on its host, such as /var/run/docker.sock (rootless: /run/user/1000/docker.sock)",
        ),
        tlsMode: oneOf("tlsMode", TLS_MODES, DEFAULTS.tlsMode),
        certSubject: {
            country: subjectField("country"),
            province: subjectField("province"),
            locality: subjectField("locality"),
            organization: subjectField("organization"),
            organizationalUnit: subjectField("organizationalUnit"),
            commonName: subjectField("commonName"),
        },
        certDnsNames: list("certDnsNames", DEFAULTS.certDnsNames, dnsNameProblem, true),
        certIpAddresses: list("certIpAddresses", DEFAULTS.certIpAddresses, (v) => (net.isIP(v) ? undefined : "expected an IPv4 or IPv6 address"), true),
        certValidityDays: integer("certValidityDays"),
        certRenewalDays: integer("certRenewalDays"),
        keyAlgorithm: oneOf("keyAlgorithm", KEY_ALGORITHMS, DEFAULTS.keyAlgorithm),
        providedCertificatePem: raw("tlsCertificatePem") === undefined ? undefined : text("tlsCertificatePem", "", pemCertificateProblem),
        baseImage: text("baseImage", DEFAULTS.baseImage, (v) => (IMAGE_REFERENCE.test(v) ? undefined : "expected an image reference such as debian:trixie-slim")),
        imagePlatform: text("imagePlatform", DEFAULTS.imagePlatform, (v) =>
            IMAGE_PLATFORM.test(v) ? undefined : "expected a Linux platform of the Docker engine such as linux/amd64 or linux/arm64",
        ),
        buildCaCertPem: pemFile("buildCaCertFile"),
        appWorkers: integer("appWorkers"),
        appMemoryMb: integer("appMemoryMb"),
        proxyWorkers: integer("proxyWorkers"),
        proxyMemoryMb: integer("proxyMemoryMb"),
        rateLimitPerSecond: integer("rateLimitPerSecond"),
        rateLimitBurst: integer("rateLimitBurst"),
        maxBodyKb: integer("maxBodyKb"),
        appSubnet: text("appSubnet", DEFAULTS.appSubnet, subnetProblem),
        registryAddress: raw("registryAddress") === undefined ? undefined : text("registryAddress", "", registryProblem),
        registryUsername: raw("registryUsername") === undefined ? undefined : text("registryUsername", "", (v) => (/^[^\s:]{1,255}$/.test(v) ? undefined : "expected a user name without spaces or colons")),
        swarmManagerHost: raw("swarmManagerHost") === undefined ? undefined : text("swarmManagerHost", "", dockerHostProblem),
        edgeAddress: text("edgeAddress", DEFAULTS.edgeAddress, (v) => (net.isIP(v) || !dnsNameProblem(v) ? undefined : "expected the IP address or DNS name clients reach an edge node at")),
        proxyReplicas: integer("proxyReplicas"),
        proxyConstraint: text("proxyConstraint", DEFAULTS.proxyConstraint, (v) =>
            /^[A-Za-z0-9_.-]+\s*(==|!=)\s*[^\s=!]+$/.test(v) ? undefined : "expected a Swarm placement constraint such as node.role==manager or node.labels.edge==true",
        ),
        frontSubnet: text("frontSubnet", DEFAULTS.frontSubnet, subnetProblem),
    };

    // Rules that relate keys to each other.
    for (const [key, meaning] of Object.entries(PLATFORM_KEYS[settings.platform])) {
        if (presentKeys.includes(key)) {
            const other = PLATFORMS.find((p) => p !== settings.platform)!;
            problems.push(`${name(key)} is set but ${name("platform")} is ${settings.platform}: it sets ${meaning}, which only platform ${other} has; remove it with \`pulumi config rm ${prefix}${key}\``);
        }
    }
    if (settings.platform === "swarm" && !settings.registryAddress) {
        problems.push(`${name("registryAddress")} is not set: platform swarm pushes the images to a registry every node pulls from; set it with \`pulumi config set registryAddress registry.example.com:5000\``);
    }
    if (settings.platform === "swarm" && ![...settings.certDnsNames, ...settings.certIpAddresses].includes(settings.edgeAddress)) {
        problems.push(
            `${name("edgeAddress")} is ${settings.edgeAddress} but the certificate names only ${[...settings.certDnsNames, ...settings.certIpAddresses].join(", ")}: ` +
                `add it to ${name(net.isIP(settings.edgeAddress) ? "certIpAddresses" : "certDnsNames")}, or clients would refuse the certificate and Nginx the host`,
        );
    }
    if (presentKeys.includes("registryUsername") !== presentKeys.includes("registryPassword")) {
        problems.push(
            `${name("registryUsername")} and ${name("registryPassword")} go together: set both (the password with \`pulumi config set --secret registryPassword\`) or neither (a registry without login)`,
        );
    }
    if (settings.certRenewalDays >= settings.certValidityDays) {
        problems.push(
            `${name("certRenewalDays")} is ${settings.certRenewalDays} but ${name("certValidityDays")} is ${settings.certValidityDays}: ` +
                "the renewal window must be shorter than the validity, or every `pulumi up` would replace the certificate",
        );
    }
    if (settings.tlsMode === "provided" && !settings.providedCertificatePem) {
        problems.push(`${name("tlsCertificatePem")} is not set: tlsMode "provided" needs the certificate (PEM); set it with \`pulumi config set tlsCertificatePem -- "$(cat server.crt)"\``);
    }
    if (settings.httpsPort === settings.httpPort) {
        problems.push(`${name("httpsPort")} and ${name("httpPort")} are both ${settings.httpsPort}: expected two different ports`);
    }
    for (const key of ["httpsPort", "httpPort"] as const) {
        if (settings.operatorPort === settings[key]) {
            problems.push(`${name("operatorPort")} and ${name(key)} are both ${settings[key]}: expected a port of its own for the operator listener (0 leaves it unpublished)`);
        }
    }
    if (settings.certDnsNames.length + settings.certIpAddresses.length === 0) {
        problems.push(`${name("certDnsNames")} and ${name("certIpAddresses")} are both empty: the certificate needs at least one name to be valid for`);
    }
    if (settings.platform === "swarm" && subnetsOverlap(settings.appSubnet, settings.frontSubnet)) {
        problems.push(`${name("frontSubnet")} ${settings.frontSubnet} overlaps ${name("appSubnet")} ${settings.appSubnet}: expected two separate subnets`);
    }
    const capacity = subnetCapacity(settings.appSubnet);
    if (capacity !== undefined && settings.replicas > capacity) {
        problems.push(`${name("replicas")} is ${settings.replicas} but ${name("appSubnet")} ${settings.appSubnet} has room for ${capacity} replicas: use a larger subnet`);
    }

    if (problems.length) throw new ConfigError(problems);
    return settings;
}

/** A registry as image references name it: host[:port] and an optional path, no scheme. */
function registryProblem(value: string): string | undefined {
    if (/^[a-z]+:\/\//i.test(value)) return "expected host[:port][/path] without a scheme, such as registry.example.com:5000";
    const [host, ...path] = value.split("/");
    const match = /^([^:]+)(?::(\d{1,5}))?$/.exec(host);
    const hostOk = match && (net.isIPv4(match[1]) || !dnsNameProblem(match[1])) && (match[2] === undefined || (Number(match[2]) >= 1 && Number(match[2]) <= 65535));
    const pathOk = path.every((p) => /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(p));
    return hostOk && pathOk ? undefined : "expected host[:port][/path], such as registry.example.com:5000 or 10.0.0.5:5000/mlapi (lower-case path)";
}

/** A Docker endpoint the provider's client dials. */
function dockerHostProblem(value: string): string | undefined {
    return /^(unix:\/\/\/\S+|tcp:\/\/\S+:\d+|ssh:\/\/\S+)$/.test(value) ? undefined : "expected a Docker endpoint such as unix:///var/run/docker.sock, tcp://10.0.0.5:2376 or ssh://user@manager";
}

function pemCertificateProblem(pem: string): string | undefined {
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) return "expected a PEM certificate (-----BEGIN CERTIFICATE-----)";
    try {
        new crypto.X509Certificate(pem);
        return undefined;
    } catch {
        return "the PEM does not parse as an X.509 certificate";
    }
}

const IMAGE_REFERENCE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

function toStringList(value: unknown): string[] | undefined {
    if (Array.isArray(value)) return value.every((v) => typeof v === "string") ? value.map((v) => v.trim()) : undefined;
    if (typeof value !== "string") return undefined;
    const trimmed = value.trim();
    if (trimmed.startsWith("[")) {
        try {
            return toStringList(JSON.parse(trimmed));
        } catch {
            return undefined;
        }
    }
    return trimmed === "" ? [] : trimmed.split(",").map((v) => v.trim());
}

/** RFC 1123 host names, with an optional leading wildcard label. */
export function dnsNameProblem(name: string): string | undefined {
    const label = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;
    const labels = name.split(".");
    const ok =
        name.length > 0 &&
        name.length <= 253 &&
        !net.isIP(name) &&
        labels.every((l, i) => (i === 0 && l === "*" && labels.length > 2) || label.test(l)) &&
        !/^\d+$/.test(labels[labels.length - 1]);
    return ok ? undefined : "expected a DNS name such as localhost or api.example.com (letters, digits and hyphens, dot-separated)";
}

/** The first host address of a subnet: the gateway Docker gives a network of it. */
export function subnetGateway(cidr: string): string {
    const subnet = parseSubnet(cidr);
    if (!subnet) throw new Error(`not a subnet: ${cidr}`);
    const address = subnet.base + 1;
    return [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join(".");
}

function parseSubnet(cidr: string): { base: number; bits: number } | undefined {
    const match = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr);
    if (!match || net.isIPv4(match[1]) === false) return undefined;
    const bits = Number(match[2]);
    const base = match[1].split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
    return bits <= 32 ? { base, bits } : undefined;
}

function subnetProblem(cidr: string): string | undefined {
    const subnet = parseSubnet(cidr);
    if (!subnet) return "expected an IPv4 subnet in CIDR form such as 10.213.77.0/24";
    if (subnet.bits < 16 || subnet.bits > 27) return "expected a prefix length from /16 to /27";
    if (subnet.base % 2 ** (32 - subnet.bits) !== 0) return "the address has host bits set; expected the network address";
    const first = Math.floor(subnet.base / 2 ** 24);
    const second = Math.floor(subnet.base / 2 ** 16) % 256;
    const isPrivate = first === 10 || (first === 172 && second >= 16 && second <= 31) || (first === 192 && second === 168);
    return isPrivate ? undefined : "expected a private (RFC 1918) subnet";
}

/** Whether two valid subnets share an address (one contains the other's network address); an address is its /32. */
export function subnetsOverlap(a: string, b: string): boolean {
    const [x, y] = [parseSubnet(a), parseSubnet(b)];
    if (!x || !y) return false;
    const size = 2 ** (32 - Math.min(x.bits, y.bits));
    return Math.floor(x.base / size) === Math.floor(y.base / size);
}

/**
 * Replicas a subnet has room for. Docker hands out every address but the
 * network's, the gateway's and the broadcast; a new replica starts before
 * the one it replaces stops, so a roll briefly needs two addresses per
 * replica, plus the proxy's and one for a replica being scaled in.
 */
function subnetCapacity(cidr: string): number | undefined {
    const subnet = parseSubnet(cidr);
    return subnet ? Math.floor((2 ** (32 - subnet.bits) - 3 - 2) / 2) : undefined;
}

/**
 * Reads the settings of the current stack; throws ConfigError with every
 * problem found. `allKeys` are the fully qualified keys set on the stack.
 */
export function loadSettings(config: { name: string; get(key: string): string | undefined }, allKeys: string[] = []): StackSettings {
    const raw: RawConfig = (key) => {
        const value = config.get(key);
        if (value === undefined) return undefined;
        // Structured values (YAML lists) arrive JSON-encoded.
        return value.trim().startsWith("[") ? safeJson(value) : value;
    };
    const namespace = `${config.name}:`;
    const ownKeys = allKeys.filter((k) => k.startsWith(namespace)).map((k) => k.slice(namespace.length));
    return parseSettings(raw, namespace, ownKeys);
}

function safeJson(value: string): unknown {
    try {
        return JSON.parse(value);
    } catch {
        return value;
    }
}
