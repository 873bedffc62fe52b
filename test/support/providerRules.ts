// What the real providers and the Docker engine refuse, as checks the unit
// tests' mock provider runs on every resource the program registers. Each rule
// is read from the provider's own source, not from the typings' docstrings
// (which list the tls key usages in camelCase, a spelling the provider
// refuses):
//   - tls: hashicorp/terraform-provider-tls, internal/provider/resource_*.go
//     (attribute Validators), common_cert.go (the usage names), types.go
//     (algorithms, curves) and the Create functions (IP addresses);
//   - docker containers, networks and volumes: kreuzwerker/terraform-provider-
//     docker v4.5 (what @pulumi/docker 5.x bridges), internal/provider/
//     resource_docker_*.go (ValidateDiagFunc, Required) and
//     resourceDockerContainerCreate (upload and wait errors);
//   - docker.Image: pulumi/pulumi-docker, provider/provider.go (Check) and
//     image.go;
//   - the Docker engine itself where the provider passes a value through
//     (ports, signals, security options, upload ownership).
// Messages follow the provider's wording and name the attribute as the
// provider does (snake_case, with list indexes).
import * as fs from "fs";
import * as net from "net";
import * as path from "path";

type Inputs = Record<string, any>;

/** The attribute name the provider reports: "allowedUses" -> "allowed_uses". */
function attribute(name: string): string {
    return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Key usages and extended key usages: the keys of keyUsages and extendedKeyUsages in common_cert.go. */
export const TLS_KEY_USAGES = [
    "any_extended", "cert_signing", "client_auth", "code_signing", "content_commitment", "crl_signing", "data_encipherment",
    "decipher_only", "digital_signature", "email_protection", "encipher_only", "ipsec_end_system", "ipsec_tunnel", "ipsec_user",
    "key_agreement", "key_encipherment", "microsoft_commercial_code_signing", "microsoft_kernel_code_signing",
    "microsoft_server_gated_crypto", "netscape_server_gated_crypto", "ocsp_signing", "server_auth", "timestamping",
] as const;
export const TLS_ALGORITHMS = ["RSA", "ECDSA", "ED25519"] as const;
export const TLS_ECDSA_CURVES = ["P224", "P256", "P384", "P521"] as const;

/** Go's crypto/rsa (1.24 and later, which the provider builds with) refuses to generate smaller keys. */
const MIN_RSA_BITS = 1024;

/** Collects problems for one resource; each check returns nothing. */
class Checker {
    readonly problems: string[] = [];
    constructor(private readonly inputs: Inputs) {}

    private add(at: string, message: string) {
        this.problems.push(`${at}: ${message}`);
    }

    required(...names: string[]) {
        for (const n of names) {
            const v = this.inputs[n];
            if (v === undefined || v === null || v === "") this.add(attribute(n), `The argument "${attribute(n)}" is required, but no definition was found.`);
        }
    }

    /** stringvalidator.OneOf: `Attribute X value must be one of: [...], got: "v"`. */
    oneOf(at: string, value: unknown, allowed: readonly string[]) {
        if (value === undefined) return;
        if (typeof value !== "string" || !allowed.includes(value)) {
            this.add(at, `Invalid Attribute Value Match. Attribute ${at} value must be one of: [${allowed.map((a) => JSON.stringify(a)).join(" ")}], got: ${JSON.stringify(value)}`);
        }
    }

    /** validateStringMatchesPattern and the like: `"v" must match /pattern/`. */
    matches(at: string, value: unknown, pattern: RegExp, why = `must match ${pattern}`) {
        if (value === undefined) return;
        if (typeof value !== "string" || !pattern.test(value)) this.add(at, `${JSON.stringify(value)} ${why}`);
    }

    /** int64validator.AtLeast / validateIntegerGeqThan, and the type check before them. */
    integerAtLeast(at: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER) {
        if (value === undefined) return;
        if (typeof value !== "number" || !Number.isInteger(value)) this.add(at, `expected a whole number, got ${JSON.stringify(value)}`);
        else if (value < min || value > max) this.add(at, `Attribute ${at} value must be ${max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`}, got: ${value}`);
    }

    /** validateDurationGeq0: Go's time.ParseDuration, not negative. */
    duration(at: string, value: unknown) {
        if (value === undefined) return;
        if (typeof value !== "string" || !GO_DURATION.test(value)) this.add(at, `'${value}' is not a valid duration`);
        else if (value.startsWith("-")) this.add(at, `'${value}' duration must not be negative`);
    }

    list(at: string, value: unknown, each: (item: any, at: string) => void) {
        if (value === undefined) return;
        if (!Array.isArray(value)) {
            this.add(at, `expected a list, got ${JSON.stringify(value)}`);
            return;
        }
        value.forEach((item, i) => each(item, `${at}[${i}]`));
    }

    fail(at: string, message: string) {
        this.add(at, message);
    }
}

/** Go's time.ParseDuration: a sequence of decimal numbers with units, e.g. "1h30m", "3s", "0". */
const GO_DURATION = /^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+)$/;

function isPem(value: unknown, type: RegExp): boolean {
    return typeof value === "string" && type.test(value);
}

function tlsPrivateKey(c: Checker, i: Inputs) {
    c.required("algorithm");
    c.oneOf("algorithm", i.algorithm, TLS_ALGORITHMS);
    c.oneOf("ecdsa_curve", i.ecdsaCurve, TLS_ECDSA_CURVES);
    if (i.algorithm === "RSA") c.integerAtLeast("rsa_bits", i.rsaBits, MIN_RSA_BITS);
}

/** Names a certificate is for; the Create functions parse every IP address with net.ParseIP. */
function tlsSubjectNames(c: Checker, i: Inputs) {
    c.list("dns_names", i.dnsNames, (v, at) => c.matches(at, v, /./, "must be a non-empty string"));
    c.list("ip_addresses", i.ipAddresses, (v, at) => {
        c.matches(at, v, /./, "Attribute must be at least 1 character long");
        if (typeof v === "string" && v !== "" && net.isIP(v) === 0) c.fail(at, `Invalid IP address. Failed to parse ${JSON.stringify(v)}`);
    });
    c.list("uris", i.uris, (v, at) => c.matches(at, v, /./, "Attribute must be at least 1 character long"));
    if (i.subject !== undefined && (typeof i.subject !== "object" || Array.isArray(i.subject))) c.fail("subject", "expected one subject block (an object)");
}

function tlsCertLifetime(c: Checker, i: Inputs) {
    c.required("validityPeriodHours", "allowedUses");
    c.integerAtLeast("validity_period_hours", i.validityPeriodHours, 0);
    c.integerAtLeast("early_renewal_hours", i.earlyRenewalHours, 0);
    c.integerAtLeast("max_path_length", i.maxPathLength, -1);
    c.list("allowed_uses", i.allowedUses, (v, at) => c.oneOf(at, v, TLS_KEY_USAGES));
}

function tlsSelfSignedCert(c: Checker, i: Inputs) {
    c.required("privateKeyPem");
    if (i.privateKeyPem !== undefined && !isPem(i.privateKeyPem, /-----BEGIN [A-Z ]*PRIVATE KEY-----/)) c.fail("private_key_pem", "Failed to parse private key PEM");
    tlsCertLifetime(c, i);
    tlsSubjectNames(c, i);
}

function tlsLocallySignedCert(c: Checker, i: Inputs) {
    c.required("certRequestPem", "caPrivateKeyPem", "caCertPem");
    if (i.certRequestPem !== undefined && !isPem(i.certRequestPem, /-----BEGIN CERTIFICATE REQUEST-----/)) c.fail("cert_request_pem", "Failed to parse certificate request PEM");
    if (i.caCertPem !== undefined && !isPem(i.caCertPem, /-----BEGIN CERTIFICATE-----/)) c.fail("ca_cert_pem", "Failed to parse CA certificate PEM");
    tlsCertLifetime(c, i);
}

function tlsCertRequest(c: Checker, i: Inputs) {
    c.required("privateKeyPem");
    tlsSubjectNames(c, i);
}

/** A Docker port number: nat.ParsePort and the engine accept 1-65535 (0 or absent external = a random port). */
function port(c: Checker, at: string, value: unknown, zeroAllowed: boolean) {
    c.integerAtLeast(at, value, zeroAllowed ? 0 : 1, 65535);
}

/** Signal names the engine's signal.ParseSignal knows, or their numbers. */
const SIGNAL = /^(SIG)?(ABRT|ALRM|BUS|CHLD|CONT|FPE|HUP|ILL|INT|IO|IOT|KILL|PIPE|PROF|PWR|QUIT|SEGV|STKFLT|STOP|SYS|TERM|TRAP|TSTP|TTIN|TTOU|URG|USR1|USR2|VTALRM|WINCH|XCPU|XFSZ|RTMIN(\+\d+)?|RTMAX(-\d+)?)$|^\d+$/;

function dockerContainer(c: Checker, i: Inputs) {
    c.required("name", "image");
    // resourceDockerContainerCreate: "values for command may not be empty".
    c.list("command", i.command, (v, at) => c.matches(at, v, /./, "values for command may not be empty"));
    c.matches("pid_mode", i.pidMode, /^(host|container:.+)$/, "is not a PID mode the engine accepts (host or container:<name|id>)");
    if (i.attach === true && i.start === false) c.fail("attach", "a container that is not started cannot be attached to");
    // An attached container that must run would fail its read once it exits.
    if (i.attach === true && i.mustRun !== false) c.fail("must_run", "an attached (run-to-completion) container must set must_run false: once it exits the provider flips must_run in its state and every preview shows a change");
    c.matches("restart", i.restart, /^(no|on-failure|always|unless-stopped)$/);
    c.integerAtLeast("memory", i.memory, 0);
    c.integerAtLeast("memory_swap", i.memorySwap, -1);
    c.integerAtLeast("wait_timeout", i.waitTimeout, 0);
    c.integerAtLeast("destroy_grace_seconds", i.destroyGraceSeconds, 0);
    c.matches("stop_signal", i.stopSignal, SIGNAL, "is not a signal the Docker engine knows");
    c.matches("user", i.user, /^[^:\s]+(:[^:\s]+)?$/, "must be user, user:group, uid or uid:gid");
    // The engine still takes "name:value" but logs it as deprecated; "=" is the separator it documents.
    c.list("security_opts", i.securityOpts, (v, at) =>
        c.matches(at, v, /^(no-new-privileges(=(true|false))?|(seccomp|apparmor|label|proc-opts)=.+|systempaths=unconfined)$/, "is not a security option the Docker engine accepts with its '=' separator"),
    );
    // Docker reads added capabilities back as CAP_<NAME>: another spelling is drift on every refresh.
    c.list("capabilities.add", i.capabilities?.adds, (v, at) => c.matches(at, v, /^CAP_[A-Z_]+$/, "reads back from Docker as CAP_<NAME>: give it so, or every refresh finds drift"));
    for (const kind of ["adds", "drops"] as const) {
        c.list(`capabilities.${kind === "adds" ? "add" : "drop"}`, i.capabilities?.[kind], (v, at) => c.matches(at, v, /^(ALL|(CAP_)?[A-Z_]+)$/, "is not a capability name"));
    }
    c.list("group_add", i.groupAdds, (v, at) => c.matches(at, v, /^[^:\s]+$/, "must be a group name or ID"));
    c.list("ulimit", i.ulimits, (u, at) => {
        for (const f of ["name", "soft", "hard"]) if (u?.[f] === undefined) c.fail(`${at}.${f}`, `The argument "${f}" is required`);
        c.integerAtLeast(`${at}.soft`, u?.soft, 0);
        c.integerAtLeast(`${at}.hard`, u?.hard, 0);
        if (typeof u?.soft === "number" && typeof u?.hard === "number" && u.soft > u.hard) c.fail(at, "the soft limit is above the hard limit (the engine refuses it)");
    });
    c.list("labels", i.labels, (l, at) => {
        for (const f of ["label", "value"]) if (typeof l?.[f] !== "string") c.fail(`${at}.${f}`, `The argument "${f}" is required`);
    });
    c.list("mounts", i.mounts, (m, at) => {
        if (!m?.target) c.fail(`${at}.target`, 'The argument "target" is required');
        c.matches(`${at}.type`, m?.type, /^(bind|volume|tmpfs)$/);
        if (m?.type === undefined) c.fail(`${at}.type`, 'The argument "type" is required');
    });
    c.list("ports", i.ports, (p, at) => {
        if (p?.internal === undefined) c.fail(`${at}.internal`, 'The argument "internal" is required');
        port(c, `${at}.internal`, p?.internal, false);
        port(c, `${at}.external`, p?.external, true);
        if (p?.ip !== undefined && net.isIP(p.ip) === 0) c.fail(`${at}.ip`, `${JSON.stringify(p.ip)} is not an IP address (the engine refuses the binding)`);
        c.matches(`${at}.protocol`, p?.protocol, /^(tcp|udp|sctp)$/, "is not a protocol the engine publishes (tcp, udp, sctp)");
    });
    c.list("networks_advanced", i.networksAdvanced, (n, at) => {
        if (!n?.name) c.fail(`${at}.name`, 'The argument "name" is required');
        if (n?.ipv4Address !== undefined && net.isIPv4(n.ipv4Address) === false) c.fail(`${at}.ipv4_address`, `${JSON.stringify(n.ipv4Address)} is not an IPv4 address`);
    });
    if (i.healthcheck !== undefined) {
        const h = i.healthcheck;
        c.list("healthcheck.test", h.tests, (v, at) => c.matches(at, v, /[\s\S]*/));
        if (Array.isArray(h.tests) && !["CMD", "CMD-SHELL", "NONE"].includes(h.tests[0])) c.fail("healthcheck.test[0]", 'the engine expects "CMD", "CMD-SHELL" or "NONE" first');
        for (const f of ["interval", "timeout", "startPeriod", "startInterval"]) c.duration(`healthcheck.${attribute(f)}`, h[f]);
        c.integerAtLeast("healthcheck.retries", h.retries, 0);
    }
    // Docker's own refusals for a container that joins another's network
    // namespace (runconfig: "conflicting options: ... and the container type
    // network mode"): it has no ports, networks or host name of its own.
    if (typeof i.networkMode === "string" && i.networkMode.startsWith("container:")) {
        if (i.ports?.length) c.fail("ports", "Error response from daemon: conflicting options: port publishing and the container type network mode");
        if (i.networksAdvanced?.length) c.fail("networks_advanced", "Error response from daemon: conflicting options: networks and the container type network mode");
        if (i.hostname !== undefined) c.fail("hostname", "Error response from daemon: conflicting options: hostname and the network mode");
    }
    // resourceDockerContainerCreate: a wait with nothing to wait for is an error.
    if (i.wait === true && (i.healthcheck === undefined || i.start === false)) {
        c.fail("wait", "you have supplied a 'wait' argument, but the container does not have a healthcheck defined (or is not started)");
    }
    c.list("upload", i.uploads, (u, at) => {
        if (!u?.file) c.fail(`${at}.file`, 'The argument "file" is required');
        const sources = ["content", "contentBase64", "source"].filter((f) => u?.[f] !== undefined && u?.[f] !== "");
        if (sources.length !== 1) c.fail(at, "error with upload content: exactly one of 'content', 'content_base64', or 'source' must be set");
        c.matches(`${at}.permissions`, u?.permissions, /^0[0-7]{3}$/);
        // With an owner or group the provider asks the engine to copy with the
        // container's UID/GID; Docker 20.10 looks a numeric "uid:gid" user up as
        // one name in the host's passwd database and refuses the copy.
        for (const f of ["owner", "group"]) {
            if (u?.[f] !== undefined) c.fail(`${at}.${f}`, `Unable to upload volume content: Error response from daemon: getent unable to find entry "${i.user ?? "33:33"}" in passwd database (Docker 20.10)`);
        }
    });
    // The engine refuses to copy into a container whose root filesystem is read-only.
    if (i.readOnly === true && Array.isArray(i.uploads) && i.uploads.length > 0) {
        c.fail("upload", "Unable to upload volume content: Error response from daemon: container rootfs is marked read-only");
    }
}

function dockerNetwork(c: Checker, i: Inputs) {
    c.required("name");
    c.list("ipam_config", i.ipamConfigs, (ipam, at) => {
        const subnet = cidr(ipam?.subnet);
        if (ipam?.subnet !== undefined && !subnet) c.fail(`${at}.subnet`, `invalid CIDR address: ${ipam.subnet}`);
        const range = cidr(ipam?.ipRange);
        if (ipam?.ipRange !== undefined && !range) c.fail(`${at}.ip_range`, `invalid CIDR address: ${ipam.ipRange}`);
        if (subnet && range && !(range.bits >= subnet.bits && range.base >>> 0 >= subnet.base >>> 0 && (range.base >>> 0) < (subnet.base >>> 0) + 2 ** (32 - subnet.bits))) {
            c.fail(`${at}.ip_range`, `Error response from daemon: Invalid pool request: ip-range ${ipam.ipRange} is not in subnet ${ipam.subnet}`);
        }
    });
}

function cidr(value: unknown): { base: number; bits: number } | undefined {
    const m = typeof value === "string" ? /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(value) : null;
    if (!m || !net.isIPv4(m[1]) || Number(m[2]) > 32) return undefined;
    return { base: m[1].split(".").reduce((a, o) => a * 256 + Number(o), 0), bits: Number(m[2]) };
}

function dockerVolume(_c: Checker, _i: Inputs) {
    // Every field the stack could set is optional and free-form.
}

/** containerd's platforms.Parse for the platforms the engine builds Linux images for. */
const PLATFORM = /^linux\/(amd64|arm64(\/v8)?|arm\/v[5-7]|386|ppc64le|s390x|riscv64|mips64le)$/;

function dockerImage(c: Checker, i: Inputs, cwd: string) {
    c.required("imageName");
    const build = i.build;
    if (build === undefined) return;
    // Check: the Dockerfile path is relative to the working directory, not the context.
    if (typeof build.dockerfile === "string" && !fs.existsSync(path.resolve(cwd, build.dockerfile))) {
        const hint = path.join(build.context ?? ".", build.dockerfile);
        c.fail("build.dockerfile", `could not open dockerfile at relative path ${JSON.stringify(build.dockerfile)}${fs.existsSync(path.resolve(cwd, hint)) ? `. Try setting \`dockerfile\` to ${JSON.stringify(hint)}` : ""}`);
    }
    if (typeof build.context === "string" && !fs.existsSync(path.resolve(cwd, build.context))) c.fail("build.context", `error resolving context: ${build.context} does not exist`);
    c.oneOf("build.builder_version", build.builderVersion, ["BuilderV1", "BuilderBuildKit"]);
    c.matches("build.platform", build.platform, PLATFORM, "is not a platform the engine builds for (os/arch[/variant], e.g. linux/amd64)");
    if (build.args !== undefined) {
        for (const [k, v] of Object.entries(build.args)) if (typeof v !== "string") c.fail(`build.args.${k}`, "expected a string");
    }
}

const RULES: Record<string, (c: Checker, i: Inputs, cwd: string) => void> = {
    "tls:index/privateKey:PrivateKey": tlsPrivateKey,
    "tls:index/selfSignedCert:SelfSignedCert": tlsSelfSignedCert,
    "tls:index/locallySignedCert:LocallySignedCert": tlsLocallySignedCert,
    "tls:index/certRequest:CertRequest": tlsCertRequest,
    "docker:index/container:Container": dockerContainer,
    "docker:index/network:Network": dockerNetwork,
    "docker:index/volume:Volume": dockerVolume,
    "docker:index/image:Image": dockerImage,
};

/** Resource types the rules cover; the mock refuses any other provider resource, so a new one cannot slip past them. */
export const CHECKED_TYPES = Object.keys(RULES);

/**
 * What the real provider (or the engine behind it) would say about these
 * inputs: one line per problem, empty when it would accept them. `inputs` are
 * plain values (secrets unwrapped), as the mock receives them.
 */
export function providerProblems(type: string, inputs: Inputs, cwd = process.cwd()): string[] {
    const rule = RULES[type];
    if (!rule) return [`${type}: no provider rules for this resource type (add them to test/support/providerRules.ts from the provider's source)`];
    const checker = new Checker(inputs);
    rule(checker, inputs, cwd);
    return checker.problems;
}
