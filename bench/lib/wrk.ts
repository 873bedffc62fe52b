// One bounded wrk run, with the CPU time every party used while it ran.
import * as path from "path";
import { cpuSecondsOfGroups, machineCpuSeconds } from "./procstat";
import { runToEnd } from "../../test/support/processes";

export const WRK_SCRIPT = path.join(__dirname, "..", "post.lua");

export interface LoadSpec {
    url: string;
    connections: number;
    threads: number;
    durationSeconds: number;
    body: string;
    /** Direct runs over several replicas: wrk thread i targets ports[i mod n] (url must be the first). */
    ports?: number[];
    /** Process groups whose CPU time is accounted: the app replicas, and the proxy when it is in the path. */
    appGroups: number[];
    proxyGroups: number[];
    /** Another wrk Lua script (default: bench/post.lua). */
    script?: string;
}

export interface CpuSplit {
    /** CPU time in cores (CPU seconds per wall second) used by each party during the run. */
    appCores: number;
    proxyCores: number;
    wrkCores: number;
    /** Everything else that ran on the machine meanwhile (noise). */
    otherCores: number;
    /** CPU microseconds per request. */
    appUsPerRequest: number;
    proxyUsPerRequest: number;
    wrkUsPerRequest: number;
}

export interface LoadResult {
    requests: number;
    durationSeconds: number;
    rps: number;
    bytes: number;
    errors: { connect: number; read: number; write: number; status: number; timeout: number };
    latencyMs: { mean: number; stdev: number; min: number; max: number; p50: number; p90: number; p99: number; p999: number };
    cpu: CpuSplit;
}

/** Parses bash's `times` output: the second line holds the children's user and system time. */
function childrenCpuSeconds(timesOutput: string): number {
    const lines = timesOutput.trim().split("\n");
    const last = lines[lines.length - 1];
    const values = [...last.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
    return values.length === 2 ? values[0] + values[1] : NaN;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
    const args = [
        "-t", String(spec.threads),
        "-c", String(spec.connections),
        "-d", `${spec.durationSeconds}s`,
        "--timeout", "5s",
        "--latency",
        "-s", spec.script ?? WRK_SCRIPT,
        spec.url,
    ];
    const env = { ...process.env, BENCH_BODY: spec.body, BENCH_PORTS: (spec.ports ?? []).join(",") };
    const groups = [...spec.appGroups, ...spec.proxyGroups];
    const before = cpuSecondsOfGroups(groups);
    const machineBefore = machineCpuSeconds();
    const started = process.hrtime.bigint();
    // bash's `times` reports wrk's CPU time after it exits.
    const run = await runToEnd("bash", ["-c", 'wrk "$@"; status=$?; echo BENCH_TIMES; times; exit $status', "wrk", ...args], {
        env,
        timeoutMs: (spec.durationSeconds + 30) * 1000,
    });
    const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const after = cpuSecondsOfGroups(groups);
    const machineAfter = machineCpuSeconds();
    if (run.code !== 0) throw new Error(`wrk failed (${run.code}): ${run.stderr || run.stdout}`);
    const jsonLine = run.stdout.split("\n").find((line) => line.startsWith("BENCH_JSON "));
    if (!jsonLine) throw new Error(`wrk printed no result:\n${run.stdout}\n${run.stderr}`);
    const raw = JSON.parse(jsonLine.slice("BENCH_JSON ".length));
    const wrkSeconds = childrenCpuSeconds(run.stdout.split("BENCH_TIMES")[1] ?? "");

    const used = (gs: number[]) => gs.reduce((sum, g) => sum + (after.get(g)! - before.get(g)!), 0);
    const appSeconds = used(spec.appGroups);
    const proxySeconds = used(spec.proxyGroups);
    const machineBusy = machineAfter.busy - machineBefore.busy;
    const durationSeconds = raw.duration_us / 1e6;
    const requests: number = raw.requests;
    const perRequest = (seconds: number) => (requests > 0 ? (seconds / requests) * 1e6 : NaN);
    const ms = (us: number) => us / 1000;
    const l = raw.latency_us;
    return {
        requests,
        durationSeconds,
        rps: requests / durationSeconds,
        bytes: raw.bytes,
        errors: raw.errors,
        latencyMs: { mean: ms(l.mean), stdev: ms(l.stdev), min: ms(l.min), max: ms(l.max), p50: ms(l.p50), p90: ms(l.p90), p99: ms(l.p99), p999: ms(l.p999) },
        cpu: {
            appCores: appSeconds / wallSeconds,
            proxyCores: proxySeconds / wallSeconds,
            wrkCores: wrkSeconds / wallSeconds,
            otherCores: Math.max(0, machineBusy - appSeconds - proxySeconds - wrkSeconds) / wallSeconds,
            appUsPerRequest: perRequest(appSeconds),
            proxyUsPerRequest: perRequest(proxySeconds),
            wrkUsPerRequest: perRequest(wrkSeconds),
        },
    };
}
