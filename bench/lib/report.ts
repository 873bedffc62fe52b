// The results of a benchmark run: their shape, the targets of issue 5
// evaluated on them, and the Markdown rendering.
import { LoadResult } from "./wrk";

export type StackName = "ours" | "tutorial" | "constant";
export type PathName = "https" | "direct";

export interface CaseSpec {
    id: string;
    stack: StackName;
    path: PathName;
    replicas: number;
    connections: number;
}

export interface RunRecord extends LoadResult {
    round: number;
    /** Position of the run in the whole interleaved sequence. */
    order: number;
    valid: boolean;
}

export interface CaseResult extends CaseSpec {
    label: string;
    wrkThreads: number;
    runs: RunRecord[];
    median: { rps: number; rpsMin: number; rpsMax: number; p50: number; p99: number; p999: number; errors: number; appUs: number; proxyUs: number; wrkUs: number; otherCores: number };
}

export interface Target {
    id: string;
    description: string;
    measured: number | null;
    goal: string;
    pass: boolean | null;
    detail: string;
}

export interface StartupResult {
    samplesMs: number[];
    medianMs: number;
    maxMs: number;
    readiness: string;
}

export interface MemoryResult {
    workers: number;
    processes: number;
    pssMiB: number;
    rssMiB: number;
    privateMiB: number;
}

export interface ContainerMemory {
    image: string;
    workers: number;
    usageMiB: number;
    raw: string;
}

export interface Results {
    format: "mlapi.bench/1";
    mode: "full" | "quick";
    startedAt: string;
    finishedAt: string;
    totalSeconds: number;
    command: string;
    machine: Record<string, string | number>;
    settings: Record<string, unknown>;
    cases: CaseResult[];
    startup: { ours?: StartupResult; tutorial?: StartupResult };
    memory: { host?: { ours: MemoryResult; tutorial: MemoryResult }; containers?: { ours: ContainerMemory; tutorial: ContainerMemory } | { skipped: string } };
    images?: { ours: { tag: string; bytes: number }; tutorial: { tag: string; bytes: number }; ratio: number } | { skipped: string };
    inProcess?: { ours: string[]; tutorial: string[] };
    profile?: { replica: string; samples: number; durationSeconds: number; buckets: { name: string; share: number }[]; topSelf: { frame: string; share: number }[]; topInclusive: { frame: string; share: number }[]; finding: string; file: string } | { skipped: string };
    targets: Target[];
    phases: Record<string, number>;
}

export const median = (values: number[]): number => {
    const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
    if (sorted.length === 0) return NaN;
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

export function summarise(spec: CaseSpec, label: string, wrkThreads: number, runs: RunRecord[]): CaseResult {
    const valid = runs.filter((r) => r.valid);
    const use = valid.length > 0 ? valid : runs;
    const rps = use.map((r) => r.rps);
    return {
        ...spec,
        label,
        wrkThreads,
        runs,
        median: {
            rps: median(rps),
            rpsMin: Math.min(...rps),
            rpsMax: Math.max(...rps),
            p50: median(use.map((r) => r.latencyMs.p50)),
            p99: median(use.map((r) => r.latencyMs.p99)),
            p999: median(use.map((r) => r.latencyMs.p999)),
            errors: runs.reduce((sum, r) => sum + r.errors.status + r.errors.timeout + r.errors.connect + r.errors.read + r.errors.write, 0),
            appUs: median(use.map((r) => r.cpu.appUsPerRequest)),
            proxyUs: median(use.map((r) => r.cpu.proxyUsPerRequest)),
            wrkUs: median(use.map((r) => r.cpu.wrkUsPerRequest)),
            otherCores: median(use.map((r) => r.cpu.otherCores)),
        },
    };
}

const find = (cases: CaseResult[], stack: StackName, path: PathName, replicas: number, connections: number) =>
    cases.find((c) => c.stack === stack && c.path === path && c.replicas === replicas && c.connections === connections);

/** Ratio a/b of every round both ran in (the interleaved runs of one round are neighbours in time). */
function pairedRatios(a: CaseResult, b: CaseResult, metric: (r: RunRecord) => number): number[] {
    const ratios: number[] = [];
    for (const run of a.runs) {
        const other = b.runs.find((r) => r.round === run.round);
        if (other) ratios.push(metric(run) / metric(other));
    }
    return ratios;
}

const fmt = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");
const range = (values: number[], digits = 2) => (values.length ? `per round ${fmt(Math.min(...values), digits)}-${fmt(Math.max(...values), digits)}` : "");

export function evaluateTargets(results: Results, headline: number): Target[] {
    const targets: Target[] = [];
    const { cases } = results;
    for (const connections of results.settings.connections as number[]) {
        const ours = find(cases, "ours", "https", headline, connections);
        const tutorial = find(cases, "tutorial", "https", headline, connections);
        const direct = find(cases, "ours", "direct", headline, connections);
        const constant = find(cases, "constant", "https", headline, connections);
        if (ours && tutorial) {
            const ratio = ours.median.rps / tutorial.median.rps;
            targets.push({
                id: `throughput-vs-tutorial-c${connections}`,
                description: `Predictions/s over HTTPS through the proxy, ours vs the tutorial's stack, ${headline} replicas, ${connections} connections`,
                measured: ratio,
                goal: ">= 4x",
                pass: ratio >= 4,
                detail: `${fmt(ours.median.rps, 0)} vs ${fmt(tutorial.median.rps, 0)} req/s = ${fmt(ratio)}x (${range(pairedRatios(ours, tutorial, (r) => r.rps))})`,
            });
            const p99 = ours.median.p99 / tutorial.median.p99;
            targets.push({
                id: `p99-vs-tutorial-c${connections}`,
                description: `p99 latency over HTTPS, ours vs the tutorial's stack, ${headline} replicas, ${connections} connections`,
                measured: p99,
                goal: "<= 0.33 (a third)",
                pass: p99 <= 1 / 3,
                detail: `${fmt(ours.median.p99)} vs ${fmt(tutorial.median.p99)} ms = ${fmt(p99)} (${range(pairedRatios(ours, tutorial, (r) => r.latencyMs.p99))})`,
            });
        }
        if (ours && direct) {
            const ratio = ours.median.rps / direct.median.rps;
            targets.push({
                id: `proxy-cost-c${connections}`,
                description: `Proxy cost: predictions/s through Nginx over HTTPS vs the same ${headline} replicas hit directly (HTTP), ${connections} connections`,
                measured: ratio,
                goal: ">= 0.85",
                pass: ratio >= 0.85,
                detail: `${fmt(ours.median.rps, 0)} vs ${fmt(direct.median.rps, 0)} req/s = ${fmt(ratio * 100, 1)}% (${range(pairedRatios(ours, direct, (r) => r.rps))})`,
            });
        }
        if (ours && constant) {
            const ratio = ours.median.rps / constant.median.rps;
            targets.push({
                id: `floor-c${connections}`,
                description: `Close to the floor: prediction vs a constant-JSON endpoint of the same stack (Flask + Gunicorn + Nginx HTTPS), ${headline} replicas, ${connections} connections`,
                measured: ratio,
                goal: ">= 0.70",
                pass: ratio >= 0.7,
                detail: `${fmt(ours.median.rps, 0)} vs ${fmt(constant.median.rps, 0)} req/s = ${fmt(ratio * 100, 1)}% (${range(pairedRatios(ours, constant, (r) => r.rps))})`,
            });
        }
    }
    const images = results.images;
    if (images && "ratio" in images) {
        targets.push({
            id: "image-size",
            description: "App image size vs an image built the tutorial's way",
            measured: images.ratio,
            goal: "<= 0.40",
            pass: images.ratio <= 0.4,
            detail: `${fmt(images.ours.bytes / 1e6, 1)} MB vs ${fmt(images.tutorial.bytes / 1e6, 1)} MB = ${fmt(images.ratio * 100, 1)}%`,
        });
    } else {
        targets.push({ id: "image-size", description: "App image size vs an image built the tutorial's way", measured: null, goal: "<= 0.40", pass: null, detail: `not measured: ${images?.skipped ?? "images phase not run"}` });
    }
    const host = results.memory.host;
    if (host) {
        const ratio = host.ours.pssMiB / host.tutorial.pssMiB;
        targets.push({
            id: "memory-host",
            description: `Memory of one replica, all its processes (PSS sum, host processes the bench starts): ours at its default ${host.ours.workers} workers vs the tutorial's ${host.tutorial.workers}`,
            measured: ratio,
            goal: "<= 0.33 (a third)",
            pass: ratio <= 1 / 3,
            detail: `${fmt(host.ours.pssMiB, 1)} vs ${fmt(host.tutorial.pssMiB, 1)} MiB = ${fmt(ratio)}`,
        });
    }
    const containers = results.memory.containers;
    if (containers && "ours" in containers) {
        const ratio = containers.ours.usageMiB / containers.tutorial.usageMiB;
        targets.push({
            id: "memory-container",
            description: `App container memory (docker stats, after load): ours at its default ${containers.ours.workers} workers vs the tutorial's ${containers.tutorial.workers}`,
            measured: ratio,
            goal: "<= 0.33 (a third)",
            pass: ratio <= 1 / 3,
            detail: `${fmt(containers.ours.usageMiB, 1)} vs ${fmt(containers.tutorial.usageMiB, 1)} MiB = ${fmt(ratio)}`,
        });
    }
    const startup = results.startup.ours;
    if (startup) {
        targets.push({
            id: "startup",
            description: "Start-up: process spawn to first 200 on /api/health, one replica (worst of the repeats)",
            measured: startup.maxMs / 1000,
            goal: "<= 2 s",
            pass: startup.maxMs <= 2000,
            detail: `median ${fmt(startup.medianMs, 0)} ms, worst ${fmt(startup.maxMs, 0)} ms over ${startup.samplesMs.length} starts`,
        });
    }
    return targets;
}

const STACK_LABEL: Record<StackName, string> = {
    ours: "ours: prediction",
    constant: "ours: constant JSON (floor)",
    tutorial: "tutorial: prediction",
};

export function caseLabel(spec: CaseSpec): string {
    return `${STACK_LABEL[spec.stack]}, ${spec.path === "https" ? "via Nginx HTTPS" : "direct HTTP"}`;
}

export function renderMarkdown(results: Results): string {
    const lines: string[] = [];
    const m = results.machine;
    if (results.mode === "quick") lines.push("**Quick smoke run: one short run per case on a single replica; the figures are not meaningful and the targets are not checked by it.**\n");
    lines.push(`Run of ${results.finishedAt} (${results.mode}, ${results.totalSeconds.toFixed(0)} s in all): ${m.cpuModel}, ${m.nproc} CPUs, kernel ${m.kernel}, ${m.nginx}, gunicorn ${m.gunicorn}, ${m.python}, ${m.wrk}.`);
    const s = results.settings;
    lines.push(
        `wrk -t ${s.wrkThreads} (direct runs over several replicas: one thread per replica), ${s.rounds} interleaved rounds of ${s.durationSeconds} s per case, ` +
            `POST of the seed classifier payload; medians over the rounds (min-max of req/s in brackets). CPU columns: CPU time per request of the app replicas, Nginx and wrk.`,
    );
    lines.push("");
    lines.push("| case | replicas | conns | req/s (min-max) | p50 ms | p99 ms | app CPU us/req | Nginx CPU us/req | wrk CPU us/req | errors |");
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    const order: Record<string, number> = { "ours/https": 0, "ours/direct": 1, "constant/https": 2, "tutorial/https": 3, "tutorial/direct": 4 };
    const sorted = [...results.cases].sort(
        (a, b) => order[`${a.stack}/${a.path}`] - order[`${b.stack}/${b.path}`] || a.replicas - b.replicas || a.connections - b.connections,
    );
    for (const c of sorted) {
        const md = c.median;
        lines.push(
            `| ${c.label} | ${c.replicas} | ${c.connections} | ${fmt(md.rps, 0)} (${fmt(md.rpsMin, 0)}-${fmt(md.rpsMax, 0)}) | ${fmt(md.p50)} | ${fmt(md.p99)} | ${fmt(md.appUs, 0)} | ${c.path === "https" ? fmt(md.proxyUs, 0) : "-"} | ${fmt(md.wrkUs, 0)} | ${md.errors} |`,
        );
    }
    lines.push("");
    lines.push("| target | goal | measured | result |");
    lines.push("| --- | --- | --- | --- |");
    for (const t of results.targets) {
        lines.push(`| ${t.description} | ${t.goal} | ${t.detail} | ${t.pass === null ? "not measured" : t.pass ? "PASS" : "MISS"} |`);
    }
    lines.push("");
    const st = results.startup;
    if (st.ours) lines.push(`Start-up (spawn to first 200 on ${st.ours.readiness}): ours ${st.ours.samplesMs.map((v) => v.toFixed(0)).join(", ")} ms.`);
    if (st.tutorial) lines.push(`Tutorial app (spawn to first 200 on ${st.tutorial.readiness}): ${st.tutorial.samplesMs.map((v) => v.toFixed(0)).join(", ")} ms.`);
    const host = results.memory.host;
    if (host) {
        lines.push(
            `Memory of one replica on the host (sum over the Gunicorn master and workers, after load): ours ${host.ours.workers} workers ${fmt(host.ours.pssMiB, 1)} MiB PSS (${fmt(host.ours.rssMiB, 1)} MiB RSS summed, ${host.ours.processes} processes); ` +
                `tutorial ${host.tutorial.workers} workers ${fmt(host.tutorial.pssMiB, 1)} MiB PSS (${fmt(host.tutorial.rssMiB, 1)} MiB RSS summed, ${host.tutorial.processes} processes).`,
        );
    }
    const containers = results.memory.containers;
    if (containers && "ours" in containers) {
        lines.push(`Container memory (docker stats after load): ours ${fmt(containers.ours.usageMiB, 1)} MiB, tutorial ${fmt(containers.tutorial.usageMiB, 1)} MiB.`);
    }
    const images = results.images;
    if (images && "ratio" in images) {
        lines.push(`Images: ours ${fmt(images.ours.bytes / 1e6, 1)} MB (${images.ours.tag}), tutorial-way ${fmt(images.tutorial.bytes / 1e6, 1)} MB (${images.tutorial.tag}).`);
    } else if (images) {
        lines.push(`Images: not measured (${images.skipped}).`);
    }
    if (results.inProcess) {
        lines.push("");
        lines.push("In-process time of one prediction (best of 5):");
        lines.push("");
        for (const line of [...results.inProcess.ours.map((l) => `ours: ${l}`), ...results.inProcess.tutorial.map((l) => `tutorial: ${l}`)]) lines.push(`- ${line}`);
    }
    const profile = results.profile;
    if (profile && "finding" in profile) {
        lines.push("");
        lines.push(`Profile (py-spy, ${profile.samples} samples of ${profile.replica}'s workers under load): ${profile.finding}`);
        lines.push("");
        lines.push("| where the workers' CPU goes (self time) | share |");
        lines.push("| --- | ---: |");
        for (const b of profile.buckets) lines.push(`| ${b.name} | ${(b.share * 100).toFixed(1)}% |`);
    }
    lines.push("");
    return lines.join("\n");
}
