// The performance benchmark of issue 5: our stack against the tutorial's,
// side by side, on this machine.
//
//   npx tsx bench/run.ts            full run (a few minutes): writes bench/results/latest.{json,md,png}
//                                   and the results section of BENCHMARKS.md
//   npx tsx bench/run.ts --quick    smoke run (seconds): one short run per case, into a temp dir
//
// What it does, in order:
//   1. trains the tutorial baseline's scikit-learn models (bench/tutorial/train_models.py, which
//      proves they answer exactly what our API answers);
//   2. start-up and memory: spawns one replica of ours (the real gunicorn.conf.py and app) and times
//      process spawn -> first 200 on /api/health, several times; then, after a short load, sums the
//      memory of its processes; the same for one tutorial replica (gunicorn -w 5, 5 sync workers);
//   3. starts, with the e2e harness (test/e2e/harness.ts: the real rendered Nginx config, the real
//      app, N replicas), our stack at 1, 2 and 4 replicas, the same stack serving a bench-only
//      constant-JSON endpoint (bench/wsgi/bench_constant.py), and the tutorial's stack
//      (bench/tutorial/: its Nginx config, gunicorn -w 5, a DataFrame per request) at 2 replicas;
//   4. runs wrk against every case (via Nginx HTTPS / direct HTTP, 16 and 64 connections),
//      interleaved: every round runs every case once, in a shuffled order, for a few seconds;
//   5. profiles our workers under load with py-spy;
//   6. times one prediction in-process (app/tools/time_prediction.py and the tutorial's);
//   7. builds both images with Docker (ours from app/, the tutorial's from bench/tutorial.Dockerfile),
//      compares their sizes and the containers' memory after load (skipped without Docker);
//   8. writes the results (JSON, Markdown, PNG chart via bench/chart.py) and evaluates the targets.
//
// Every process it starts is stopped at the end, on failure and on Ctrl-C.
// The per-client rate limit of the stack (100 r/s by default) would throttle
// one load-generating client: the bench raises it with the stack's own
// settings (rateLimitPerSecond/rateLimitBurst), as a user can.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseSettings } from "../components/config";
import { ensureModels, freePort, hostReplicaEnv, PROJECT_ROOT, startTopology, Topology, VENV } from "../test/e2e/harness";
import { request } from "../test/support/http";
import { measureImages } from "./lib/images";
import { compactRawProfile, summariseRawProfile } from "./lib/profile";
import { removeOnExit, startGroup, stopGroup, runToEnd, sleep } from "../test/support/processes";
import { memoryOfGroup, pidsOfGroups } from "./lib/procstat";
import { CaseResult, CaseSpec, caseLabel, evaluateTargets, median, renderMarkdown, Results, RunRecord, StackName, StartupResult, summarise, MemoryResult } from "./lib/report";
import { runLoad } from "./lib/wrk";
import { CLASSIFIER_BODY, CLASSIFIER_PATH, startTutorialReplica, startTutorialStack, TUTORIAL_WORKERS, TutorialStack } from "./tutorial/stack";

const BENCH_DIR = __dirname;
const RESULTS_DIR = path.join(BENCH_DIR, "results");
const PYTHON = path.join(VENV, "bin", "python");
const CONSTANT_PATH = "api/bench/constant";
/** The stack settings of every run of ours: the per-client rate limit raised for one load-generating client. */
const BENCH_CONFIG = { rateLimitPerSecond: "1000000", rateLimitBurst: "1000000" };

interface Options {
    quick: boolean;
    rounds: number;
    durationSeconds: number;
    connections: number[];
    replicas: number[];
    headline: number;
    tutorialReplicas: number;
    images: boolean;
    profile: boolean;
    out: string;
    /** Extra stack config for our topologies (e.g. appWorkers=3), to try a candidate change. */
    oursConfig: Record<string, string>;
    /** Extra environment for our replicas (e.g. GUNICORN_CMD_ARGS=...), to try a candidate change. */
    oursEnv: Record<string, string>;
    updateDocs: boolean;
}

const USAGE = `usage: npx tsx bench/run.ts [--quick] [--rounds N] [--duration S] [--connections 16,64]
       [--replicas 1,2,4] [--headline N] [--no-images] [--no-profile] [--out DIR]
       [--ours-config KEY=VALUE]... [--ours-env KEY=VALUE]...`;

function parseOptions(argv: string[]): Options {
    const quick = argv.includes("--quick");
    const options: Options = {
        quick,
        rounds: quick ? 1 : 3,
        durationSeconds: quick ? 1 : 4,
        connections: quick ? [16] : [16, 64],
        replicas: quick ? [1] : [1, 2, 4],
        headline: quick ? 1 : 2,
        tutorialReplicas: quick ? 1 : 2,
        images: !quick,
        profile: !quick,
        out: "",
        oursConfig: {},
        oursEnv: {},
        updateDocs: false,
    };
    const numbers = (value: string) => value.split(",").map((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new Error(`not a positive whole number: ${v}\n${USAGE}`);
        return n;
    });
    const pair = (value: string) => {
        const at = value.indexOf("=");
        if (at < 1) throw new Error(`expected KEY=VALUE, got ${value}\n${USAGE}`);
        return [value.slice(0, at), value.slice(at + 1)] as const;
    };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const next = () => {
            const value = argv[++i];
            if (value === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
            return value;
        };
        if (arg === "--quick") continue;
        else if (arg === "--rounds") options.rounds = numbers(next())[0];
        else if (arg === "--duration") options.durationSeconds = numbers(next())[0];
        else if (arg === "--connections") options.connections = numbers(next());
        else if (arg === "--replicas") options.replicas = numbers(next());
        else if (arg === "--headline") options.headline = numbers(next())[0];
        else if (arg === "--no-images") options.images = false;
        else if (arg === "--no-profile") options.profile = false;
        else if (arg === "--out") options.out = path.resolve(next());
        else if (arg === "--ours-config") {
            const [key, value] = pair(next());
            options.oursConfig[key] = value;
        } else if (arg === "--ours-env") {
            const [key, value] = pair(next());
            options.oursEnv[key] = value;
        } else if (arg === "--help" || arg === "-h") {
            console.log(USAGE);
            process.exit(0);
        } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
    }
    if (!options.replicas.includes(options.headline)) options.replicas = [...options.replicas, options.headline].sort((a, b) => a - b);
    options.tutorialReplicas = options.headline;
    const experimental = Object.keys(options.oursConfig).length + Object.keys(options.oursEnv).length > 0;
    if (!options.out) options.out = quick || experimental ? fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-bench-")) : RESULTS_DIR;
    // Only a full, unmodified run into bench/results refreshes BENCHMARKS.md.
    options.updateDocs = !quick && !experimental && options.out === RESULTS_DIR;
    return options;
}

const log = (message: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);

function commandOutput(command: string, args: string[]): string {
    const result = spawnSync(command, args, { encoding: "utf8" });
    return `${result.stdout ?? ""}${result.stderr ?? ""}`.trim();
}

function machineInfo(): Record<string, string | number> {
    const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
    const gitHead = commandOutput("git", ["-C", PROJECT_ROOT, "rev-parse", "--short", "HEAD"]);
    const dirty = commandOutput("git", ["-C", PROJECT_ROOT, "status", "--porcelain", "--", "app", "components", "bench", "test/e2e/harness.ts"]);
    return {
        nproc: os.cpus().length,
        cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown",
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        kernel: os.release(),
        nginx: commandOutput("nginx", ["-v"]).replace("nginx version: ", ""),
        gunicorn: commandOutput(path.join(VENV, "bin", "gunicorn"), ["--version"]).replace(/^gunicorn \(version (.*)\)$/, "$1"),
        python: commandOutput(PYTHON, ["-V"]),
        wrk: commandOutput("wrk", ["-v"]).split("\n")[0].split(" [")[0],
        node: process.version,
        loadAverageAtStart: os.loadavg()[0],
        git: `${gitHead}${dirty ? " (with uncommitted changes)" : ""}`,
    };
}

/** Deterministic shuffle (mulberry32): each round runs the cases in a different order. */
function shuffled<T>(items: T[], seed: number): T[] {
    let state = seed >>> 0;
    const random = () => {
        state = (state + 0x6d2b79f5) >>> 0;
        let t = state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
}

// ---------------------------------------------------------------- start-up and memory

/** The environment the harness gives a replica (the stack's appEnvironment, loopback bind, local models). */
function oursReplicaEnv(port: number, modelDir: string, options: Options): NodeJS.ProcessEnv {
    const config: Record<string, unknown> = { ...BENCH_CONFIG, ...options.oursConfig };
    const settings = parseSettings((key) => config[key]);
    return {
        ...hostReplicaEnv(settings, { port, name: "bench-startup", modelDir, pythonPath: [path.join(PROJECT_ROOT, "app")] }),
        ...options.oursEnv,
    };
}

/** Polls until the probe answers 200; returns the milliseconds since `since`. */
async function timeUntilReady(since: bigint, probe: () => Promise<number>, exited: () => boolean, timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (exited()) throw new Error("the process exited before it was ready");
        try {
            if ((await probe()) === 200) return Number(process.hrtime.bigint() - since) / 1e6;
        } catch {
            /* not listening yet */
        }
        await sleep(5);
    }
    throw new Error("not ready in time");
}

async function warmAndMeasure(pgid: number, url: string): Promise<MemoryResult> {
    // A short load, so that every worker has served requests (imports done, caches filled).
    await runLoad({ url, connections: 16, threads: 2, durationSeconds: 2, body: CLASSIFIER_BODY, appGroups: [pgid], proxyGroups: [] });
    await sleep(500);
    const memory = memoryOfGroup(pgid);
    // The Gunicorn master and its workers: every process of the group but the master.
    return { workers: memory.processes - 1, processes: memory.processes, pssMiB: memory.pssKiB / 1024, rssMiB: memory.rssKiB / 1024, privateMiB: memory.privateKiB / 1024 };
}

async function measureStartupAndMemory(options: Options, modelDir: string, tutorialModels: string, work: string) {
    const repeats = options.quick ? 1 : 5;
    const ours: number[] = [];
    let oursMemory: MemoryResult | undefined;
    for (let i = 0; i < repeats; i++) {
        const port = await freePort();
        const logFile = path.join(work, `startup-ours-${i}.log`);
        const started = process.hrtime.bigint();
        const child = startGroup(path.join(VENV, "bin", "gunicorn"), ["-c", path.join(PROJECT_ROOT, "app", "gunicorn.conf.py"), "mlapi.wsgi:app"], {
            cwd: work,
            env: oursReplicaEnv(port, modelDir, options),
            logFile,
        });
        try {
            const ms = await timeUntilReady(started, async () => (await request(`http://127.0.0.1:${port}/api/health`, { timeoutMs: 1000 })).status, () => child.exitCode !== null);
            ours.push(ms);
            log(`ours: spawn -> first 200 on /api/health in ${ms.toFixed(0)} ms`);
            if (i === repeats - 1) {
                oursMemory = await warmAndMeasure(child.pid!, `http://127.0.0.1:${port}/${CLASSIFIER_PATH}`);
                log(`ours: ${oursMemory.processes} processes (${oursMemory.workers} workers): PSS ${oursMemory.pssMiB.toFixed(1)} MiB, RSS summed ${oursMemory.rssMiB.toFixed(1)} MiB`);
            }
        } finally {
            await stopGroup(child, "SIGTERM");
        }
    }
    const tutorial: number[] = [];
    let tutorialMemory: MemoryResult | undefined;
    // The smoke run skips the tutorial's slow start (5 workers importing pandas and scikit-learn).
    for (let i = 0; i < (options.quick ? 0 : 3); i++) {
        const port = await freePort();
        const logFile = path.join(work, `startup-tutorial-${i}.log`);
        const started = process.hrtime.bigint();
        const child = startTutorialReplica({ port, modelDir: tutorialModels, logFile, cwd: work });
        const url = `http://127.0.0.1:${port}/${CLASSIFIER_PATH}`;
        try {
            const probe = async () => (await request(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: CLASSIFIER_BODY, timeoutMs: 5000 })).status;
            const ms = await timeUntilReady(started, probe, () => child.exitCode !== null);
            tutorial.push(ms);
            log(`tutorial: spawn -> first 200 prediction in ${ms.toFixed(0)} ms`);
            if (i === 0) {
                // Every sync worker imports pandas and scikit-learn itself: wait until all have.
                await sleep(4000);
                tutorialMemory = await warmAndMeasure(child.pid!, url);
                log(`tutorial: ${tutorialMemory.processes} processes: PSS ${tutorialMemory.pssMiB.toFixed(1)} MiB, RSS summed ${tutorialMemory.rssMiB.toFixed(1)} MiB`);
            }
        } finally {
            await stopGroup(child, "SIGTERM");
        }
    }
    const summary = (samples: number[], readiness: string): StartupResult => ({ samplesMs: samples, medianMs: median(samples), maxMs: Math.max(...samples), readiness });
    return {
        startup: {
            ours: summary(ours, "GET /api/health"),
            tutorial: tutorial.length ? summary(tutorial, "a POST prediction (the tutorial has no health endpoint)") : undefined,
        },
        memory: oursMemory && tutorialMemory ? { ours: oursMemory, tutorial: tutorialMemory } : undefined,
    };
}

// ---------------------------------------------------------------- load

interface LoadTarget {
    key: string;
    httpsUrl: string;
    directUrl: string;
    ports: number[];
    appGroups: number[];
    proxyGroups: number[];
    stop(): Promise<void>;
}

function nginxPid(topology: Topology): number {
    return Number(fs.readFileSync(path.join(topology.dir, "nginx.pid"), "utf8").trim());
}

async function startOurs(replicas: number, constant: boolean, options: Options): Promise<LoadTarget> {
    const wrapperEnv: Record<string, string> = constant ? { PYTHONPATH: [path.join(PROJECT_ROOT, "app"), path.join(BENCH_DIR, "wsgi")].join(":") } : {};
    const topology = await startTopology({
        replicas,
        config: { ...BENCH_CONFIG, ...options.oursConfig },
        wsgiApp: constant ? "bench_constant:app" : undefined,
        replicaEnv: () => ({ ...wrapperEnv, ...options.oursEnv }),
    });
    removeOnExit(topology.dir); // the harness removes it on stop(), not when the bench is interrupted
    const route = constant ? CONSTANT_PATH : CLASSIFIER_PATH;
    return {
        key: `${constant ? "constant" : "ours"}-${replicas}`,
        httpsUrl: `${topology.httpsUrl}${route}`,
        directUrl: `${topology.replicas[0].url}/${route}`,
        ports: topology.replicas.map((r) => r.port),
        appGroups: topology.replicas.map((r) => r.process.pid!),
        proxyGroups: [nginxPid(topology)],
        stop: () => topology.stop(),
    };
}

async function startTutorial(replicas: number, tutorialModels: string): Promise<LoadTarget> {
    const stack: TutorialStack = await startTutorialStack({ replicas, modelDir: tutorialModels });
    return {
        key: `tutorial-${replicas}`,
        httpsUrl: `${stack.httpsUrl}${CLASSIFIER_PATH}`,
        directUrl: `${stack.replicas[0].url}/${CLASSIFIER_PATH}`,
        ports: stack.replicas.map((r) => r.port),
        appGroups: stack.replicas.map((r) => r.process.pid!),
        proxyGroups: [stack.nginx.pid!],
        stop: () => stack.stop(),
    };
}

function caseSpecs(options: Options): CaseSpec[] {
    const specs: CaseSpec[] = [];
    const add = (stack: StackName, pathName: "https" | "direct", replicas: number, connections: number) =>
        specs.push({ id: `${stack}-${pathName}-r${replicas}-c${connections}`, stack, path: pathName, replicas, connections });
    for (const connections of options.connections) {
        for (const replicas of options.replicas) {
            add("ours", "https", replicas, connections);
            add("ours", "direct", replicas, connections);
        }
        add("constant", "https", options.headline, connections);
        add("tutorial", "https", options.tutorialReplicas, connections);
        add("tutorial", "direct", options.tutorialReplicas, connections);
    }
    return specs;
}

const wrkThreadsFor = (spec: CaseSpec) => (spec.path === "direct" ? Math.max(2, spec.replicas) : 2);

async function runCase(spec: CaseSpec, target: LoadTarget, durationSeconds: number) {
    const direct = spec.path === "direct";
    return runLoad({
        url: direct ? target.directUrl : target.httpsUrl,
        ports: direct && target.ports.length > 1 ? target.ports : undefined,
        connections: spec.connections,
        threads: wrkThreadsFor(spec),
        durationSeconds,
        body: CLASSIFIER_BODY,
        appGroups: target.appGroups,
        proxyGroups: direct ? [] : target.proxyGroups,
    });
}

// ---------------------------------------------------------------- profile

async function profileUnderLoad(target: LoadTarget, options: Options, outDir: string) {
    const replicaPid = target.appGroups[0];
    const rawFile = path.join(outDir, "latest-profile.raw.txt");
    const compactFile = path.join(outDir, "latest-profile.txt");
    const duration = 6;
    const pyspy = startGroup(
        path.join(VENV, "bin", "py-spy"),
        ["record", "--pid", String(replicaPid), "--subprocesses", "--gil", "--nonblocking", "--rate", "200", "--duration", String(duration + 2), "--format", "raw", "--output", rawFile],
        { logFile: path.join(outDir, "latest-profile.log") },
    );
    await sleep(1000); // py-spy attaches to the master and its workers
    const load = await runLoad({
        url: target.httpsUrl,
        connections: options.connections[options.connections.length - 1],
        threads: 2,
        durationSeconds: duration,
        body: CLASSIFIER_BODY,
        appGroups: target.appGroups,
        proxyGroups: target.proxyGroups,
    });
    await new Promise<void>((resolve) => (pyspy.exitCode !== null ? resolve() : pyspy.once("exit", () => resolve())));
    fs.rmSync(path.join(outDir, "latest-profile.log"), { force: true });
    if (!fs.existsSync(rawFile)) throw new Error("py-spy wrote no profile (is ptrace allowed?)");
    const summary = summariseRawProfile(rawFile);
    compactRawProfile(rawFile, compactFile);
    fs.rmSync(rawFile, { force: true });
    const pct = (share: number) => `${(share * 100).toFixed(0)}%`;
    const bucket = (prefix: string) => summary.buckets.filter((b) => b.name.startsWith(prefix)).reduce((sum, b) => sum + b.share, 0);
    const parts = [
        { what: "Gunicorn (HTTP parsing, worker loop)", share: bucket("Gunicorn HTTP") },
        { what: "gevent (event loop, sockets)", share: bucket("gevent") },
        { what: "Gunicorn's access log line", share: bucket("Gunicorn access log") },
        { what: "Flask + Werkzeug", share: bucket("Flask") + bucket("Werkzeug") },
        { what: "mlapi's own work (JSON body, validation, features, tree walk)", share: summary.mlapiWorkShare },
    ].sort((a, b) => b.share - a.share);
    const finding =
        `of the Python time of the workers (GIL-holding samples at ${load.rps.toFixed(0)} req/s), ${parts.map((p) => `${p.what} ${pct(p.share)}`).join(", ")}; ` +
        `the tree walk and validation alone are ${pct(bucket("mlapi: validation"))}. ` +
        `The largest part is ${parts[0].what}, not the prediction.`;
    return { replica: "replica 1 of the headline topology", samples: summary.samples, durationSeconds: duration, buckets: summary.buckets, topSelf: summary.topSelf, topInclusive: summary.topInclusive, finding, file: path.relative(PROJECT_ROOT, compactFile) };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
    const options = parseOptions(process.argv.slice(2));
    const startedAt = new Date();
    const phases: Record<string, number> = {};
    const phase = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
        const start = Date.now();
        log(`=== ${name}`);
        try {
            return await body();
        } finally {
            phases[name] = (Date.now() - start) / 1000;
        }
    };
    fs.mkdirSync(options.out, { recursive: true });
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-bench-work-"));
    removeOnExit(work);
    log(`${options.quick ? "quick smoke run" : "full run"}: ${options.rounds} round(s) x ${options.durationSeconds} s per case; results to ${options.out}`);
    const machine = machineInfo();
    const load = os.loadavg()[0];
    if (load > 0.5) log(`note: load average ${load.toFixed(2)} at start: other work on the machine adds noise (see otherCores per run)`);

    const modelDir = ensureModels();
    const tutorialModels = path.join(work, "tutorial-models");
    await phase("tutorial models", async () => {
        const run = await runToEnd(PYTHON, [path.join(BENCH_DIR, "tutorial", "train_models.py"), "--out", tutorialModels, "--model-dir", modelDir, "--verify-records", options.quick ? "20" : "300"], { timeoutMs: 120_000 });
        if (run.code !== 0) throw new Error(`training the tutorial's models failed:\n${run.stdout}${run.stderr}`);
        log(run.stderr.trim());
    });

    const { startup, memory } = await phase("start-up and memory", () => measureStartupAndMemory(options, modelDir, tutorialModels, work));

    const specs = caseSpecs(options);
    const targets = new Map<string, LoadTarget>();
    const cases: CaseResult[] = [];
    const oursWorkers: Record<number, number> = {};
    let profile: Results["profile"];
    try {
        await phase("start topologies", async () => {
            for (const replicas of options.replicas) targets.set(`ours-${replicas}`, await startOurs(replicas, false, options));
            targets.set(`constant-${options.headline}`, await startOurs(options.headline, true, options));
            targets.set(`tutorial-${options.tutorialReplicas}`, await startTutorial(options.tutorialReplicas, tutorialModels));
            for (const target of targets.values()) {
                await runLoad({ url: target.httpsUrl, connections: 16, threads: 2, durationSeconds: 1, body: CLASSIFIER_BODY, appGroups: target.appGroups, proxyGroups: target.proxyGroups });
            }
            // Gunicorn processes per replica as app/gunicorn.conf.py sized them: the group minus its master.
            for (const replicas of options.replicas) oursWorkers[replicas] = pidsOfGroups([targets.get(`ours-${replicas}`)!.appGroups[0]]).length - 1;
            log(`started: ${[...targets.keys()].join(", ")} (warmed up; Gunicorn workers per replica of ours: ${JSON.stringify(oursWorkers)})`);
        });

        const runs = new Map<string, RunRecord[]>(specs.map((s) => [s.id, []]));
        await phase("interleaved load runs", async () => {
            let order = 0;
            const total = options.rounds * specs.length;
            for (let round = 1; round <= options.rounds; round++) {
                for (const spec of shuffled(specs, round)) {
                    const target = targets.get(`${spec.stack}-${spec.replicas}`)!;
                    const result = await runCase(spec, target, options.durationSeconds);
                    order += 1;
                    const failures = result.errors.status + result.errors.timeout;
                    const valid = result.requests > 0 && failures <= result.requests * 0.001;
                    runs.get(spec.id)!.push({ ...result, round, order, valid });
                    log(
                        `[${order}/${total}] ${spec.id}: ${result.rps.toFixed(0)} req/s, p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms` +
                            `; cores app ${result.cpu.appCores.toFixed(2)} nginx ${result.cpu.proxyCores.toFixed(2)} wrk ${result.cpu.wrkCores.toFixed(2)} other ${result.cpu.otherCores.toFixed(2)}` +
                            (failures || !valid ? `; ${failures} failed requests${valid ? "" : " (run INVALID)"}` : ""),
                    );
                    await sleep(300);
                }
            }
        });
        for (const spec of specs) cases.push(summarise(spec, caseLabel(spec), wrkThreadsFor(spec), runs.get(spec.id)!));

        if (options.profile) {
            profile = await phase("profile (py-spy)", async () => {
                try {
                    return await profileUnderLoad(targets.get(`ours-${options.headline}`)!, options, options.out);
                } catch (error) {
                    log(`profile skipped: ${error}`);
                    return { skipped: String(error) };
                }
            });
        }
    } finally {
        await phase("stop topologies", async () => {
            for (const target of targets.values()) await target.stop();
        });
    }

    const inProcess = await phase("in-process prediction time", async () => {
        const ours = await runToEnd(PYTHON, [path.join(PROJECT_ROOT, "app", "tools", "time_prediction.py"), "--model-dir", modelDir, "--number", options.quick ? "200" : "20000"], { timeoutMs: 300_000 });
        const tutorial = await runToEnd(PYTHON, [path.join(BENCH_DIR, "tutorial", "time_prediction.py"), "--model-dir", tutorialModels, "--number", options.quick ? "5" : "100"], { timeoutMs: 300_000 });
        if (ours.code !== 0 || tutorial.code !== 0) throw new Error(`in-process timing failed:\n${ours.stderr}\n${tutorial.stderr}`);
        const lines = (text: string) => text.trim().split("\n").filter(Boolean);
        for (const line of [...lines(ours.stdout), ...lines(tutorial.stdout)]) log(line);
        return { ours: lines(ours.stdout), tutorial: lines(tutorial.stdout) };
    });

    let images: Results["images"] = { skipped: options.quick ? "quick run" : "--no-images" };
    let containers: Results["memory"]["containers"];
    if (options.images) {
        const measured = await phase("images and containers (docker)", () => measureImages({ work, tutorialModels, log }));
        images = measured.images;
        containers = measured.containers;
    }

    const finishedAt = new Date();
    const results: Results = {
        format: "mlapi.bench/1",
        mode: options.quick ? "quick" : "full",
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString().replace(/\.\d+Z$/, "Z"),
        totalSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
        command: `npx tsx bench/run.ts ${process.argv.slice(2).join(" ")}`.trim(),
        machine,
        settings: {
            rounds: options.rounds,
            durationSeconds: options.durationSeconds,
            connections: options.connections,
            replicas: options.replicas,
            headlineReplicas: options.headline,
            tutorialReplicas: options.tutorialReplicas,
            wrkThreads: 2,
            wrkTimeoutSeconds: 5,
            body: CLASSIFIER_BODY,
            endpoint: `/${CLASSIFIER_PATH}`,
            oursStackConfig: { ...BENCH_CONFIG, ...options.oursConfig },
            oursReplicaEnv: options.oursEnv,
            // Gunicorn processes per replica of ours, by replica count, as counted while they ran.
            oursWorkersPerReplica: oursWorkers,
            tutorialWorkersPerReplica: TUTORIAL_WORKERS,
        },
        cases,
        startup,
        memory: { host: memory, containers },
        images,
        inProcess,
        profile,
        targets: [],
        phases,
    };
    results.targets = evaluateTargets(results, options.headline);
    writeOutputs(results, options);
    fs.rmSync(work, { recursive: true, force: true });
    log(`done in ${results.totalSeconds.toFixed(0)} s`);
}

function writeOutputs(results: Results, options: Options): void {
    const json = path.join(options.out, "latest.json");
    const md = path.join(options.out, "latest.md");
    const png = path.join(options.out, "latest.png");
    fs.writeFileSync(json, JSON.stringify(results, null, 2) + "\n");
    const markdown = renderMarkdown(results);
    fs.writeFileSync(md, markdown);
    const chart = spawnSync(PYTHON, [path.join(BENCH_DIR, "chart.py"), json, png], { encoding: "utf8" });
    if (chart.status !== 0) throw new Error(`chart failed: ${chart.stderr}`);
    console.log(`\n${markdown}`);
    for (const t of results.targets) console.log(`${t.pass === null ? "n/a " : t.pass ? "PASS" : "MISS"}  ${t.id}: ${t.detail}`);
    log(`wrote ${json}, ${md}, ${png}`);
    if (options.updateDocs) updateBenchmarksDoc(markdown);
}

const DOC_START = "<!-- bench:latest:start -->";
const DOC_END = "<!-- bench:latest:end -->";

/** Replaces the results section of BENCHMARKS.md (between the markers) with the latest run. */
function updateBenchmarksDoc(markdown: string): void {
    const doc = path.join(PROJECT_ROOT, "BENCHMARKS.md");
    if (!fs.existsSync(doc)) return;
    const text = fs.readFileSync(doc, "utf8");
    const start = text.indexOf(DOC_START);
    const end = text.indexOf(DOC_END);
    if (start < 0 || end < start) {
        log("BENCHMARKS.md has no results markers: not updated");
        return;
    }
    const section = `${DOC_START}\n<!-- Written by bench/run.ts from bench/results/latest.md; do not edit by hand. -->\n\n${markdown}\n![Benchmark chart](bench/results/latest.png)\n\n`;
    fs.writeFileSync(doc, text.slice(0, start) + section + text.slice(end));
    log("updated the results section of BENCHMARKS.md");
}

main().catch((error) => {
    console.error(`[bench] failed: ${error instanceof Error ? error.stack : error}`);
    process.exit(1);
});

