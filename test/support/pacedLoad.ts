// A paced load that measures what a change does to traffic: a few HTTP/1.1
// keep-alive connections, each sending a prediction at a fixed interval, no
// retries. It reports every failed request and the longest time without any
// successful answer. Bounded: it stops when told, or at its deadline.
import * as https from "https";
import { MODEL_PATHS, SEED_PAYLOADS, postJson } from "./http";

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
}

export interface TrafficReport {
    requests: number;
    failed: number;
    /** Failures by kind: HTTP status or error code (ECONNRESET, ECONNREFUSED, ...). */
    failures: Record<string, number>;
    /** Longest time in which no request was answered successfully, in seconds. */
    longestGapSeconds: number;
    seconds: number;
}

export interface PacedLoad {
    /** Stops sending, waits for the requests in flight and reports. */
    stop(): Promise<TrafficReport>;
}

export function startPacedLoad(options: PacedLoadOptions): PacedLoad {
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

    const worker = async () => {
        const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
        try {
            while (!stopping && Date.now() < deadline) {
                const sentAt = Date.now();
                requests++;
                try {
                    const answer = await postJson(target, SEED_PAYLOADS.classifier, { ca: options.ca, agent, timeoutMs: 5000 });
                    if (answer.status === 200) successes.push(Date.now());
                    else failures[`HTTP ${answer.status}`] = (failures[`HTTP ${answer.status}`] ?? 0) + 1;
                } catch (error) {
                    const code = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
                    failures[code] = (failures[code] ?? 0) + 1;
                }
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
            for (let i = 1; i < successes.length; i++) longest = Math.max(longest, successes[i] - successes[i - 1]);
            const failed = Object.values(failures).reduce((a, b) => a + b, 0);
            return { requests, failed, failures, longestGapSeconds: longest / 1000, seconds: (ended - started) / 1000 };
        },
    };
}

export function formatTraffic(change: string, report: TrafficReport, upSeconds?: number): string {
    const kinds = Object.entries(report.failures).map(([k, n]) => `${n} ${k}`).join(", ");
    return (
        `${change}: ${report.failed} of ${report.requests} requests failed${kinds ? ` (${kinds})` : ""}, ` +
        `longest gap ${report.longestGapSeconds.toFixed(2)} s${upSeconds === undefined ? "" : `, pulumi up ${upSeconds.toFixed(1)} s`}`
    );
}
