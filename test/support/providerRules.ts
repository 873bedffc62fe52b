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
//     (ports, signals, security options, upload ownership);
//   - docker.Service, docker.Secret, docker.ServiceConfig (Swarm mode): the
//     same provider's resource_docker_service*.go, resource_docker_secret.go,
//     resource_docker_config.go and validators.go; what the Docker client does
//     to the spec before sending it (docker/docker v28.5.2, client/
//     service_create.go) and what the swarm manager refuses (moby/swarmkit,
//     manager/controlapi/{service,common,config,secret}.go and api/validation/
//     secrets.go, as in the bump_20.10 branch Docker 20.10 ships; unchanged in
//     v2.0.0);
//   - the provider itself (pulumi:providers:docker): provider.go and config.go
//     of the same provider, pulumi-docker's provider/image.go
//     (configureDockerClientInner, run at Configure), and the Docker client's
//     ParseHostURL / go-connections sockets.ConfigureTransport.
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

// ---------------------------------------------------------------------------
// Docker Swarm mode: docker.Service, docker.Secret, docker.ServiceConfig and
// the provider resource. Paths below are in kreuzwerker/terraform-provider-
// docker v4.5 (internal/provider/), moby/swarmkit (bump_20.10, the branch
// Docker 20.10 vendors) and docker/docker v28.5.2 (the client the provider
// links).
// ---------------------------------------------------------------------------

/** The SDK's wording for a missing Required attribute, at any depth. */
function requiredAt(c: Checker, at: string, value: unknown) {
    if (value === undefined || value === null || value === "") {
        const leaf = at.replace(/\[\d+\]$/, "").split(".").pop()!;
        c.fail(at, `The argument "${leaf}" is required, but no definition was found.`);
    }
}

/** validators.go validateIntegerGeqThan: `'v' cannot be lower than n` (after the SDK's type check). */
function geq(c: Checker, at: string, value: unknown, min: number) {
    if (value === undefined || value === null) return;
    if (typeof value !== "number" || !Number.isInteger(value)) c.fail(at, `expected a whole number, got ${JSON.stringify(value)}`);
    else if (value < min) c.fail(at, `'${value}' cannot be lower than ${min}`);
}

/**
 * validators.go validateStringMatchesPattern: `'v' doesn't match the pattern
 * 'p'`. The pattern is the provider's Go regexp, matched as Go's MatchString
 * does (unanchored unless the pattern anchors itself).
 */
function pattern(c: Checker, at: string, value: unknown, goPattern: string) {
    if (value === undefined || value === null) return;
    if (typeof value !== "string" || !new RegExp(goPattern).test(value)) c.fail(at, `'${value}' doesn't match the pattern '${goPattern}'`);
}

/** validators.go validateStringIsFloatRatio: strconv.ParseFloat, then 0.0 <= v <= 1.0. */
function floatRatio(c: Checker, at: string, value: unknown) {
    if (value === undefined || value === null) return;
    if (typeof value !== "string") {
        c.fail(at, `'${value}' is not a string`);
        return;
    }
    const f = GO_FLOAT.test(value.trim() === value ? value : "") ? Number(value) : NaN;
    if (Number.isNaN(f)) c.fail(at, `'${value}' is not a float`);
    else if (f < 0 || f > 1) c.fail(at, `'${value}' has to be between 0.0 and 1.0`);
    // flattenServiceUpdateOrRollbackConfig reads it back with
    // strconv.FormatFloat(v, 'f', 1, 64) and the DiffSuppressFunc compares
    // floats: "0.25" comes back as "0.2" and differs on every refresh.
    else if (Number(goOneDecimal(f)) !== f) c.fail(at, `'${value}' reads back from Docker as "${goOneDecimal(f)}" (one decimal): give it so, or every refresh finds drift`);
}

/**
 * strconv.FormatFloat(float64(float32(f)), 'f', 1, 64): the exact value of the
 * float32, rounded half to even (ftoa.go shouldRoundUp). Ten times a float32
 * in [0, 1] is exact in a double, so the halfway test is exact.
 */
function goOneDecimal(f: number): string {
    const t = Math.fround(f) * 10;
    const down = Math.floor(t);
    const rest = t - down;
    const tenths = rest > 0.5 || (rest === 0.5 && down % 2 === 1) ? down + 1 : down;
    return (tenths / 10).toFixed(1);
}
const GO_FLOAT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$/i;

/** Nanoseconds per unit of Go's time.ParseDuration. */
const GO_DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 6e10, h: 3.6e12 };

/** Go's time.ParseDuration, in nanoseconds; undefined when Go refuses the string. */
export function parseGoDuration(value: string): number | undefined {
    const m = /^([-+]?)(.*)$/.exec(value)!;
    const sign = m[1] === "-" ? -1 : 1;
    if (m[2] === "0") return 0;
    if (m[2] === "") return undefined;
    let ns = 0;
    const part = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
    let at = 0;
    while (at < m[2].length) {
        part.lastIndex = at;
        const p = part.exec(m[2]);
        if (!p || p[1] === ".") return undefined;
        ns += Number(p[1]) * GO_DURATION_UNITS[p[2]];
        at = part.lastIndex;
    }
    return sign * Math.round(ns);
}

/** Go's time.Duration.String(): "1m30s", "500ms", "1h0m0s", "0s". */
export function goDurationString(ns: number): string {
    if (ns === 0) return "0s";
    const sign = ns < 0 ? "-" : "";
    let u = Math.abs(ns);
    const frac = (v: number, unit: number) => {
        const whole = Math.floor(v / unit);
        const rest = v - whole * unit;
        if (rest === 0) return String(whole);
        const digits = String(unit).length - 1;
        return `${whole}.${String(rest).padStart(digits, "0").replace(/0+$/, "")}`;
    };
    if (u < 1e3) return `${sign}${u}ns`;
    if (u < 1e6) return `${sign}${frac(u, 1e3)}µs`;
    if (u < 1e9) return `${sign}${frac(u, 1e6)}ms`;
    const h = Math.floor(u / 3.6e12);
    u -= h * 3.6e12;
    const min = Math.floor(u / 6e10);
    u -= min * 6e10;
    const s = `${frac(u, 1e9)}s`;
    return sign + (h > 0 ? `${h}h${min}m${s}` : min > 0 ? `${min}m${s}` : s);
}

/** resource_docker_service_structures.go shortDur: what the provider writes to its state for a duration it reads back. */
export function shortDur(ns: number): string {
    let s = goDurationString(ns);
    if (s.endsWith("m0s")) s = s.slice(0, -2);
    if (s.endsWith("h0m")) s = s.slice(0, -2);
    return s;
}

/**
 * validateDurationGeq0, then (for the durations the provider reads back from
 * Docker through shortDur) the spelling Docker gives back: "60s" is stored as
 * one minute and comes back as "1m", a difference on every refresh.
 */
function serviceDuration(c: Checker, at: string, value: unknown, readBack = true) {
    if (value === undefined || value === null) return;
    if (typeof value !== "string" || parseGoDuration(value) === undefined) {
        c.fail(at, `'${value}' is not a valid duration`);
        return;
    }
    const ns = parseGoDuration(value)!;
    if (ns < 0) c.fail(at, `'${value}' duration must not be negative`);
    else if (readBack && shortDur(ns) !== value) c.fail(at, `'${value}' reads back from Docker as "${shortDur(ns)}": give it so, or every refresh finds drift`);
}

/** A Docker API error as the provider surfaces it (swarmkit's gRPC status inside the daemon's response). */
const swarmRefusal = (message: string) => `Error response from daemon: rpc error: code = InvalidArgument desc = ${message}`;

/** The labels blocks of labelSchema (helpers.go newLabelSchema): label and value are Required. */
function labelBlocks(c: Checker, at: string, value: unknown) {
    c.list(at, value, (l, lat) => {
        requiredAt(c, `${lat}.label`, l?.label);
        if (typeof l?.value !== "string") requiredAt(c, `${lat}.value`, undefined);
    });
}

/**
 * containerd's pkg/cap Known() (what moby's oci/caps knows on Linux 5.9+):
 * the engine upper-cases a capability and adds CAP_ (NormalizeLegacyCapabilities),
 * then refuses any other name.
 */
export const LINUX_CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
    "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
    "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE",
].map((n) => `CAP_${n}`);

/**
 * distribution/reference's grammar (ParseNormalizedNamed): [domain/]path[:tag][@digest],
 * path components lower case. Returns the parts, or undefined when swarmkit's
 * validateImage would refuse it.
 */
function parseImageReference(image: string): { domain?: string; path: string; tag?: string; digest?: string } | undefined {
    const m = /^(?:((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::\d+)?|\[[0-9a-fA-F:]+\](?::\d+)?)\/)?([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$/.exec(image);
    if (!m) return undefined;
    let domain: string | undefined = m[1];
    let path = m[2];
    // splitDockerDomain: a first component without ".", ":" and not "localhost" (or with upper case) is part of the path.
    if (domain !== undefined && !/[.:]/.test(domain) && domain !== "localhost" && domain === domain.toLowerCase()) {
        path = `${domain}/${path}`;
        domain = undefined;
    }
    if (domain !== undefined && domain !== domain.toLowerCase() && !/[.:]/.test(domain) && domain !== "localhost") return undefined;
    if (`${domain ? `${domain}/` : ""}${path}`.length > 255) return undefined;
    if (/^[a-f0-9]{64}$/.test(path) && domain === undefined) return undefined;
    return { domain, path, tag: m[3], digest: m[4] };
}

/** reference.FamiliarString(reference.TagNameOnly(ParseNormalizedNamed(image))): what the Docker client sends and Docker reads back. */
function familiarTagged(ref: NonNullable<ReturnType<typeof parseImageReference>>): string {
    let { domain, path } = ref;
    if (domain === "index.docker.io") domain = "docker.io";
    if (domain === "docker.io") {
        domain = undefined;
        if (/^library\/[^/]+$/.test(path)) path = path.slice("library/".length);
    }
    const tag = ref.tag ?? (ref.digest ? undefined : "latest");
    return `${domain ? `${domain}/` : ""}${path}${tag ? `:${tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`;
}

function serviceImage(c: Checker, at: string, image: unknown) {
    if (typeof image !== "string" || image === "") return;
    // An image ID (docker.Image's repoDigest when it does not push) parses as
    // the image "sha256" with a tag, and the Swarm executor never pulls an
    // image given by ID (daemon/cluster/executor/container/adapter.go
    // pullImage): only a node that built it can start the task.
    if (/^sha256:[0-9a-f]{64}$/.test(image)) {
        c.fail(at, `${JSON.stringify(image)} is an image ID, not a pushed image: Swarm nodes never pull an image given by ID, so tasks start only on a node that already has it; give the pushed name@sha256:… (docker.Image's repoDigest once it pushes)`);
        return;
    }
    const ref = parseImageReference(image);
    // swarmkit controlapi/service.go validateImage.
    if (!ref) {
        c.fail(at, swarmRefusal(`ContainerSpec: ${JSON.stringify(image)} is not a valid repository/tag`));
        return;
    }
    // docker client service_create.go / service_update.go imageWithTagString:
    // the client sends the familiar, tagged form, and the provider reads that back.
    const sent = familiarTagged(ref);
    if (sent !== image) {
        c.fail(at, `${JSON.stringify(image)} reads back from Docker as ${JSON.stringify(sent)} (the Docker client rewrites it before sending): give it so, or every refresh finds drift`);
        return;
    }
    // resourceDockerServiceCreate sets QueryRegistry: the client pins a tag to
    // the registry's digest at create (resolveContainerSpecImage), so the
    // service reads back as name:tag@sha256:…; resourceDockerServiceUpdate
    // does not, so the next `pulumi up` sends the bare tag back and Swarm
    // replaces every task. An image only on the local engine is left as is
    // (with a warning), but then only that one node can run it.
    if (!ref.digest) {
        c.fail(at, `${JSON.stringify(image)} is pinned to its registry digest when the service is created (the provider creates it with QueryRegistry) and reads back as ${JSON.stringify(`${image}@sha256:…`)}; the next update sends the tag alone and restarts every task: give the image by digest (name[:tag]@sha256:…)`);
    }
}

/** The mount types and fields the engine takes (volume/mounts/linux_parser.go ValidateMountConfig), checked when a task starts. */
function serviceMounts(c: Checker, at: string, mounts: unknown) {
    const targets = new Set<string>();
    c.list(at, mounts, (m, mat) => {
        requiredAt(c, `${mat}.target`, m?.target);
        requiredAt(c, `${mat}.type`, m?.type);
        pattern(c, `${mat}.type`, m?.type, "^(bind|volume|tmpfs)$");
        pattern(c, `${mat}.bind_options.propagation`, m?.bindOptions?.propagation, "^(private|rprivate|shared|rshared|slave|rslave)$");
        const refuse = (why: string) => c.fail(mat, `task rejected: invalid mount config for type ${JSON.stringify(m.type)}: ${why}`);
        if (m?.type === "bind") {
            if (!m.source) refuse("field Source must not be empty");
            if (m.volumeOptions !== undefined) refuse("field VolumeOptions must not be specified");
            if (m.tmpfsOptions !== undefined) refuse("field TmpfsOptions must not be specified");
        } else if (m?.type === "volume") {
            if (m.bindOptions !== undefined) refuse("field BindOptions must not be specified");
            if (m.tmpfsOptions !== undefined) refuse("field TmpfsOptions must not be specified");
        } else if (m?.type === "tmpfs") {
            if (m.source) refuse("field Source must not be specified");
            if (m.bindOptions !== undefined) refuse("field BindOptions must not be specified");
            if (m.volumeOptions !== undefined) refuse("field VolumeOptions must not be specified");
        }
        if (typeof m?.target === "string") {
            // swarmkit validateMounts.
            if (targets.has(m.target)) c.fail(mat, swarmRefusal(`ContainerSpec: duplicate mount point: ${m.target}`));
            targets.add(m.target);
        }
        labelBlocks(c, `${mat}.volume_options.labels`, m?.volumeOptions?.labels);
    });
}

/**
 * Secret and config references: the provider requires the ID and the file
 * name; swarmkit (validateSecretRefsSpec / validateConfigRefsSpec) also
 * requires the name, which the provider leaves optional and sends empty, and
 * refuses two references with one target file.
 */
function serviceReferences(c: Checker, at: string, refs: unknown, kind: "secret" | "config") {
    const files = new Map<string, string>();
    c.list(at, refs, (r, rat) => {
        const id = kind === "secret" ? r?.secretId : r?.configId;
        const name = kind === "secret" ? r?.secretName : r?.configName;
        requiredAt(c, `${rat}.${kind}_id`, id);
        requiredAt(c, `${rat}.file_name`, r?.fileName);
        geq(c, `${rat}.file_mode`, r?.fileMode, 0);
        if (id && !name) c.fail(`${rat}.${kind}_name`, swarmRefusal(`malformed ${kind} reference`) + ` (swarmkit needs the ${kind}'s name as well as its ID)`);
        if (typeof r?.fileName === "string" && r.fileName !== "") {
            if (files.has(r.fileName)) c.fail(rat, swarmRefusal(`${kind} references '${files.get(r.fileName)}' and '${name ?? ""}' have a conflicting target: '${r.fileName}'`));
            files.set(r.fileName, name ?? "");
        }
    });
}

/** swarmkit validateResources: non-zero CPU at least 1e6 nano CPUs, non-zero memory at least 4 MiB. */
function serviceResources(c: Checker, at: string, r: any) {
    if (r === undefined || r === null) return;
    for (const [key, limits] of [["limits", r.limits], ["reservation", r.reservation]] as const) {
        if (limits === undefined || limits === null) continue;
        for (const f of ["nanoCpus", "memoryBytes"]) {
            if (limits[f] !== undefined && (typeof limits[f] !== "number" || !Number.isInteger(limits[f]))) c.fail(`${at}.${key}.${attribute(f)}`, `expected a whole number, got ${JSON.stringify(limits[f])}`);
        }
        if (typeof limits.nanoCpus === "number" && limits.nanoCpus !== 0 && limits.nanoCpus < 1e6) {
            c.fail(`${at}.${key}.nano_cpus`, swarmRefusal(`invalid cpu value ${limits.nanoCpus / 1e9}: Must be at least 0.001`));
        }
        if (typeof limits.memoryBytes === "number" && limits.memoryBytes !== 0 && limits.memoryBytes < 4 * 1024 * 1024) {
            c.fail(`${at}.${key}.memory_bytes`, swarmRefusal(`invalid memory value ${limits.memoryBytes}: Must be at least 4MiB`));
        }
    }
    // createGenericResources splits each on "=" and indexes [1]: without one the provider panics.
    const generic = r.reservation?.genericResources;
    c.list(`${at}.reservation.generic_resources.named_resources_spec`, generic?.namedResourcesSpecs, (v, gat) => c.matches(gat, v, /^[^=]+=.*$/, "must be KIND=VALUE (the provider splits it on '=' and panics without one)"));
    c.list(`${at}.reservation.generic_resources.discrete_resources_spec`, generic?.discreteResourcesSpecs, (v, gat) => c.matches(gat, v, /^[^=]+=\d+$/, "must be KIND=<integer> (the provider splits it on '=' and parses the count)"));
}

/** swarmkit manager/constraint Parse: key (==|!=) value. */
function placementConstraint(c: Checker, at: string, v: unknown) {
    if (typeof v !== "string") {
        c.fail(at, `expected a string, got ${JSON.stringify(v)}`);
        return;
    }
    const op = ["==", "!="].find((o) => v.includes(o));
    if (!op) {
        c.fail(at, swarmRefusal("constraint expected one operator from ==, !="));
        return;
    }
    const [key, value] = [v.slice(0, v.indexOf(op)).trim(), v.slice(v.indexOf(op) + op.length).trim()];
    if (!/^[a-z_][a-z0-9\-_.]+$/i.test(key)) c.fail(at, swarmRefusal(`key '${key}' is invalid`));
    else if (!/^[a-z0-9:\-_\s.*()?+[\]\\^$|/]+$/i.test(value)) c.fail(at, swarmRefusal(`value '${value}' is invalid`));
}

function serviceHealthcheck(c: Checker, at: string, h: any) {
    if (h === undefined || h === null) return;
    c.list(`${at}.test`, h.tests, (v, tat) => c.matches(tat, v, /[\s\S]*/, "must be a string"));
    // daemon/health.go getProbe: any other first word and the engine runs no
    // check at all (it only logs "Unknown healthcheck type").
    if (Array.isArray(h.tests) && h.tests.length > 0 && !["CMD", "CMD-SHELL", "NONE"].includes(h.tests[0])) {
        c.fail(`${at}.test[0]`, `the engine expects "CMD", "CMD-SHELL" or "NONE" first (with anything else it runs no healthcheck: daemon/health.go "Unknown healthcheck type")`);
    }
    if (Array.isArray(h.tests) && ["CMD", "CMD-SHELL"].includes(h.tests[0]) && h.tests.length < 2) c.fail(`${at}.test`, `${h.tests[0]} needs a command after it`);
    for (const f of ["interval", "timeout", "startPeriod"]) {
        serviceDuration(c, `${at}.${attribute(f)}`, h[f]);
        // swarmkit validateHealthCheck: a non-zero duration below 1ms.
        const ns = typeof h[f] === "string" ? parseGoDuration(h[f]) : undefined;
        if (ns !== undefined && ns > 0 && ns < 1e6) {
            const field = { interval: "Interval", timeout: "Timeout", startPeriod: "StartPeriod" }[f];
            c.fail(`${at}.${attribute(f)}`, swarmRefusal(`ContainerSpec: ${field} in HealthConfig cannot be less than 1ms`));
        }
    }
    geq(c, `${at}.retries`, h.retries, 0);
}

/** update_config and rollback_config (resource_docker_service.go; daemon/cluster/convert/service.go updateConfigToGRPC). */
function serviceUpdateConfig(c: Checker, at: string, u: any, rollback: boolean) {
    if (u === undefined || u === null) return;
    geq(c, `${at}.parallelism`, u.parallelism, 0);
    serviceDuration(c, `${at}.delay`, u.delay);
    serviceDuration(c, `${at}.monitor`, u.monitor);
    floatRatio(c, `${at}.max_failure_ratio`, u.maxFailureRatio);
    if (!rollback) {
        pattern(c, `${at}.failure_action`, u.failureAction, "^(pause|continue|rollback)$");
        pattern(c, `${at}.order`, u.order, "^(stop-first|start-first)$");
        return;
    }
    // The rollback patterns are not anchored: "rollback" fails them, and a
    // value that merely contains a match passes them but not the daemon.
    pattern(c, `${at}.failure_action`, u.failureAction, "(pause|continue)");
    pattern(c, `${at}.order`, u.order, "(stop-first|start-first)");
    if (typeof u.failureAction === "string" && /(pause|continue)/.test(u.failureAction) && !["pause", "continue"].includes(u.failureAction)) {
        c.fail(`${at}.failure_action`, `Error response from daemon: unrecognized update failure action ${u.failureAction}`);
    }
    if (typeof u.order === "string" && /(stop-first|start-first)/.test(u.order) && !["stop-first", "start-first"].includes(u.order)) {
        c.fail(`${at}.order`, `Error response from daemon: unrecognized update order ${u.order}`);
    }
}

function dockerService(c: Checker, i: Inputs) {
    c.required("name", "taskSpec");
    // swarmkit controlapi/common.go validateAnnotations (services, not secrets or configs).
    if (typeof i.name === "string" && i.name !== "") {
        if (!/^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/.test(i.name)) c.fail("name", swarmRefusal("name must be valid as a DNS name component"));
        else if (i.name.length > 63) c.fail("name", swarmRefusal("name must be 63 characters or fewer"));
    }
    labelBlocks(c, "labels", i.labels);
    if (i.auth !== undefined) requiredAt(c, "auth.server_address", i.auth?.serverAddress);

    const task = i.taskSpec;
    if (task !== undefined && task !== null) {
        requiredAt(c, "task_spec.container_spec", task.containerSpec);
        const cs = task.containerSpec ?? {};
        const at = "task_spec.container_spec";
        requiredAt(c, `${at}.image`, cs.image);
        serviceImage(c, `${at}.image`, cs.image);
        labelBlocks(c, `${at}.labels`, cs.labels);
        serviceMounts(c, `${at}.mounts`, cs.mounts);
        serviceDuration(c, `${at}.stop_grace_period`, cs.stopGracePeriod);
        c.matches(`${at}.stop_signal`, cs.stopSignal, SIGNAL, "is not a signal the Docker engine knows");
        serviceHealthcheck(c, `${at}.healthcheck`, cs.healthcheck);
        c.list(`${at}.hosts`, cs.hosts, (h, hat) => {
            requiredAt(c, `${hat}.host`, h?.host);
            requiredAt(c, `${hat}.ip`, h?.ip);
            if (typeof h?.ip === "string" && h.ip !== "" && net.isIP(h.ip) === 0) c.fail(`${hat}.ip`, `${JSON.stringify(h.ip)} is not an IP address (the task's /etc/hosts takes "IP host")`);
        });
        if (cs.dnsConfig !== undefined) requiredAt(c, `${at}.dns_config.nameservers`, Array.isArray(cs.dnsConfig?.nameservers) && cs.dnsConfig.nameservers.length ? "set" : undefined);
        serviceReferences(c, `${at}.secrets`, cs.secrets, "secret");
        serviceReferences(c, `${at}.configs`, cs.configs, "config");
        pattern(c, `${at}.isolation`, cs.isolation, "^(default|process|hyperv)$");
        // A service's capabilities are stored as given and read back as
        // given (no drift, unlike a container's); the engine normalizes them
        // (upper case, CAP_ prefix) when a task starts and rejects the task
        // for a name it does not know (oci/caps NormalizeLegacyCapabilities).
        for (const [key, field] of [["cap_add", "capAdds"], ["cap_drop", "capDrops"]] as const) {
            c.list(`${at}.${key}`, cs[field], (v, vat) => {
                if (typeof v !== "string") return c.fail(vat, `expected a string, got ${JSON.stringify(v)}`);
                const n = v.toUpperCase();
                const normalized = n === "ALL" || n.startsWith("CAP_") ? n : `CAP_${n}`;
                if (normalized !== "ALL" && !LINUX_CAPABILITIES.includes(normalized)) c.fail(vat, `task rejected: Error response from daemon: unknown capability: ${JSON.stringify(normalized)}`);
            });
        }
        c.matches(`${at}.user`, cs.user, /^[^:\s]+(:[^:\s]+)?$/, "must be user, user:group, uid or uid:gid");
        c.list(`${at}.command`, cs.commands, (v, vat) => c.matches(vat, v, /[\s\S]*/, "must be a string"));

        serviceResources(c, "task_spec.resources", task.resources);
        const rp = task.restartPolicy;
        if (rp !== undefined && rp !== null) {
            pattern(c, "task_spec.restart_policy.condition", rp.condition, "^(none|on-failure|any)$");
            serviceDuration(c, "task_spec.restart_policy.delay", rp.delay);
            serviceDuration(c, "task_spec.restart_policy.window", rp.window);
            geq(c, "task_spec.restart_policy.max_attempts", rp.maxAttempts, 0);
        }
        const pl = task.placement;
        if (pl !== undefined && pl !== null) {
            geq(c, "task_spec.placement.max_replicas", pl.maxReplicas, 0);
            c.list("task_spec.placement.constraints", pl.constraints, (v, vat) => placementConstraint(c, vat, v));
            // stringSetToPlacementPrefs passes each string whole as the spread
            // descriptor, and the scheduler (manager/scheduler/nodeset.go)
            // ignores any descriptor but node.labels.* / engine.labels.*:
            // "spread=node.labels.zone" spreads nothing.
            c.list("task_spec.placement.prefs", pl.prefs, (v, vat) =>
                c.matches(vat, v, /^(node|engine)\.labels\..+$/i, "is not a spread descriptor the scheduler uses (node.labels.<label> or engine.labels.<label>; the provider passes the string whole, so no \"spread=\" prefix)"),
            );
            c.list("task_spec.placement.platforms", pl.platforms, (p, pat) => {
                requiredAt(c, `${pat}.architecture`, p?.architecture);
                requiredAt(c, `${pat}.os`, p?.os);
            });
        }
        geq(c, "task_spec.force_update", task.forceUpdate, 0);
        pattern(c, "task_spec.runtime", task.runtime, "^(container|plugin)$");
        // The Docker client's validateServiceSpec: container_spec is required, so "plugin" never fits.
        if (task.runtime === "plugin") c.fail("task_spec.runtime", "mismatched runtime with container spec");
        c.list("task_spec.networks_advanced", task.networksAdvanceds, (n, nat) => {
            // Deprecated: "Use the id attribute." The SDK prints the warning on every preview and up.
            if (n?.name !== undefined) c.fail(`${nat}.name`, `Argument is deprecated: Use the id attribute. (the provider warns on every \`pulumi up\`; give the network's id instead)`);
            // createServiceAdvancedNetworks.
            if (!n?.id && !n?.name) c.fail(nat, "network 'name' or 'id' must be specified");
            // swarmkit validateNetworks.
            if (n?.id === "ingress" || n?.name === "ingress") c.fail(nat, swarmRefusal('Service cannot be explicitly attached to the ingress network "ingress"'));
        });
        if (task.logDriver !== undefined) requiredAt(c, "task_spec.log_driver.name", task.logDriver?.name);
    }

    // The mode block is marked ForceNew, but a change of the replica count
    // inside it is an in-place update (a real `pulumi preview` shows
    // "update", and the swarm engine suite scales 2 -> 4 so); name, auth,
    // container_spec.hosts and sysctl, and networks_advanced's fields do force
    // a new service.
    const mode = i.mode;
    if (mode !== undefined && mode !== null) {
        if (mode.replicated !== undefined) geq(c, "mode.replicated.replicas", mode.replicated?.replicas, 0);
        // ConflictsWith is checked on the configuration: an explicit `global: false` conflicts too.
        if (mode.global !== undefined && mode.replicated !== undefined) c.fail("mode.global", `"mode.0.global": conflicts with mode.0.replicated`);
    }
    if (mode?.global !== undefined && i.convergeConfig !== undefined) c.fail("converge_config", `"converge_config": conflicts with mode.0.global`);
    if (i.convergeConfig !== undefined && i.convergeConfig !== null) {
        // Not read back: only validateDurationGeq0 applies.
        serviceDuration(c, "converge_config.delay", i.convergeConfig.delay, false);
        serviceDuration(c, "converge_config.timeout", i.convergeConfig.timeout, false);
    }
    serviceUpdateConfig(c, "update_config", i.updateConfig, false);
    serviceUpdateConfig(c, "rollback_config", i.rollbackConfig, true);

    const ep = i.endpointSpec;
    if (ep !== undefined && ep !== null) {
        pattern(c, "endpoint_spec.mode", ep.mode, "^(vip|dnsrr)$");
        const published = new Set<string>();
        c.list("endpoint_spec.ports", ep.ports, (p, pat) => {
            requiredAt(c, `${pat}.target_port`, p?.targetPort);
            port(c, `${pat}.target_port`, p?.targetPort, false);
            port(c, `${pat}.published_port`, p?.publishedPort, true);
            pattern(c, `${pat}.protocol`, p?.protocol, "^(tcp|udp|sctp)$");
            pattern(c, `${pat}.publish_mode`, p?.publishMode, "^(host|ingress)$");
            // swarmkit validateEndpointSpec; publish_mode defaults to ingress.
            if (ep.mode === "dnsrr" && (p?.publishMode ?? "ingress") === "ingress") c.fail(pat, swarmRefusal("EndpointSpec: port published with ingress mode can't be used with dnsrr mode"));
            if (typeof p?.publishedPort === "number" && p.publishedPort !== 0) {
                const key = `${p.publishedPort}/${p.protocol ?? "tcp"}`;
                if (published.has(key)) c.fail(pat, swarmRefusal("EndpointSpec: duplicate published ports provided"));
                published.add(key);
            }
        });
    }
}

/** base64.StdEncoding.DecodeString, as validateStringIsBase64Encoded calls it: padded, "+/" (not URL-safe), \r and \n skipped. The decoded length, or undefined. */
export function goStdBase64Length(value: string): number | undefined {
    const s = value.replace(/[\r\n]/g, "");
    if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return undefined;
    return (s.length / 4) * 3 - (s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0);
}

/** swarmkit controlapi/common.go validateConfigOrSecretAnnotations. */
function configOrSecretName(c: Checker, name: unknown) {
    if (typeof name !== "string" || name === "") return;
    if (name.length > 64 || !/^[a-zA-Z0-9]+(?:[a-zA-Z0-9_.-]*[a-zA-Z0-9])?$/.test(name)) {
        c.fail("name", swarmRefusal("invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]"));
    }
}

/**
 * docker.Secret. Every field is ForceNew (name, data, labels): new data is a
 * new secret, and Pulumi creates the replacement before deleting the old one,
 * so under one fixed name the create fails ("secret X already exists"). This
 * is why the program names secrets and configs by their content. (Swarm also
 * refuses to delete one a service still uses, which create-before-delete
 * avoids: the service moves to the new one first.)
 */
function dockerSecret(c: Checker, i: Inputs) {
    c.required("name", "data");
    configOrSecretName(c, i.name);
    labelBlocks(c, "labels", i.labels);
    if (i.data === undefined || i.data === null || i.data === "") return;
    // The value is Sensitive: the provider's message prints it, this one does not.
    const size = typeof i.data === "string" ? goStdBase64Length(i.data) : undefined;
    if (size === undefined) c.fail("data", "'<sensitive value>' is not base64 decodeable");
    // swarmkit api/validation/secrets.go ValidateSecretPayload (500 KiB).
    else if (size < 1 || size >= 500 * 1024) c.fail("data", swarmRefusal(`secret data must be larger than 0 and less than ${500 * 1024} bytes`));
}

/** docker.ServiceConfig (docker_config): as a secret, every field ForceNew; data (base64) or data_raw, exactly one. */
function dockerServiceConfig(c: Checker, i: Inputs) {
    c.required("name");
    configOrSecretName(c, i.name);
    labelBlocks(c, "labels", i.labels);
    const given = ["data", "dataRaw"].filter((f) => i[f] !== undefined && i[f] !== null);
    if (given.length === 0) c.fail("data", '"data": one of `data,data_raw` must be specified');
    if (given.length === 2) c.fail("data", '"data": only one of `data,data_raw` can be specified, but `data,data_raw` were specified.');
    let size: number | undefined;
    if (i.data !== undefined && i.data !== null) {
        size = typeof i.data === "string" ? goStdBase64Length(i.data) : undefined;
        if (size === undefined) c.fail("data", `'${String(i.data).slice(0, 40)}${String(i.data).length > 40 ? "…" : ""}' is not base64 decodeable`);
    } else if (typeof i.dataRaw === "string") {
        size = Buffer.byteLength(i.dataRaw, "utf8");
    }
    // swarmkit controlapi/config.go validateConfigSpec: MaxConfigSize is 1000 KiB
    // since swarmkit 340be12 (Docker 20.10.14 on); secrets stay at 500 KiB.
    if (size !== undefined && given.length === 1 && (size < 1 || size >= 1000 * 1024)) c.fail("data", swarmRefusal(`config data must be larger than 0 and less than ${1000 * 1024} bytes`));
}

/**
 * The provider resource. Its object inputs reach the engine (and the mock)
 * JSON-encoded: the SDK's Provider constructor JSON.stringifies registryAuth,
 * sshOpts and disableDockerDaemonCheck.
 */
function jsonInput(c: Checker, at: string, value: unknown): any {
    if (typeof value !== "string") return value;
    try {
        return JSON.parse(value);
    } catch {
        c.fail(at, `expected JSON (the provider decodes it), got ${JSON.stringify(value)}`);
        return undefined;
    }
}

/** Unix sockets' sun_path: go-connections sockets.configureUnixTransport refuses a longer path. */
const MAX_UNIX_SOCKET_PATH = 108;

function dockerProvider(c: Checker, i: Inputs) {
    const host = i.host;
    if (host !== undefined && host !== null && host !== "") {
        // client.ParseHostURL: "proto://addr", addr not empty.
        const m = typeof host === "string" ? /^([^:/]*):\/\/(.+)$/.exec(host) : null;
        if (!m) c.fail("host", `unable to parse docker host \`${host}\``);
        else {
            const [, scheme, addr] = m;
            if (scheme === "unix") {
                if (!addr.startsWith("/")) c.fail("host", `unix socket path ${JSON.stringify(addr)} is not absolute (the provider would dial it relative to its working directory)`);
                if (addr.length > MAX_UNIX_SOCKET_PATH) c.fail("host", `unix socket path ${JSON.stringify(addr)} is too long`);
            } else if (scheme === "npipe") {
                // go-connections sockets_unix.go configureNpipeTransport.
                c.fail("host", "protocol not available (npipe:// is a Windows named pipe; on Linux use unix://, tcp:// or ssh://)");
            } else if (scheme === "ssh") {
                // docker/cli connhelper/ssh NewSpec: ssh://[user@]host[:port][/socket]; no query or fragment.
                let url: URL | undefined;
                try {
                    url = new URL(host);
                } catch {
                    url = undefined;
                }
                if (!url || url.hostname === "" || url.search !== "" || url.hash !== "" || url.password !== "") c.fail("host", `ssh host connection is not valid: ${JSON.stringify(host)} (ssh://[user@]host[:port][/path/to/docker.sock])`);
            } else if (scheme === "tcp" || scheme === "http" || scheme === "https") {
                if (!/^(\[[0-9a-fA-F:]+\]|[^:/[\]]+):\d{1,5}(\/.*)?$/.test(addr)) c.fail("host", `${JSON.stringify(host)} has no host:port for the client to dial`);
            } else {
                c.fail("host", `${JSON.stringify(scheme)} is not a scheme the Docker client dials (unix://, tcp://, ssh://)`);
            }
        }
    }
    // configure: a context's endpoint replaces host.
    if (i.context !== undefined && i.context !== "" && host !== undefined && host !== "") c.fail("context", `the provider uses the context's endpoint and ignores host ${JSON.stringify(host)}`);
    // pulumi-docker image.go configureDockerClientInner (run at Configure),
    // stricter than config.go's MakeClient (which needs cert and key together).
    const tls = ["caMaterial", "certMaterial", "keyMaterial"].filter((f) => i[f] !== undefined && i[f] !== "");
    if (tls.length > 0 && tls.length < 3) c.fail("cert_material", "certMaterial, keyMaterial, and caMaterial must all be specified");
    if (tls.length > 0 && i.certPath !== undefined && i.certPath !== "") c.fail("cert_path", "when using raw certificates, certPath must not be specified");
    const sshOpts = jsonInput(c, "ssh_opts", i.sshOpts);
    if (sshOpts !== undefined && sshOpts !== null && (!Array.isArray(sshOpts) || sshOpts.some((o) => typeof o !== "string"))) c.fail("ssh_opts", "expected a list of strings");
    const check = jsonInput(c, "disable_docker_daemon_check", i.disableDockerDaemonCheck);
    if (check !== undefined && check !== null && typeof check !== "boolean") c.fail("disable_docker_daemon_check", `expected a bool, got ${JSON.stringify(check)}`);
    const auths = jsonInput(c, "registry_auth", i.registryAuth);
    if (auths !== undefined && auths !== null) {
        if (!Array.isArray(auths)) c.fail("registry_auth", "expected a list of registry_auth blocks");
        else {
            auths.forEach((a: any, n: number) => {
                const at = `registry_auth[${n}]`;
                // validation.StringIsNotEmpty.
                if (typeof a?.address !== "string" || a.address === "") c.fail(`${at}.address`, `expected "address" to not be an empty string, got ${a?.address ?? ""}`);
                // providerSetToRegistryAuth: loadConfigFile on the content.
                if (typeof a?.configFileContent === "string" && a.configFileContent !== "" && !a.username) {
                    try {
                        JSON.parse(a.configFileContent);
                    } catch (e) {
                        c.fail(`${at}.config_file_content`, `Error loading registry auth config: Error parsing docker registry config json: ${(e as Error).message}`);
                    }
                }
                if (a?.username && !a.password && !a.authDisabled) c.fail(`${at}.password`, "a username without a password gives the registry an empty password");
            });
        }
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
    "docker:index/service:Service": dockerService,
    "docker:index/secret:Secret": dockerSecret,
    "docker:index/serviceConfig:ServiceConfig": dockerServiceConfig,
    "pulumi:providers:docker": dockerProvider,
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
