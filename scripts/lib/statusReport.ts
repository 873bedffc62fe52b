// The status report's logic, apart from the gathering (scripts/status.ts):
// parsers for what the stack exposes (Prometheus text, Nginx's stub_status,
// Nginx's JSON access log), the last minute per replica, and the verdict;
// its certificate check and tables serve the swarm report (swarmStatus.ts)
// too. Pure, so the unit tests give it facts and read the answer.

/** One sample of the Prometheus text format. */
export interface Sample {
    name: string;
    labels: Record<string, string>;
    value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): Sample[] {
    const samples: Sample[] = [];
    for (const line of text.split("\n")) {
        const match = SAMPLE.exec(line.trim());
        if (!match || line.startsWith("#")) continue;
        const labels: Record<string, string> = {};
        for (const [, key, value] of (match[2] ?? "").matchAll(LABEL)) labels[key] = value.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
        samples.push({ name: match[1], labels, value: Number(match[3]) });
    }
    return samples;
}

export interface StubStatus {
    active: number;
    accepts: number;
    handled: number;
    requests: number;
    reading: number;
    writing: number;
    waiting: number;
}

/** Nginx's stub_status page. */
export function parseStubStatus(text: string): StubStatus {
    const match = /Active connections:\s*(\d+)\s+server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)\s+Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+)/.exec(text);
    if (!match) throw new Error(`not a stub_status page: ${JSON.stringify(text.slice(0, 80))}`);
    const [active, accepts, handled, requests, reading, writing, waiting] = match.slice(1).map(Number);
    return { active, accepts, handled, requests, reading, writing, waiting };
}

/** What the proxy saw of one upstream address in the window: every attempt, retries included. */
export interface UpstreamWindow {
    attempts: number;
    serverErrors: number;
    clientErrors: number;
    /** Upstream response times of the attempts that got an answer, in seconds, sorted. */
    seconds: number[];
}

export interface AccessLogWindow {
    /** Seconds the window spans. */
    seconds: number;
    /** Requests clients made (every line). */
    requests: number;
    /** Answers of 500 and above clients received. */
    serverErrors: number;
    byUpstream: Map<string, UpstreamWindow>;
}

/**
 * The last `seconds` of the proxy's JSON access log (nginxConfig.ts's
 * json_combined). A request that Nginx retried on another replica lists
 * every attempt ("a, b" in upstream, upstream_status, upstream_time); each
 * counts for its own replica.
 */
export function accessLogWindow(lines: string[], nowMs: number, seconds: number): AccessLogWindow {
    const window: AccessLogWindow = { seconds, requests: 0, serverErrors: 0, byUpstream: new Map() };
    const since = nowMs - seconds * 1000;
    const parts = (value: unknown) => String(value ?? "").split(/\s*[,:]\s+/).filter((p) => p !== "");
    for (const line of lines) {
        if (!line.startsWith("{")) continue;
        let entry: Record<string, unknown>;
        try {
            entry = JSON.parse(line);
        } catch {
            continue;
        }
        const time = Date.parse(String(entry.time));
        if (!(time >= since && time <= nowMs + 1000)) continue;
        window.requests++;
        if (Number(entry.status) >= 500) window.serverErrors++;
        const [addresses, statuses, times] = [parts(entry.upstream), parts(entry.upstream_status), parts(entry.upstream_time)];
        addresses.forEach((address, i) => {
            if (!/^[\d.]+:\d+$|^\[.*\]:\d+$/.test(address)) return;
            const upstream = window.byUpstream.get(address) ?? { attempts: 0, serverErrors: 0, clientErrors: 0, seconds: [] };
            const status = Number(statuses[i]);
            upstream.attempts++;
            if (!(status < 500)) upstream.serverErrors++;
            else if (status >= 400) upstream.clientErrors++;
            const took = Number(times[i]);
            if (status < 500 && Number.isFinite(took)) upstream.seconds.push(took);
            window.byUpstream.set(address, upstream);
        });
    }
    for (const upstream of window.byUpstream.values()) upstream.seconds.sort((a, b) => a - b);
    return window;
}

/** Nearest-rank percentile of sorted values; undefined when there are none. */
export function percentile(sorted: number[], p: number): number | undefined {
    if (sorted.length === 0) return undefined;
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** A container as `docker inspect` shows it (what the report needs). */
export interface ContainerState {
    status: string;
    /** Docker's health status, when the container has a health check. */
    health?: string;
    restarts: number;
    startedAt: string;
    /** The image ID it runs. */
    image: string;
    /** Its addresses, on every network it is on. */
    addresses: string[];
}

export interface ReplicaFacts {
    name: string;
    /** undefined: no such container. */
    container?: ContainerState;
    /** The replica's own health answer, through the operator listener (undefined: not asked). */
    healthStatus?: number | string;
    /** Its metrics through the operator listener (undefined: not asked; a string: why they could not be read). */
    metrics?: Sample[] | string;
}

export interface StatusFacts {
    stack: string;
    url: string;
    nowMs: number;
    replicas: ReplicaFacts[];
    /** stub: Nginx's status page; exported: whether its Prometheus metrics answer (a string: why not). */
    proxy: { name: string; container?: ContainerState; stub?: StubStatus | string; exported?: true | string };
    /** The port holder's container (the ports and networks). */
    portHolder?: { name: string; container?: ContainerState };
    /** What the operator listener says it serves (undefined: not published). */
    operator?: { url: string; replicaNames?: string[]; error?: string };
    /** The proxy's access log over the window; a string: why it could not be read. */
    window: AccessLogWindow | string;
    certificate: CertificateStatus;
    images: { app?: string; proxy?: string };
}

/** The certificate HTTPS presents and what the stack's outputs expect of it (both platforms' reports). */
export interface CertificateStatus {
    /** The certificate HTTPS presents or why none could be read. */
    served: { notAfter: string; fingerprintSha256: string; subject: string } | string;
    expectedFingerprintSha256?: string;
    renewalDays?: number;
}

export interface StatusReport {
    text: string;
    attention: string[];
}

const DAY_MS = 24 * 3600 * 1000;
/** A replica whose answers are this often 5xx over the window (with enough of them) needs attention. */
export const SERVER_ERROR_ATTENTION = 0.01;
const MIN_ATTEMPTS_FOR_RATE = 20;

/** "name (sha256:...)" as the stack outputs images: the ID. */
export function imageId(output: string | undefined): string | undefined {
    return /\((sha256:[0-9a-f]{64})\)/.exec(output ?? "")?.[1] ?? (output?.startsWith("sha256:") ? output : undefined);
}

export const shortId = (id: string) => id.replace(/^sha256:/, "").slice(0, 12);
const ms = (seconds: number | undefined) => (seconds === undefined ? "-" : seconds < 1 ? `${(seconds * 1000).toFixed(1)} ms` : `${seconds.toFixed(2)} s`);
const pct = (part: number, whole: number) => (whole ? `${((100 * part) / whole).toFixed(1)}%` : "-");
const rate = (count: number, seconds: number) => (seconds > 0 ? (count / seconds).toFixed(count / seconds < 1 ? 2 : 1) : "-");

function sampleValue(samples: Sample[], name: string): number | undefined {
    return samples.find((s) => s.name === name)?.value;
}

/** Rows as aligned columns, indented by two spaces; the first row is the header. */
export function table(rows: string[][]): string[] {
    const widths = rows[0].map((_, column) => Math.max(...rows.map((r) => (r[column] ?? "").length)));
    return rows.map((r) => `  ${r.map((cell, column) => cell.padEnd(widths[column])).join("  ")}`.trimEnd());
}

function containerProblem(what: string, container: ContainerState | undefined): string | undefined {
    // `pulumi up` refreshes first (Pulumi.yaml), so it makes again what is gone or stopped.
    if (!container) return `${what} does not exist: run \`pulumi up\`, which makes it again`;
    if (container.status !== "running") return `${what} is ${container.status}: run \`pulumi up\`, which makes it again`;
    if (container.health && container.health !== "healthy") return `${what} is ${container.health}`;
    return undefined;
}

/**
 * The certificate's line of a report ("localhost, 89 days left ...") and
 * what needs attention: none presented, not the stack's, expired, or inside
 * its renewal window.
 */
export function assessCertificate(cert: CertificateStatus, nowMs: number): { line: string; attention: string[] } {
    const attention: string[] = [];
    if (typeof cert.served === "string") {
        attention.push(`HTTPS presented no certificate: ${cert.served}`);
        return { line: `none read (${cert.served})`, attention };
    }
    const left = Math.floor((Date.parse(cert.served.notAfter) - nowMs) / DAY_MS);
    const matches = cert.expectedFingerprintSha256 === undefined || cert.expectedFingerprintSha256 === cert.served.fingerprintSha256;
    if (!matches) attention.push("HTTPS presents a certificate other than the stack's (run `pulumi up`, or find what else holds the port)");
    if (left < 0) attention.push(`the certificate expired on ${cert.served.notAfter}`);
    else if (cert.renewalDays !== undefined && left <= cert.renewalDays) {
        attention.push(`the certificate has ${left} days left, inside its ${cert.renewalDays}-day renewal window: run \`pulumi up\` (a CSR or provided certificate needs a new one first)`);
    }
    const name = /CN=([^,\n]+)/.exec(cert.served.subject)?.[1] ?? cert.served.subject;
    return { line: `${name}, ${left} days left (until ${cert.served.notAfter.slice(0, 10)}; renewal window ${cert.renewalDays ?? "?"} days), ${matches ? "the stack's" : "NOT the stack's"}`, attention };
}

/** The report and what needs attention (empty: healthy). */
export function assess(facts: StatusFacts): StatusReport {
    const attention: string[] = [];
    const window = typeof facts.window === "string" ? undefined : facts.window;
    if (typeof facts.window === "string") attention.push(`the proxy's access log could not be read: ${facts.window}`);
    const appImage = imageId(facts.images.app);
    /** An upstream "address:port" without its port; the window's figures by that address. */
    const addressOf = (upstream: string) => upstream.replace(/:\d+$/, "");
    const byAddress = new Map([...(window?.byUpstream ?? [])].map(([upstream, seen]) => [addressOf(upstream), seen]));

    const rows = [["replica", "state", "health", "req/s", "5xx", "4xx", "p50", "p99", "workers", "image"]];
    for (const replica of facts.replicas) {
        const c = replica.container;
        const problem = containerProblem(`replica ${replica.name}`, c);
        if (problem) attention.push(problem);
        const answered = replica.healthStatus === undefined || replica.healthStatus === 200;
        if (!problem && !answered) attention.push(`replica ${replica.name} answers its health check with ${replica.healthStatus}`);
        const metrics = Array.isArray(replica.metrics) ? replica.metrics : undefined;
        if (!problem && typeof replica.metrics === "string") attention.push(`replica ${replica.name}'s metrics could not be read: ${replica.metrics}`);
        if (c && appImage && c.image !== appImage) attention.push(`replica ${replica.name} runs image ${shortId(c.image)}, not the stack's ${shortId(appImage)}`);
        const seen = c?.addresses.map((a) => byAddress.get(a)).find(Boolean);
        if (seen && seen.attempts >= MIN_ATTEMPTS_FOR_RATE && seen.serverErrors / seen.attempts > SERVER_ERROR_ATTENTION) {
            attention.push(`replica ${replica.name} answered ${pct(seen.serverErrors, seen.attempts)} of the proxy's attempts with 5xx in the last ${window!.seconds} s`);
        }
        const exits = metrics ? sampleValue(metrics, "mlapi_worker_exits_total") : undefined;
        rows.push([
            replica.name,
            c ? `${c.status}${c.restarts ? ` (${c.restarts} restarts)` : ""}` : "missing",
            c?.status === "running" ? (c.health ?? "-") : "-",
            window ? rate(seen?.attempts ?? 0, window.seconds) : "-",
            seen ? pct(seen.serverErrors, seen.attempts) : "-",
            seen ? pct(seen.clientErrors, seen.attempts) : "-",
            ms(percentile(seen?.seconds ?? [], 50)),
            ms(percentile(seen?.seconds ?? [], 99)),
            metrics ? `${sampleValue(metrics, "mlapi_workers") ?? "?"}${exits ? ` (${exits} exited)` : ""}` : "-",
            c ? shortId(c.image) : "-",
        ]);
    }

    // Addresses the proxy sent to that no replica of the stack has now: a replica
    // that stopped within the window, or a config that lists something else.
    const known = facts.replicas.flatMap((r) => r.container?.addresses ?? []);
    const others = [...(window?.byUpstream ?? [])].filter(([upstream]) => !known.includes(addressOf(upstream)));
    for (const [address, seen] of others) {
        rows.push([`(${address}, no replica now)`, "-", "-", rate(seen.attempts, window!.seconds), pct(seen.serverErrors, seen.attempts), pct(seen.clientErrors, seen.attempts), ms(percentile(seen.seconds, 50)), ms(percentile(seen.seconds, 99)), "-", "-"]);
    }

    const proxyProblem = containerProblem(`the proxy ${facts.proxy.name}`, facts.proxy.container);
    if (proxyProblem) attention.push(proxyProblem);
    if (facts.portHolder) {
        const holderProblem = containerProblem(`the port holder ${facts.portHolder.name}`, facts.portHolder.container);
        if (holderProblem) attention.push(holderProblem);
    }
    const proxyImage = imageId(facts.images.proxy);
    if (facts.proxy.container && proxyImage && facts.proxy.container.image !== proxyImage) {
        attention.push(`the proxy runs image ${shortId(facts.proxy.container.image)}, not the stack's ${shortId(proxyImage)}`);
    }
    const stub = typeof facts.proxy.stub === "object" ? facts.proxy.stub : undefined;
    if (typeof facts.proxy.stub === "string") attention.push(`Nginx's status could not be read: ${facts.proxy.stub}`);
    if (typeof facts.proxy.exported === "string") attention.push(`Nginx's Prometheus metrics (the exporter) could not be read: ${facts.proxy.exported}`);
    if (facts.operator?.error) attention.push(`the operator listener ${facts.operator.url} did not answer: ${facts.operator.error}`);
    const routed = facts.operator?.replicaNames;
    const names = facts.replicas.map((r) => r.name);
    if (routed && [...routed].sort().join() !== [...names].sort().join()) {
        attention.push(`the proxy's config lists ${routed.join(", ") || "no replica"}, the stack ${names.join(", ")}`);
    }
    if (window && window.requests >= MIN_ATTEMPTS_FOR_RATE && window.serverErrors / window.requests > SERVER_ERROR_ATTENTION) {
        attention.push(`clients got ${pct(window.serverErrors, window.requests)} 5xx answers in the last ${window.seconds} s`);
    }

    const certificate = assessCertificate(facts.certificate, facts.nowMs);
    attention.push(...certificate.attention);

    // The models the replicas serve (mlapi_model_info), each version once.
    const models = [
        ...new Set(
            facts.replicas.flatMap((r) => (Array.isArray(r.metrics) ? r.metrics : []).filter((m) => m.name === "mlapi_model_info").map((m) => `${m.labels.model} ${m.labels.version}`)),
        ),
    ].sort();
    const proxyState = facts.proxy.container ? `${facts.proxy.container.status}, ${facts.proxy.container.health ?? "no health check"}` : "missing";
    const lines = [
        `Stack ${facts.stack} at ${facts.url}  (${new Date(facts.nowMs).toISOString().replace(/\.\d+Z$/, "Z")}; rates over the last ${window ? window.seconds : "-"} s)`,
        "",
        "Replicas (as the proxy saw them: every attempt, retries included)",
        ...table(rows),
        "",
        `Proxy ${facts.proxy.name}: ${proxyState}` +
            (window ? `; ${rate(window.requests, window.seconds)} req/s, ${pct(window.serverErrors, window.requests)} 5xx` : "") +
            (stub ? `; ${stub.active} connections (${stub.reading} reading, ${stub.writing} writing, ${stub.waiting} idle), ${stub.requests} requests since the proxy last loaded its files` : ""),
        `Certificate: ${certificate.line}`,
        `Images: app ${facts.images.app ?? "?"}; proxy ${facts.images.proxy ?? "?"}`,
        ...(models.length ? [`Models: ${models.join(", ")}`] : []),
        ...(facts.operator ? [] : ["(operatorPort is 0: no metrics, no health answers by name; Docker's and the access log's figures only)"]),
        "",
        attention.length ? `ATTENTION: ${attention.join("; ")}` : `OK: ${facts.replicas.length} of ${facts.replicas.length} replicas healthy, proxy healthy, certificate valid and outside its renewal window`,
    ];
    return { text: lines.join("\n"), attention };
}
