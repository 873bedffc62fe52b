// Security scans of the real topology (harness.ts: Nginx with the rendered
// config in front of Gunicorn replicas, on loopback, offline):
//   - testssl.sh on the HTTPS port, for the self-signed and the local-CA mode;
//   - gixy-ng on every rendered Nginx config (host and container variants);
//   - schemathesis fuzzing the API from its OpenAPI document, on a replica
//     directly and through the proxy;
//   - the logs of all that traffic: no private key, no request body.
// Tools: Debian's testssl.sh, and test/security/requirements.txt in the venv.
// Reports go to test-artifacts/{testssl,gixy,schemathesis}/ (git-ignored).
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { DEFAULTS } from "../../components/config";
import { IMAGE_NGINX_VERSION } from "../../components/nginxConfig";
import { containerNginxConfig } from "../../components/proxyConfig";
import { PROJECT_ROOT, startTopology, Topology, VENV, waitFor } from "./harness";
import { MODEL_PATHS, request, Response, SEED_KEYS, SEED_PAYLOADS } from "../support/http";
import { hostNginxVersion } from "../support/nginx";
import { killAllNow, RunResult, runToEnd } from "../support/processes";

jest.setTimeout(240_000);

const SECURITY_DIR = path.join(PROJECT_ROOT, "test", "security");
const ARTIFACTS = path.join(PROJECT_ROOT, "test-artifacts");
const readJson = <T = any>(file: string): T => JSON.parse(fs.readFileSync(file, "utf8"));

// ---------------------------------------------------------------- processes

/** Every external tool runs in its own process group, killed with it on timeout. */
const run = runToEnd;

const tail = (text: string, chars = 6000) => (text.length > chars ? `...${text.slice(-chars)}` : text);

function freshDir(...parts: string[]): string {
    const dir = path.join(ARTIFACTS, ...parts);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    return dir;
}

// ---------------------------------------------------------------- topologies

// "self-signed": the stack's defaults, untouched (the TLS scan's main target).
// "local-ca": a local CA signs the server certificate; the per-client rate
// limit is raised so that the fuzzer's bursts are not answered 429 by Nginx
// (a status the app's OpenAPI document rightly does not list: it is the
// proxy's, tested in proxy.test.ts). The TLS settings do not depend on it.
const MODES = ["self-signed", "local-ca"] as const;
type Mode = (typeof MODES)[number];
const topologies = {} as Record<Mode, Topology>;

beforeAll(async () => {
    const [selfSigned, localCa] = await Promise.all([
        startTopology({ replicas: 2 }),
        startTopology({ replicas: 2, config: { tlsMode: "local-ca", rateLimitPerSecond: "10000", rateLimitBurst: "10000" } }),
    ]);
    topologies["self-signed"] = selfSigned;
    topologies["local-ca"] = localCa;
}, 120_000);

afterAll(async () => {
    await Promise.all(Object.values(topologies).map((t) => t.stop()));
    killAllNow();
});

// ---------------------------------------------------------------- testssl.sh

interface TestsslFinding {
    id: string;
    severity: string;
    finding: string;
    cve?: string;
}

interface AllowEntry {
    reason: string;
}

const TESTSSL_ALLOWLIST_FILE = readJson<{ entries: (AllowEntry & { id: string })[]; incompleteChecks: (AllowEntry & { id: string })[] }>(path.join(SECURITY_DIR, "testssl-allowlist.json"));
const TESTSSL_ALLOWLIST = TESTSSL_ALLOWLIST_FILE.entries;
const TESTSSL_INCOMPLETE_OK = TESTSSL_ALLOWLIST_FILE.incompleteChecks;
const SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "OK", "INFO"];

/** Vulnerability checks of `--vulnerable` (testssl.sh 3.0 ids): each must have run and passed. */
const VULNERABILITY_IDS = [
    "heartbleed", "CCS", "ticketbleed", "ROBOT", "secure_renego", "secure_client_renego", "CRIME_TLS", "BREACH",
    "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK", "DROWN", "LOGJAM", "BEAST", "LUCKY13", "RC4",
];

/**
 * One testssl.sh run: protocols (-p), cipher categories (-s), forward secrecy
 * (-f), ciphers per protocol (-E), server preference (-P), server defaults and
 * certificate (-S), HTTP headers (-h) and vulnerabilities (-U). Offline: no
 * DNS, no phone-out (so no OCSP/CRL fetch); the trust anchor is added with
 * --add-ca. SNI is "localhost", the certificate's CN, pinned to 127.0.0.1.
 */
async function testssl(mode: Mode, topo: Topology): Promise<TestsslFinding[]> {
    const dir = path.join(ARTIFACTS, "testssl");
    const jsonFile = path.join(dir, `${mode}.json`);
    fs.rmSync(jsonFile, { force: true });
    const args = [
        "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none", "--ip", "127.0.0.1",
        "--connect-timeout", "5", "--openssl-timeout", "5",
        "--add-ca", topo.trustFile, "--jsonfile", jsonFile,
        "-p", "-s", "-f", "-E", "-P", "-S", "-h", "-U",
        `https://localhost:${topo.httpsPort}/`,
    ];
    const result = await run("testssl", args, { cwd: dir, timeoutMs: 180_000 });
    fs.writeFileSync(path.join(dir, `${mode}.txt`), `$ testssl ${args.join(" ")}\n(exit ${result.code}, ${result.seconds.toFixed(0)} s)\n${result.stdout}\n${result.stderr}`);
    if (result.timedOut || !fs.existsSync(jsonFile)) {
        throw new Error(`testssl (${mode}) ${result.timedOut ? "timed out" : `exited ${result.code} without a report`}:\n${tail(result.stdout + result.stderr)}`);
    }
    const findings = readJson<TestsslFinding[]>(jsonFile);
    const counts = Object.fromEntries(SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length]));
    const allowed = findings.filter((f) => ["HIGH", "CRITICAL"].includes(f.severity) && TESTSSL_ALLOWLIST.some((e) => e.id === f.id));
    console.log(
        `testssl.sh ${mode} (${result.seconds.toFixed(0)} s, exit ${result.code}): ` +
            SEVERITIES.map((s) => `${s}=${counts[s]}`).join(" ") +
            `; allow-listed: ${allowed.map((f) => `${f.id} [${f.severity}: ${f.finding}]`).join(", ") || "none"}`,
    );
    return findings;
}

describe("TLS scan (testssl.sh)", () => {
    const scans = {} as Record<Mode, TestsslFinding[]>;
    const byId = (mode: Mode, id: string) => {
        const found = scans[mode].filter((f) => f.id === id);
        if (found.length !== 1) throw new Error(`${mode}: expected one testssl finding "${id}", got ${found.length}`);
        return found[0];
    };

    beforeAll(async () => {
        freshDir("testssl");
        // Both scans at once: each mostly waits on handshakes.
        const results = await Promise.all(MODES.map((mode) => testssl(mode, topologies[mode])));
        MODES.forEach((mode, i) => (scans[mode] = results[i]));
    }, 200_000);

    test.each(MODES)("%s: the scan ran completely (no check failed to run)", (mode) => {
        const problems = scans[mode].filter((f) => /scanProblem|engine_problem/.test(f.id) || f.severity === "FATAL" || f.severity === "WARN");
        expect(problems.filter((f) => !TESTSSL_INCOMPLETE_OK.some((e) => e.id === f.id))).toEqual([]);
        expect(scans[mode].length).toBeGreaterThan(80);
    });

    test.each(MODES)("%s: no HIGH or CRITICAL finding outside the allow-list", (mode) => {
        const offending = scans[mode].filter((f) => ["HIGH", "CRITICAL"].includes(f.severity) && !TESTSSL_ALLOWLIST.some((e) => e.id === f.id));
        expect(offending).toEqual([]);
    });

    test.each(MODES)("%s: only TLS 1.2 and TLS 1.3 are offered", (mode) => {
        for (const id of ["SSLv2", "SSLv3", "TLS1", "TLS1_1"]) expect([id, byId(mode, id).finding]).toEqual([id, expect.stringMatching(/^not offered/)]);
        for (const id of ["TLS1_2", "TLS1_3"]) expect([id, byId(mode, id).finding]).toEqual([id, expect.stringMatching(/^offered/)]);
        // Per-protocol cipher lists (-E) only for TLS 1.2 and 1.3.
        expect(scans[mode].filter((f) => f.id.startsWith("cipher-") && !/^cipher-tls1_[23]_/.test(f.id))).toEqual([]);
    });

    test.each(MODES)("%s: forward secrecy is offered, and every cipher offered is ECDHE + AEAD", (mode) => {
        const fs_ = scans[mode].find((f) => f.id === "PFS" || f.id === "FS");
        expect(fs_).toMatchObject({ severity: "OK", finding: expect.stringMatching(/^offered/) });
        const ciphers = scans[mode].filter((f) => f.id.startsWith("cipher-"));
        const tls12 = ciphers.filter((f) => f.id.startsWith("cipher-tls1_2_")).map((f) => f.finding.split(/\s+/)[3]);
        const tls13 = ciphers.filter((f) => f.id.startsWith("cipher-tls1_3_")).map((f) => f.finding.split(/\s+/)[3]);
        expect(tls12.length).toBeGreaterThan(0);
        expect(tls13.length).toBeGreaterThan(0);
        expect(ciphers.length).toBe(tls12.length + tls13.length);
        for (const cipher of tls12) expect(cipher).toMatch(/^ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
        for (const cipher of tls13) expect(cipher).toMatch(/^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/);
        for (const id of ["cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"]) {
            expect([id, byId(mode, id).finding]).toEqual([id, "not offered"]);
        }
    });

    test.each(MODES)("%s: no vulnerability is found", (mode) => {
        const vulnerable = scans[mode].filter((f) => /vulnerable/i.test(f.finding) && !/not vulnerable/i.test(f.finding));
        expect(vulnerable).toEqual([]);
        for (const id of VULNERABILITY_IDS) expect([id, byId(mode, id).severity]).toEqual([id, "OK"]);
    });

    test.each(MODES)("%s: HSTS is sent, for at least six months", (mode) => {
        expect(byId(mode, "HSTS_time")).toMatchObject({ severity: "OK", finding: expect.stringMatching(/=63072000 seconds/) });
    });

    test.each(MODES)("%s: the certificate verifies against the trust anchor, matches the name and is not near expiry", (mode) => {
        expect(byId(mode, "cert_chain_of_trust")).toMatchObject({ severity: "OK", finding: "passed." });
        expect(byId(mode, "cert_trust").severity).toBe("OK");
        expect(byId(mode, "cert_signatureAlgorithm").severity).toBe("OK");
        // A fresh certificate of the stack's validity (90 days by default) is
        // beyond testssl's warning thresholds (60 days: MEDIUM, 30 days: HIGH).
        expect(topologies[mode].settings.certValidityDays).toBe(DEFAULTS.certValidityDays);
        const expiration = byId(mode, "cert_expirationStatus");
        expect(expiration).toMatchObject({ severity: "OK", finding: expect.stringMatching(/^\d+ >= 60 days$/) });
        expect(Number(expiration.finding.split(" ")[0])).toBeGreaterThanOrEqual(DEFAULTS.certValidityDays - 1);
        expect(["OK", "INFO"]).toContain(byId(mode, "cert_validityPeriod").severity);
    });

    test.each(MODES)("%s: no session ticket is issued (ssl_session_tickets off; TLS 1.2, where tickets carry the session keys)", async (mode) => {
        const topo = topologies[mode];
        for (let i = 0; i < 3; i++) {
            const result = await run("openssl", ["s_client", "-tls1_2", "-connect", `127.0.0.1:${topo.httpsPort}`, "-servername", "localhost", "-CAfile", topo.trustFile], { timeoutMs: 10_000 });
            expect(result.stdout).toMatch(/Protocol\s*:\s*TLSv1\.2/);
            expect(result.stdout).toMatch(/Verify return code: 0 \(ok\)/);
            expect(result.stdout).not.toMatch(/TLS session ticket/);
        }
    });

    test("every allow-list entry has a reason, and each one is still needed by some scan", () => {
        for (const entry of TESTSSL_INCOMPLETE_OK) expect([entry.id, entry.reason.length > 80]).toEqual([entry.id, true]);
        for (const entry of TESTSSL_ALLOWLIST) {
            expect(entry.reason.length).toBeGreaterThan(80);
            const usedBy = MODES.filter((mode) => scans[mode].some((f) => f.id === entry.id && ["HIGH", "CRITICAL"].includes(f.severity)));
            expect([entry.id, usedBy.length > 0]).toEqual([entry.id, true]);
        }
    });
});

// ---------------------------------------------------------------- gixy-ng

interface GixyFinding {
    plugin: string;
    severity: string;
    line: number;
    reason: string;
    summary: string;
}

const GIXY_ALLOWLIST = readJson<{ entries: (AllowEntry & { plugin: string })[] }>(path.join(SECURITY_DIR, "gixy-allowlist.json")).entries;
const GIXY = path.join(VENV, "bin", "gixy");

async function gixy(configFile: string, extraArgs: string[] = []): Promise<GixyFinding[]> {
    const result = await run(GIXY, ["--format", "json", ...extraArgs, configFile], { timeoutMs: 60_000 });
    // Exit 1 only means "findings"; anything on stderr (an include not found,
    // a parse error) means the config was not fully analysed.
    if (result.timedOut || (result.code !== 0 && result.code !== 1) || result.stderr.trim() !== "") {
        throw new Error(`gixy on ${configFile} failed (exit ${result.code}):\n${tail(result.stdout + result.stderr)}`);
    }
    return JSON.parse(result.stdout);
}

const summarize = (findings: GixyFinding[]) => findings.map((f) => `${f.severity} ${f.plugin} (line ${f.line}): ${f.reason || f.summary}`);

/** Known-bad changes, each of which gixy must report: proof that the lint can fail. */
const INJECTIONS: { name: string; plugin: string; apply: (config: string) => string }[] = [
    {
        name: "an add_header in the API location (drops the server's security headers there)",
        plugin: "add_header_redefinition",
        apply: (c) => c.replace(/location \/api\/ \{\n/, (m) => `${m}            add_header X-Injected "1";\n`),
    },
    {
        name: "proxy_pass to a host taken from the query string",
        plugin: "ssrf",
        apply: (c) => c.replace("proxy_pass http://mlapi_replicas;", "proxy_pass http://$arg_backend;"),
    },
    {
        name: "the client's Host header passed upstream",
        plugin: "host_spoofing",
        apply: (c) => c.replace("proxy_set_header Host $host;", "proxy_set_header Host $http_host;"),
    },
    {
        name: "an alias under a location without a trailing slash",
        plugin: "alias_traversal",
        apply: (c) => c.replace(/location \/assets\/ \{/, (m) => `location /static {\n            alias /usr/share/nginx/html/;\n        }\n        ${m}`),
    },
];

describe("Nginx config lint (gixy-ng)", () => {
    let dir: string;
    const variants: Record<string, string> = {};
    const findings: Record<string, GixyFinding[]> = {};

    beforeAll(async () => {
        dir = freshDir("gixy");
        // The configs the harness ran (the host layout), with its random free
        // ports renamed: gixy's hsts_header takes any `listen` holding "443"
        // for a TLS server, so an HTTP port such as 14438 made CI fail once.
        for (const mode of MODES) {
            const topo = topologies[mode];
            const ports = new Map([[topo.httpsPort, 8443], [topo.httpPort, 8080], ...topo.replicas.map((r, i) => [r.port, 9001 + i] as [number, number])]);
            const file = path.join(dir, `host-${mode}.conf`);
            fs.writeFileSync(file, topo.nginxConfig.replace(/(127\.0\.0\.1|\$host):(\d+)\b/g, (_, host, port) => `${host}:${ports.get(Number(port)) ?? port}`));
            variants[`host (${mode} topology)`] = file;
        }
        // ... and what the proxy container receives, for 1 and 5 replicas.
        // gixy reads no file the config names (certificate, key, root), only
        // includes: /etc/nginx/mime.types is there on the host as in the image.
        for (const replicas of [1, 5]) {
            const config = containerNginxConfig({
                serverNames: [...DEFAULTS.certDnsNames, ...DEFAULTS.certIpAddresses],
                replicas: Array.from({ length: replicas }, (_, i) => ({ name: `mlapi-dev-app-${i + 1}-0123abcd`, address: `10.213.77.${2 + i}` })),
                appSubnet: DEFAULTS.appSubnet,
                publicHttpsPort: DEFAULTS.httpsPort,
                limits: DEFAULTS,
            });
            const file = path.join(dir, `container-${replicas}-replicas.conf`);
            fs.writeFileSync(file, config);
            variants[`container, ${replicas} replica(s)`] = file;
        }
        for (const [variant, file] of Object.entries(variants)) {
            findings[variant] = await gixy(file);
            fs.writeFileSync(path.join(dir, `${variant.replace(/\W+/g, "-")}.json`), JSON.stringify(findings[variant], null, 2));
        }
    });

    const VARIANT_NAMES = ["host (self-signed topology)", "host (local-ca topology)", "container, 1 replica(s)", "container, 5 replica(s)"];

    test.each(VARIANT_NAMES)("%s: no finding outside the allow-list", async (variant) => {
        const allowed = findings[variant].filter((f) => GIXY_ALLOWLIST.some((e) => e.plugin === f.plugin));
        console.log(`gixy ${variant}: ${findings[variant].length} finding(s), ${allowed.length} allow-listed: ${summarize(allowed).join("; ") || "none"}`);
        expect(summarize(findings[variant].filter((f) => !allowed.includes(f)))).toEqual([]);
    });

    test.each(VARIANT_NAMES)("%s: the lint can fail - injected known-bad directives are reported", async (variant) => {
        const original = fs.readFileSync(variants[variant], "utf8");
        for (const injection of INJECTIONS) {
            const bad = injection.apply(original);
            expect([injection.name, bad === original]).toEqual([injection.name, false]);
            const file = path.join(dir, `injected-${injection.plugin}.conf`);
            fs.writeFileSync(file, bad);
            const plugins = (await gixy(file)).map((f) => f.plugin);
            expect([injection.name, plugins]).toEqual([injection.name, expect.arrayContaining([injection.plugin])]);
        }
    });

    test("every allow-list entry has a reason, and each one is still needed by some config", () => {
        for (const entry of GIXY_ALLOWLIST) {
            expect([entry.plugin, entry.reason.length > 80]).toEqual([entry.plugin, true]);
            const usedBy = Object.keys(findings).filter((variant) => findings[variant].some((f) => f.plugin === entry.plugin));
            expect([entry.plugin, usedBy.length > 0]).toEqual([entry.plugin, true]);
        }
    });

    test("host Nginx: every CVE gixy lists for its upstream version is patched in the installed Debian package", async () => {
        const version = hostNginxVersion();
        const findings = await gixy(variants["host (self-signed topology)"], ["--tests", "nginx_cves", "--nginx-version", version]);
        const cves = [...new Set(findings.flatMap((f) => f.reason.match(/CVE-\d{4}-\d+/g) ?? []))].sort();
        // The package that owns the binary, and its changelog (Debian backports fixes without changing the version).
        const owner = await run("dpkg", ["-S", "/usr/sbin/nginx"], { timeoutMs: 10_000 });
        const pkg = owner.stdout.split(":")[0].trim();
        const changelogFile = [`/usr/share/doc/${pkg}/changelog.Debian.gz`, "/usr/share/doc/nginx/changelog.Debian.gz"].find((f) => fs.existsSync(f));
        if (!changelogFile) throw new Error(`no Debian changelog for ${pkg || "nginx"}: cannot tell which CVEs are patched`);
        const changelog = zlib.gunzipSync(fs.readFileSync(changelogFile)).toString("utf8");
        console.log(`gixy nginx_cves for nginx ${version} (${pkg}): ${cves.join(", ") || "none"}; IMAGE_NGINX_VERSION ${IMAGE_NGINX_VERSION} is checked by the image build's own package`);
        expect(cves.filter((cve) => !changelog.includes(cve))).toEqual([]);
    });
});

// ---------------------------------------------------------------- schemathesis

// The four conformance checks, input validation both ways (statuses in
// test/security/schemathesis.toml), and the custom no_stack_trace
// (test/security/schemathesis_hooks.py).
const CHECKS = [
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
    "negative_data_rejection", "positive_data_acceptance", "no_stack_trace",
];
const STACK_TRACE_PATTERNS = readJson<{ patterns: string[] }>(path.join(SECURITY_DIR, "stack-trace-patterns.json")).patterns.map((p) => new RegExp(p));

interface HarEntry {
    request: { method: string; url: string };
    response: { status: number; headers: { name: string; value: string }[]; content: { text?: string; encoding?: string } };
}

/**
 * Fuzzes the API from its own OpenAPI document: examples, coverage (edge
 * values, wrong types, missing/unknown fields, odd methods), random fuzzing
 * and stateful sequences, bounded by examples per operation and a timeout.
 * A fresh seed each run (printed; MLAPI_FUZZ_SEED replays one).
 */
async function fuzz(name: string, schemaUrl: string, extraArgs: string[]): Promise<{ result: RunResult; entries: HarEntry[]; seed: string; checksRun: Set<string> }> {
    const dir = freshDir("schemathesis", name);
    const seed = process.env.MLAPI_FUZZ_SEED ?? String(crypto.randomInt(1, 2 ** 31));
    const args = [
        "--config-file", path.join(SECURITY_DIR, "schemathesis.toml"), "run", schemaUrl, "--checks", CHECKS.join(","), "--max-examples", "40", "--seed", seed,
        "--workers", "2", "--request-timeout", "10", "--max-response-time", "5", "--generation-database", "none",
        "--no-color", "--report", "har,ndjson,junit", "--report-dir", dir,
        "--report-har-path", path.join(dir, "traffic.har"), ...extraArgs,
    ];
    const env = { ...process.env, SCHEMATHESIS_HOOKS: "schemathesis_hooks", PYTHONPATH: SECURITY_DIR, PYTHONDONTWRITEBYTECODE: "1" };
    const result = await run(path.join(VENV, "bin", "schemathesis"), args, { cwd: dir, env, timeoutMs: 150_000 });
    fs.writeFileSync(path.join(dir, "output.txt"), `$ schemathesis ${args.join(" ")}\n(exit ${result.code}, ${result.seconds.toFixed(0)} s)\n${result.stdout}\n${result.stderr}`);
    const harFile = path.join(dir, "traffic.har");
    const entries: HarEntry[] = fs.existsSync(harFile) ? readJson(harFile).log.entries : [];
    const ndjson = fs.readdirSync(dir).filter((f) => f.endsWith(".ndjson")).map((f) => fs.readFileSync(path.join(dir, f), "utf8")).join("\n");
    const checksRun = new Set([...ndjson.matchAll(/"name":"([a-z_]+)"/g)].map((m) => m[1]).filter((name) => CHECKS.includes(name)));
    const statuses = new Map<string, number>();
    for (const e of entries) statuses.set(`${Math.floor(e.response.status / 100)}xx`, (statuses.get(`${Math.floor(e.response.status / 100)}xx`) ?? 0) + 1);
    const summary = /=+ (.*(?:issues|failures?|errors?).*) =+/.exec(result.stdout)?.[1] ?? `exit ${result.code}`;
    console.log(`schemathesis ${name} (seed ${seed}, ${result.seconds.toFixed(0)} s): ${entries.length} requests, ${[...statuses].sort().map(([k, v]) => `${k}=${v}`).join(" ")}; ${summary}`);
    return { result, entries, seed, checksRun };
}

function expectCleanFuzz({ result, entries, seed, checksRun }: { result: RunResult; entries: HarEntry[]; seed: string; checksRun: Set<string> }) {
    expect(result.timedOut).toBe(false);
    if (result.code !== 0) throw new Error(`schemathesis found problems (seed ${seed}; MLAPI_FUZZ_SEED=${seed} replays):\n${tail(result.stdout, 12000)}\n${tail(result.stderr, 2000)}`);
    // Every selected check ran, the custom one included (the hooks module loaded).
    expect([...checksRun].sort()).toEqual([...CHECKS].sort());
    // The run really exercised the API: many requests, and predictions answered.
    expect(entries.length).toBeGreaterThan(300);
    for (const endpoint of Object.values(MODEL_PATHS)) {
        expect([endpoint, entries.some((e) => e.request.method === "POST" && e.request.url.endsWith(`/${endpoint}`) && e.response.status === 200)]).toEqual([endpoint, true]);
    }
    // Independent of schemathesis's own checks: no 5xx and no stack trace in anything recorded.
    expect(entries.filter((e) => e.response.status >= 500).map((e) => `${e.request.method} ${e.request.url} -> ${e.response.status}`)).toEqual([]);
    const leaks = entries.flatMap((e) => {
        const body = e.response.content.encoding === "base64" ? Buffer.from(e.response.content.text ?? "", "base64").toString("utf8") : e.response.content.text ?? "";
        const text = `${e.response.headers.map((h) => `${h.name}: ${h.value}`).join("\n")}\n\n${body}`;
        return STACK_TRACE_PATTERNS.filter((p) => p.test(text)).map((p) => `${e.request.method} ${e.request.url}: ${p}`);
    });
    expect(leaks).toEqual([]);
}

describe("API fuzzing (schemathesis)", () => {
    test("the stack-trace check can fail: a real Python traceback is caught by the hook and by the HAR scan", async () => {
        const python = path.join(VENV, "bin", "python");
        const crash = await run(python, ["-c", "import json\ndef f():\n    return {}['missing']\nf()"], { timeoutMs: 20_000 });
        expect(crash.code).not.toBe(0);
        expect(STACK_TRACE_PATTERNS.filter((p) => p.test(crash.stderr)).length).toBeGreaterThanOrEqual(2);
        const env = { ...process.env, PYTHONPATH: SECURITY_DIR, PYTHONDONTWRITEBYTECODE: "1" };
        const probe = "import sys, schemathesis_hooks as h\nprint(h.stack_trace_in(sys.argv[1]) is not None, h.stack_trace_in(sys.argv[2]) is not None)";
        const apiError = JSON.stringify({ error: "invalid_json", message: "Expecting value: line 1 column 1 (char 0)", field: null, details: [] });
        const verdict = await run(python, ["-c", probe, crash.stderr, apiError], { env, timeoutMs: 30_000 });
        expect([verdict.stdout.trim(), verdict.stderr]).toEqual(["True False", ""]);
    });

    test("directly against a replica (Gunicorn + Flask, no proxy)", async () => {
        const replica = topologies["self-signed"].replicas[0];
        expectCleanFuzz(await fuzz("replica", `${replica.url}/api/v1/openapi.json`, []));
    });

    test("through the proxy over HTTPS, verifying the certificate against the local CA", async () => {
        const topo = topologies["local-ca"];
        expectCleanFuzz(await fuzz("proxy", `${topo.httpsUrl}api/v1/openapi.json`, ["--tls-verify", topo.trustFile]));
    });
});

// ---------------------------------------------------------------- logs

/** A value no generated or scanned traffic contains: it may only reach a log through a request body. */
const MARKER = "61.123456";

interface MarkerRequest {
    name: string;
    path: string;
    body: string;
    contentType?: string;
    expectStatus: number;
}

const withMarker = { ...SEED_PAYLOADS.classifier, monthly_fee: Number(MARKER) };
const MARKER_REQUESTS: MarkerRequest[] = [
    { name: "valid prediction", path: MODEL_PATHS.classifier, body: JSON.stringify(withMarker), expectStatus: 200 },
    { name: "valid batch", path: MODEL_PATHS.classifier, body: JSON.stringify([withMarker, withMarker]), expectStatus: 200 },
    { name: "wrong type", path: MODEL_PATHS.classifier, body: JSON.stringify({ ...withMarker, monthly_fee: MARKER }), expectStatus: 400 },
    { name: "unknown field", path: MODEL_PATHS.classifier, body: JSON.stringify({ ...withMarker, [`extra_${MARKER}`]: MARKER }), expectStatus: 400 },
    { name: "not an integer", path: MODEL_PATHS.regressor, body: JSON.stringify({ ...SEED_PAYLOADS.regressor, QuantityOrdered: Number(MARKER) }), expectStatus: 400 },
    { name: "malformed JSON", path: MODEL_PATHS.classifier, body: `{"monthly_fee": ${MARKER}, "customer_age": `, expectStatus: 400 },
    { name: "wrong media type", path: MODEL_PATHS.classifier, body: `monthly_fee=${MARKER}`, contentType: "text/plain", expectStatus: 415 },
    { name: "too large", path: MODEL_PATHS.classifier, body: JSON.stringify({ ...withMarker, pad: `${MARKER} `.repeat(10_000) }), expectStatus: 413 },
];

/** Sends every marker request; returns the request ids the logs must show. */
async function sendMarkers(base: string, options: { ca?: string; ownRequestIds?: boolean }): Promise<string[]> {
    const ids: string[] = [];
    for (const m of MARKER_REQUESTS) {
        const ownId = options.ownRequestIds ? crypto.randomBytes(16).toString("hex") : undefined;
        const response: Response = await request(`${base}/${m.path}`, {
            method: "POST",
            ca: options.ca,
            headers: { "Content-Type": m.contentType ?? "application/json", ...(ownId ? { "X-Request-ID": ownId } : {}) },
            body: m.body,
        });
        expect([m.name, response.status]).toEqual([m.name, m.expectStatus]);
        if (m.name === "valid prediction") expect(response.json()).toHaveProperty([SEED_KEYS.classifier]);
        const id = ownId ?? String(response.headers["x-request-id"]);
        expect(id).toMatch(/^[0-9a-f]{32}$/);
        ids.push(id);
    }
    return ids;
}

describe("logs", () => {
    const logsOf = (topo: Topology) => fs.readdirSync(topo.dir).filter((f) => f.endsWith(".log")).map((f) => path.join(topo.dir, f));
    const proxiedIds = {} as Record<Mode, string[]>;
    const directIds = {} as Record<Mode, string[]>;

    beforeAll(async () => {
        for (const mode of MODES) {
            const topo = topologies[mode];
            proxiedIds[mode] = await sendMarkers(topo.httpsUrl.replace(/\/$/, ""), { ca: topo.tls.trustPem });
            directIds[mode] = [];
            for (const replica of topo.replicas) directIds[mode].push(...(await sendMarkers(replica.url, { ownRequestIds: true })));
        }
        // Nginx buffers its access log (flush=1s): wait until the last request shows.
        for (const mode of MODES) {
            const last = proxiedIds[mode][proxiedIds[mode].length - 1];
            await waitFor(`${mode}: Nginx access log to show ${last}`, async () => (fs.readFileSync(topologies[mode].nginxAccessLog, "utf8").includes(last) ? true : undefined), 10_000);
        }
    });

    test.each(MODES)("%s: every request of this file was logged (Nginx and app), so the scans below are not vacuous", (mode) => {
        const topo = topologies[mode];
        const files = logsOf(topo);
        expect(files).toEqual(expect.arrayContaining([topo.nginxAccessLog, topo.nginxErrorLog, ...topo.replicas.map((r) => r.logFile)]));
        const access = fs.readFileSync(topo.nginxAccessLog, "utf8");
        const appLogs = topo.replicas.map((r) => fs.readFileSync(r.logFile, "utf8")).join("\n");
        for (const id of proxiedIds[mode]) expect(access).toContain(id);
        // 413s are answered by Nginx and never reach a replica.
        for (const id of proxiedIds[mode].filter((_, i) => MARKER_REQUESTS[i].expectStatus !== 413)) expect(appLogs).toContain(id);
        for (const id of directIds[mode]) expect(appLogs).toContain(id);
    });

    test.each(MODES)("%s: no log holds private-key material", (mode) => {
        const topo = topologies[mode];
        const keyLines = topo.tls.keyPem.split("\n").filter((line) => line.length >= 40 && !line.startsWith("-----"));
        expect(keyLines.length).toBeGreaterThan(5);
        for (const file of logsOf(topo)) {
            const text = fs.readFileSync(file, "utf8");
            expect([file, /PRIVATE KEY/.test(text)]).toEqual([file, false]);
            expect([file, keyLines.filter((line) => text.includes(line)).length]).toEqual([file, 0]);
        }
    });

    test.each(MODES)("%s: no log holds a request body (the marker value sent in every body)", (mode) => {
        for (const file of logsOf(topologies[mode])) {
            const text = fs.readFileSync(file, "utf8");
            expect([file, text.includes(MARKER)]).toEqual([file, false]);
        }
    });

    test.each(MODES)("%s: the app logged no unhandled exception during the scans and the fuzzing", (mode) => {
        for (const replica of topologies[mode].replicas) {
            const text = fs.readFileSync(replica.logFile, "utf8");
            expect([replica.logFile, /Traceback \(most recent call last\)|Exception on \//.test(text)]).toEqual([replica.logFile, false]);
        }
    });
});
