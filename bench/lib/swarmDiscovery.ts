// Pieces of bench/swarm-discovery.ts: variant B's config (the rendered config
// with Nginx resolving the tasks itself), a proxy namespace's count of
// outgoing TCP connections, and the open-loop load of the failover runs.
import * as fs from "fs";
import * as https from "https";
import { APP_PORT } from "../../components/layout";

/** Docker's DNS inside every task of a swarm network. */
const DOCKER_DNS = "127.0.0.11";

/**
 * The rendered swarm config with its upstream block replaced by Nginx's own
 * resolving of tasks.<appService> (answers valid 1 s), and every proxy_pass
 * to that name through a variable, so Nginx resolves it at request time. All
 * else stays as rendered. Throws when the text no longer has what it edits.
 */
export function resolverConfig(rendered: string, appService: string): string {
    const edits: [RegExp, string][] = [
        [/^    upstream mlapi_replicas \{[^}]*\}\n/m, `    resolver ${DOCKER_DNS} valid=1s ipv6=off;\n    resolver_timeout 2s;\n`],
        [/^(\s*)proxy_pass http:\/\/mlapi_replicas;$/gm, `$1set $$mlapi_tasks tasks.${appService};\n$1proxy_pass http://$$mlapi_tasks:${APP_PORT};`],
    ];
    let text = rendered;
    for (const [pattern, replacement] of edits) {
        if (!pattern.test(text)) throw new Error(`resolverConfig: ${pattern} is not in the rendered nginx.conf`);
        pattern.lastIndex = 0;
        text = text.replace(pattern, replacement);
    }
    return text;
}

/** TCP connections opened from the network namespace of process `pid` so far (ActiveOpens). */
export function activeOpens(pid: number): number {
    const [names, values] = fs
        .readFileSync(`/proc/${pid}/net/snmp`, "utf8")
        .split("\n")
        .filter((line) => line.startsWith("Tcp:"))
        .map((line) => line.split(/\s+/));
    return Number(values[names.indexOf("ActiveOpens")]);
}

/** One request of an open-loop load: when it was sent (epoch ms), how long it took, and its outcome. */
export interface Sample {
    t: number;
    ms: number;
    /** "200", another status, or the error (TIMEOUT, ECONNRESET, ...). */
    outcome: string;
}

export interface OpenLoad {
    /** Stops sending, waits for the requests in flight (each ends within its timeout) and returns every sample. */
    stop(): Promise<Sample[]>;
}

const REQUEST_TIMEOUT_MS = 5000;

/**
 * POSTs `body` to `url` every 1000/rate ms whatever the answers (open loop:
 * a slow answer does not delay the next request), over kept-alive HTTPS
 * connections (up to 64), with a 5 s timeout and no retry. Stops by itself
 * after `maxSeconds`.
 */
export function startOpenLoad(url: string, body: string, ratePerSecond: number, ca: string, maxSeconds: number): OpenLoad {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca });
    const samples: Sample[] = [];
    const inFlight = new Set<Promise<void>>();
    const intervalMs = 1000 / ratePerSecond;
    const started = Date.now();
    const deadline = started + maxSeconds * 1000;
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;

    const one = () => {
        const t = Date.now();
        const done = new Promise<void>((resolve) => {
            let ended = false;
            const end = (outcome: string) => {
                if (ended) return;
                ended = true;
                clearTimeout(timeout);
                samples.push({ t, ms: Date.now() - t, outcome });
                resolve();
            };
            const req = https.request(url, { method: "POST", agent, headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } }, (res) => {
                res.resume();
                res.on("end", () => end(String(res.statusCode)));
                res.on("error", (error: NodeJS.ErrnoException) => end(error.code ?? error.message));
            });
            const timeout = setTimeout(() => {
                end("TIMEOUT");
                req.destroy();
            }, REQUEST_TIMEOUT_MS);
            req.on("error", (error: NodeJS.ErrnoException) => end(error.code ?? error.message));
            req.end(body);
        });
        inFlight.add(done);
        void done.then(() => inFlight.delete(done));
    };
    const tick = () => {
        const now = Date.now();
        if (now >= deadline) return;
        for (; started + sent * intervalMs <= now; sent++) one();
        timer = setTimeout(tick, Math.max(0, started + sent * intervalMs - Date.now()));
    };
    tick();

    return {
        async stop() {
            clearTimeout(timer);
            await Promise.all(inFlight);
            agent.destroy();
            return samples.sort((a, b) => a.t - b.t);
        },
    };
}

/** How many samples, and when the first and the last of them were sent, in seconds from `at`. */
export interface Span {
    count: number;
    first: number;
    last: number;
}

function span(samples: Sample[], at: number): Span {
    return { count: samples.length, first: samples.length ? (samples[0].t - at) / 1000 : 0, last: samples.length ? (samples[samples.length - 1].t - at) / 1000 : 0 };
}

/**
 * A load's (samples in the order sent) failed requests by outcome, its
 * successful answers slower than 1 s, and its longest request; times in
 * seconds from `at`.
 */
export function summariseSamples(samples: Sample[], at: number) {
    const failed = samples.filter((s) => s.outcome !== "200");
    const outcomes = [...new Set(failed.map((s) => s.outcome))];
    return {
        requests: samples.length,
        failed: failed.length,
        failures: Object.fromEntries(outcomes.map((o) => [o, span(failed.filter((s) => s.outcome === o), at)])),
        slowOk: span(samples.filter((s) => s.outcome === "200" && s.ms > 1000), at),
        longestMs: Math.max(0, ...samples.map((s) => s.ms)),
    };
}
