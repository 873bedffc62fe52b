// A paced load that measures what a change does to traffic: a few kept-alive
// connections, each sending a prediction at a fixed interval. It reports every
// failed request and the longest time without any successful answer.
// Bounded: it stops when told, or at its deadline. Three kinds of client:
//   - "http1": HTTP/1.1 keep-alive, no retry at all (the strictest);
//   - "http1-resend": HTTP/1.1 keep-alive that resends a request once, and
//     only when a reused connection was closed before any byte of the answer
//     arrived (what browsers and most HTTP libraries do); resends are counted;
//   - "http2": one HTTP/2 connection per worker that moves to a new one after
//     a GOAWAY, resending a request the server refused unprocessed
//     (REFUSED_STREAM, or a stream cut by the GOAWAY); resends are counted;
//   - "python-http.client" and "python-requests": Python's own clients with
//     no retry (test/clients/paced_load.py, in the project's venv).
import { spawn } from "child_process";
import * as fs from "fs";
import * as http2 from "http2";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import { MODEL_PATHS, SEED_PAYLOADS } from "./http";

export type LoadClient = "http1" | "http1-resend" | "http2" | "python-http.client" | "python-requests";

/** The kinds the suites run through every change: two that resend as browsers do, and Python's two that never resend. */
export const ENGINE_CLIENTS = ["http1-resend", "http2", "python-http.client", "python-requests"] as const;

/**
 * What a change cost each client that should have lost nothing: a line per
 * report with a failed request, or (with `gapUnder`) a longest time without
 * an answer of that many seconds or more; empty when every client kept being
 * served. For `expect(...).toEqual([])`, which then prints the lines.
 */
export function servingLost(reports: TrafficReport[], gapUnder?: number): string[] {
    return reports.flatMap((r) => [
        ...(r.failed ? [`${r.client}: ${r.failed} of ${r.requests} failed (${JSON.stringify(r.failures)})`] : []),
        ...(gapUnder !== undefined && !(r.longestGapSeconds < gapUnder) ? [`${r.client}: ${r.longestGapSeconds} s without an answer`] : []),
    ]);
}

const PROJECT_ROOT = path.resolve(__dirname, "..", "..");

export interface PacedLoadOptions {
    /** The stack's base URL, e.g. https://127.0.0.1:18443/. */
    url: string;
    /** Trust anchor (PEM) of the stack's certificate. */
    ca?: string;
    /** Kept-alive connections (one request in flight on each). */
    connections?: number;
    /** Requests per second, all connections together (stay below the stack's rate limit). */
    ratePerSecond?: number;
    /** The load stops by itself after this long, whatever happens. */
    maxSeconds?: number;
    client?: LoadClient;
}

export interface TrafficReport {
    client: LoadClient;
    requests: number;
    /** Requests sent a second time under the client's rule (never counted as failures when they then succeed). */
    resends: number;
    failed: number;
    /** Failures by kind: HTTP status or error code (ECONNRESET, ECONNREFUSED, ...). */
    failures: Record<string, number>;
    /** Longest time in which no request was answered successfully, in seconds. */
    longestGapSeconds: number;
    /** When that gap began (epoch ms), to line it up with what the change did at that moment. */
    longestGapFrom: number;
    seconds: number;
}

export interface PacedLoad {
    /** Stops sending, waits for the requests in flight and reports. */
    stop(): Promise<TrafficReport>;
}

/** The same load from test/clients/paced_load.py: Python's http.client or requests, no retry. */
function startPythonLoad(options: PacedLoadOptions, client: "python-http.client" | "python-requests"): PacedLoad {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-load-"));
    const caFile = path.join(dir, "ca.pem");
    fs.writeFileSync(caFile, options.ca ?? "");
    const python = path.join(PROJECT_ROOT, ".venv", "bin", "python");
    const args = [path.join(PROJECT_ROOT, "test", "clients", "paced_load.py"), options.url, caFile, client.replace(/^python-/, ""), String(options.connections ?? 4), String(options.ratePerSecond ?? 60), String(options.maxSeconds ?? 600)];
    const child = spawn(python, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve, reject) => {
        child.once("error", reject);
        child.once("close", resolve);
    });
    return {
        async stop() {
            child.kill("SIGTERM");
            const code = await exited;
            fs.rmSync(dir, { recursive: true, force: true });
            if (code !== 0) throw new Error(`${python} ${args.join(" ")} exited ${code}: ${stderr.trim()}`);
            const report = JSON.parse(stdout.trim().split("\n").pop()!);
            return { client, resends: 0, ...report };
        },
    };
}

export function startPacedLoad(options: PacedLoadOptions): PacedLoad {
    if (options.client === "python-http.client" || options.client === "python-requests") return startPythonLoad(options, options.client);
    const connections = options.connections ?? 4;
    const intervalMs = (1000 * connections) / (options.ratePerSecond ?? 60);
    const deadline = Date.now() + (options.maxSeconds ?? 600) * 1000;
    const base = options.url.endsWith("/") ? options.url : `${options.url}/`;
    const target = `${base}${MODEL_PATHS.classifier}`;
    const started = Date.now();
    let stopping = false;
    let requests = 0;
    const failures: Record<string, number> = {};
    const successes: number[] = [started];

    const client = options.client ?? "http1";
    let resends = 0;
    const record = (outcome: string | undefined) => {
        if (outcome === undefined) successes.push(Date.now());
        else failures[outcome] = (failures[outcome] ?? 0) + 1;
    };
    const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    const body = JSON.stringify(SEED_PAYLOADS.classifier);

    /** One request over HTTP/1.1; undefined on success, else what failed. */
    const http1 = async (agent: https.Agent): Promise<string | undefined> => {
        for (let attempt = 0; ; attempt++) {
            let reused = false;
            try {
                const answer = await new Promise<number>((resolve, reject) => {
                    const req = https.request(target, { method: "POST", agent, ca: options.ca, headers: { "Content-Type": "application/json" }, timeout: 5000 }, (res) => {
                        res.resume();
                        res.on("end", () => resolve(res.statusCode ?? 0));
                        res.on("error", reject);
                    });
                    req.on("socket", () => (reused = req.reusedSocket));
                    req.on("timeout", () => req.destroy(new Error("timeout")));
                    req.on("error", reject);
                    req.end(body);
                });
                return answer === 200 ? undefined : `HTTP ${answer}`;
            } catch (error) {
                // Node's own rule for a safe resend: the reused socket closed before the answer began.
                const closedIdle = reused && ["ECONNRESET", "EPIPE"].includes(errorCode(error));
                if (client === "http1-resend" && closedIdle && attempt === 0) {
                    resends++;
                    continue;
                }
                return errorCode(error);
            }
        }
    };

    /** One request over HTTP/2, on the worker's current session. */
    let sessions: http2.ClientHttp2Session[] = [];
    const openSession = () => {
        const session = http2.connect(base, { ca: options.ca });
        session.on("error", () => undefined);
        session.on("goaway", () => session.close());
        sessions.push(session);
        return session;
    };
    const h2 = async (current: { session?: http2.ClientHttp2Session }): Promise<string | undefined> => {
        for (let attempt = 0; ; attempt++) {
            if (!current.session || current.session.closed || current.session.destroyed) current.session = openSession();
            const session = current.session;
            try {
                const status = await new Promise<number>((resolve, reject) => {
                    const stream = session.request({ ":method": "POST", ":path": `/${MODEL_PATHS.classifier}`, "content-type": "application/json" });
                    let code = 0;
                    stream.setTimeout(5000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
                    stream.on("response", (headers) => (code = Number(headers[":status"])));
                    stream.on("data", () => undefined);
                    // An end with no response headers is a dropped stream, not an answer.
                    stream.on("end", () => (code ? resolve(code) : reject(Object.assign(new Error("stream ended without a response"), { code: "H2_NO_RESPONSE" }))));
                    stream.on("close", () => (code ? resolve(code) : reject(Object.assign(new Error("stream closed"), { code: `H2_RST_${stream.rstCode}` }))));
                    stream.on("error", reject);
                    stream.end(body);
                });
                return status === 200 ? undefined : `HTTP ${status}`;
            } catch (error) {
                // Refused before processing (RFC 9113 8.7): safe to send again, on a new connection.
                const refused = /REFUSED_STREAM|H2_RST_7|ERR_HTTP2_GOAWAY_SESSION|ERR_HTTP2_INVALID_SESSION|ERR_HTTP2_STREAM_CANCEL/.test(`${errorCode(error)} ${error}`);
                if (refused && attempt === 0) {
                    resends++;
                    current.session = undefined;
                    continue;
                }
                return errorCode(error);
            }
        }
    };

    const worker = async () => {
        const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
        const current: { session?: http2.ClientHttp2Session } = {};
        try {
            while (!stopping && Date.now() < deadline) {
                const sentAt = Date.now();
                requests++;
                record(client === "http2" ? await h2(current) : await http1(agent));
                const wait = sentAt + intervalMs - Date.now();
                if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
            }
        } finally {
            agent.destroy();
        }
    };
    // Staggered, so the connections' requests interleave evenly.
    const workers = Array.from({ length: connections }, (_, i) => new Promise((resolve) => setTimeout(resolve, (i * intervalMs) / connections)).then(worker));

    return {
        async stop() {
            stopping = true;
            await Promise.all(workers);
            const ended = Date.now();
            successes.push(ended);
            successes.sort((a, b) => a - b);
            let longest = 0;
            let from = started;
            for (let i = 1; i < successes.length; i++) {
                if (successes[i] - successes[i - 1] > longest) [longest, from] = [successes[i] - successes[i - 1], successes[i - 1]];
            }
            for (const session of sessions) session.destroy();
            sessions = [];
            const failed = Object.values(failures).reduce((a, b) => a + b, 0);
            return { client, requests, resends, failed, failures, longestGapSeconds: longest / 1000, longestGapFrom: from, seconds: (ended - started) / 1000 };
        },
    };
}

/**
 * One line for a log: what `change` did to one client kind's traffic.
 * `expected` says why losses are a measurement there, not a failure (an
 * engine down, a node lost): then lost requests read as such.
 */
export function formatTraffic(change: string, report: TrafficReport, upSeconds?: number, expected?: string): string {
    const kinds = Object.entries(report.failures).map(([k, n]) => `${n} ${k}`).join(", ");
    const outcome = report.failed && expected ? `lost, as expected (${expected})` : "failed";
    return (
        `${change} [${report.client}]: ${report.failed} of ${report.requests} requests ${outcome}${kinds ? ` (${kinds})` : ""}, ${report.resends} resent, ` +
        `longest gap ${report.longestGapSeconds.toFixed(2)} s (from ${new Date(report.longestGapFrom).toISOString().slice(11, 23)})${upSeconds === undefined ? "" : `, pulumi up ${upSeconds.toFixed(1)} s`}`
    );
}
