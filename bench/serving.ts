// Serving your own models: throughput and latency of several model kinds
// through the full HTTPS stack, and the stack against MLServer 1.7 on the
// same decision tree. Results go to BENCHMARKS.md ("Serving your own models").
//
//   npx tsx bench/serving.ts [--part models|mlserver|all] [--rounds 3] [--duration 10]
//                            [--connections 16,64] [--examples DIR] [--out DIR] [--quick]
//
// --part models: one topology of the stack (test/e2e/harness.ts: the rendered
//   Nginx config, HTTPS, the real app, 2 replicas, the bench's raised rate
//   limit as in bench/run.ts) serving a repository made of the built-in
//   decision-tree-classifier and four models of the example repository
//   (app/training/examples.py: random forest, Pipeline, XGBoost, LightGBM);
//   wrk POSTs each card's example record to /api/v1/models/<name>/predictions.
// --part mlserver: the stack serving the built-in repository (models/), on
//   /v2/models/decision-tree-classifier/infer (Open Inference Protocol) and on
//   /api/v1/models/decision-tree-classifier/predictions, over HTTPS through
//   Nginx; and MLServer 1.7.1 (its venv: bench/requirements-mlserver.txt,
//   MLSERVER_VENV or /opt/mlserver-venv) serving the same tree as a
//   scikit-learn model (bench/mlserver_model.py) over plain HTTP, with its
//   defaults and with tuned settings (no debug access log, no metrics, no
//   gzip; parallel_workers 0, 1 and 2). MLServer's request is one FP64 tensor
//   [1, 3]; the stack's /v2 request one tensor per field, as its metadata says.
//
// Every round runs every case once, in a shuffled order (interleaved), wrk -t 2
// (-t 1 at 1 connection), --latency, timeout 5 s, bench/post.lua; the
// figures are the medians over the rounds. Every process it starts is
// stopped at the end, on failure and on Ctrl-C.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { freePort, PROJECT_ROOT, startTopology, Topology, VENV } from "../test/e2e/harness";
import { request } from "../test/support/http";
import { removeOnExit, runToEnd, startGroup, stopGroup, waitFor } from "../test/support/processes";
import { LoadResult, runLoad } from "./lib/wrk";

const BENCH_DIR = __dirname;
const PYTHON = path.join(VENV, "bin", "python");
const MLSERVER_VENV = process.env.MLSERVER_VENV ?? "/opt/mlserver-venv";
const BENCH_CONFIG = { rateLimitPerSecond: "1000000", rateLimitBurst: "1000000" };
const CLASSIFIER = "decision-tree-classifier";
const EXAMPLE_MODELS = ["churn-random-forest", "churn-pipeline", "churn-xgboost", "profit-lightgbm"];
const MODEL_KINDS: Record<string, string> = {
    "decision-tree-classifier": "tree (built-in)",
    "churn-random-forest": "random forest, 25 trees",
    "churn-pipeline": "Pipeline (ColumnTransformer + LogisticRegression)",
    "churn-xgboost": "XGBoost, 30 trees",
    "profit-lightgbm": "LightGBM regressor, 40 trees",
};
const SEED_RECORD = { monthly_fee: 60, customer_age: 30, support_calls: 1 };
const OURS_V2_BODY = JSON.stringify({
    inputs: [
        { name: "monthly_fee", shape: [1, 1], datatype: "FP64", data: [60] },
        { name: "customer_age", shape: [1, 1], datatype: "INT64", data: [30] },
        { name: "support_calls", shape: [1, 1], datatype: "INT64", data: [1] },
    ],
});
const MLSERVER_BODY = JSON.stringify({ inputs: [{ name: "X", shape: [1, 3], datatype: "FP64", data: [60, 30, 1] }] });
const TUNED = { debug: false, metrics_endpoint: null, gzip_enabled: false };
const MLSERVER_VARIANTS: { id: string; label: string; settings: Record<string, unknown> }[] = [
    { id: "mls-default", label: "MLServer, defaults (parallel_workers 1, debug access log, metrics)", settings: {} },
    { id: "mls-pw0", label: "MLServer, tuned, parallel_workers 0", settings: { ...TUNED, parallel_workers: 0 } },
    { id: "mls-pw1", label: "MLServer, tuned, parallel_workers 1", settings: { ...TUNED, parallel_workers: 1 } },
    { id: "mls-pw2", label: "MLServer, tuned, parallel_workers 2", settings: { ...TUNED, parallel_workers: 2 } },
];

interface Options {
    part: "models" | "mlserver" | "all";
    rounds: number;
    durationSeconds: number;
    connections: number[];
    examples: string;
    out: string;
}

const USAGE = "usage: npx tsx bench/serving.ts [--part models|mlserver|all] [--rounds N] [--duration S] [--connections 16,64] [--examples DIR] [--out DIR] [--quick]";

function parseOptions(argv: string[]): Options {
    const quick = argv.includes("--quick");
    const options: Options = {
        part: "all",
        rounds: quick ? 1 : 3,
        durationSeconds: quick ? 1 : 10,
        connections: quick ? [1] : [16, 64],
        examples: "",
        out: "",
    };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const next = () => {
            const value = argv[++i];
            if (value === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
            return value;
        };
        const whole = (value: string) => {
            const n = Number(value);
            if (!Number.isInteger(n) || n < 1) throw new Error(`not a positive whole number: ${value}\n${USAGE}`);
            return n;
        };
        if (arg === "--quick") continue;
        else if (arg === "--part") {
            const part = next();
            if (part !== "models" && part !== "mlserver" && part !== "all") throw new Error(USAGE);
            options.part = part;
        } else if (arg === "--rounds") options.rounds = whole(next());
        else if (arg === "--duration") options.durationSeconds = whole(next());
        else if (arg === "--connections") options.connections = next().split(",").map(whole);
        else if (arg === "--examples") options.examples = path.resolve(next());
        else if (arg === "--out") options.out = path.resolve(next());
        else throw new Error(`unknown argument ${arg}\n${USAGE}`);
    }
    if (!options.out) options.out = quick ? fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-serving-")) : path.join(BENCH_DIR, "results");
    return options;
}

const log = (message: string) => console.log(`[serving ${new Date().toISOString().slice(11, 19)}] ${message}`);

/** Deterministic shuffle (mulberry32), as bench/run.ts. */
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

const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

// ---------------------------------------------------------------- targets

interface Target {
    id: string;
    label: string;
    transport: string;
    url: string;
    body: string;
    appGroups: number[];
    proxyGroups: number[];
}

interface Run {
    target: string;
    connections: number;
    round: number;
    result: LoadResult;
}

function nginxPid(topology: Topology): number {
    return Number(fs.readFileSync(path.join(topology.dir, "nginx.pid"), "utf8").trim());
}

async function startOurs(modelDir: string | undefined): Promise<Topology> {
    const topology = await startTopology({
        config: BENCH_CONFIG,
        replicaEnv: (): Record<string, string> => (modelDir ? { MLAPI_MODEL_DIR: modelDir } : {}),
    });
    removeOnExit(topology.dir);
    return topology;
}

function oursTarget(topology: Topology, id: string, label: string, urlPath: string, body: string): Target {
    return {
        id,
        label,
        transport: "HTTPS via Nginx",
        url: `${topology.httpsUrl}${urlPath}`,
        body,
        appGroups: topology.replicas.map((r) => r.process.pid!),
        proxyGroups: [nginxPid(topology)],
    };
}

/** A POST that must answer 200; returns the parsed answer. */
async function post(url: string, body: string, ca?: string): Promise<any> {
    const response = await request(url, { method: "POST", body, headers: { "Content-Type": "application/json" }, ca, timeoutMs: 10_000 });
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${response.body.slice(0, 500)}`);
    return response.json();
}

interface MlServer {
    target: Target;
    stop(): Promise<void>;
}

async function startMlServer(variant: (typeof MLSERVER_VARIANTS)[number], modelFolder: string, scratch: string): Promise<MlServer> {
    const dir = path.join(scratch, variant.id);
    fs.mkdirSync(path.join(dir, CLASSIFIER), { recursive: true });
    for (const file of fs.readdirSync(modelFolder)) fs.copyFileSync(path.join(modelFolder, file), path.join(dir, CLASSIFIER, file));
    const [httpPort, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const settings = { host: "127.0.0.1", http_port: httpPort, grpc_port: grpcPort, metrics_port: metricsPort, ...variant.settings };
    fs.writeFileSync(path.join(dir, "settings.json"), JSON.stringify(settings, null, 2));
    const logFile = path.join(scratch, `${variant.id}.log`);
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${path.join(MLSERVER_VENV, "bin")}:${process.env.PATH}` };
    delete env.PYTHONPATH;
    const child = startGroup(path.join(MLSERVER_VENV, "bin", "mlserver"), ["start", dir], { cwd: dir, env, logFile });
    const base = `http://127.0.0.1:${httpPort}`;
    await waitFor(`${variant.id} to be ready`, async () => {
        if (child.exitCode !== null) throw new Error(`${variant.id} exited:\n${fs.readFileSync(logFile, "utf8").slice(-3000)}`);
        try {
            return (await request(`${base}/v2/models/${CLASSIFIER}/ready`, { timeoutMs: 1000 })).status === 200 ? true : undefined;
        } catch {
            return undefined;
        }
    }, 120_000, 250);
    return {
        target: {
            id: variant.id,
            label: variant.label,
            transport: "HTTP direct",
            url: `${base}/v2/models/${CLASSIFIER}/infer`,
            body: MLSERVER_BODY,
            appGroups: [child.pid!],
            proxyGroups: [],
        },
        stop: () => stopGroup(child, "SIGTERM", 10_000),
    };
}

// ---------------------------------------------------------------- load

async function measure(targets: Target[], options: Options): Promise<Run[]> {
    const warmConnections = Math.min(4, Math.max(...options.connections));
    const warmSeconds = Math.min(2, options.durationSeconds);
    log(`warm-up: ${targets.length} targets, ${warmSeconds} s each at ${warmConnections} connections`);
    for (const target of targets) {
        await runLoad({ url: target.url, connections: warmConnections, threads: Math.min(2, warmConnections), durationSeconds: warmSeconds, body: target.body, appGroups: target.appGroups, proxyGroups: target.proxyGroups });
    }
    const runs: Run[] = [];
    const cases = targets.flatMap((target) => options.connections.map((connections) => ({ target, connections })));
    for (let round = 1; round <= options.rounds; round++) {
        for (const { target, connections } of shuffled(cases, 1000 + round)) {
            const result = await runLoad({
                url: target.url,
                connections,
                threads: Math.min(2, connections),
                durationSeconds: options.durationSeconds,
                body: target.body,
                appGroups: target.appGroups,
                proxyGroups: target.proxyGroups,
            });
            runs.push({ target: target.id, connections, round, result });
            const errors = Object.values(result.errors).reduce((a, b) => a + b, 0);
            log(`round ${round} ${target.id} c${connections}: ${result.rps.toFixed(0)} req/s, p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms, errors ${errors}`);
        }
    }
    return runs;
}

interface Row {
    target: Target;
    connections: number;
    rps: number;
    rpsMin: number;
    rpsMax: number;
    p50: number;
    p99: number;
    appUs: number;
    proxyUs: number;
    errors: number;
    requests: number;
    perRound: Map<number, number>;
}

function summarise(targets: Target[], runs: Run[], options: Options): Row[] {
    const rows: Row[] = [];
    for (const target of targets) {
        for (const connections of options.connections) {
            const mine = runs.filter((r) => r.target === target.id && r.connections === connections);
            const rps = mine.map((r) => r.result.rps);
            rows.push({
                target,
                connections,
                rps: median(rps),
                rpsMin: Math.min(...rps),
                rpsMax: Math.max(...rps),
                p50: median(mine.map((r) => r.result.latencyMs.p50)),
                p99: median(mine.map((r) => r.result.latencyMs.p99)),
                appUs: median(mine.map((r) => r.result.cpu.appUsPerRequest)),
                proxyUs: median(mine.map((r) => r.result.cpu.proxyUsPerRequest)),
                errors: mine.reduce((sum, r) => sum + Object.values(r.result.errors).reduce((a, b) => a + b, 0), 0),
                requests: mine.reduce((sum, r) => sum + r.result.requests, 0),
                perRound: new Map(mine.map((r) => [r.round, r.result.rps])),
            });
        }
    }
    return rows;
}

function table(rows: Row[]): string[] {
    const lines = [
        "| case | transport | conns | req/s (min-max) | p50 ms | p99 ms | app CPU us/req | Nginx CPU us/req | errors / requests |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ];
    for (const r of rows) {
        lines.push(`| ${r.target.label} | ${r.target.transport} | ${r.connections} | ${r.rps.toFixed(0)} (${r.rpsMin.toFixed(0)}-${r.rpsMax.toFixed(0)}) | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.appUs.toFixed(0)} | ${r.target.proxyGroups.length ? r.proxyUs.toFixed(0) : "-"} | ${r.errors} / ${r.requests} |`);
    }
    return lines;
}

function ratioLines(rows: Row[], ours: string[], theirs: string[], options: Options): string[] {
    const lines = ["| ours | MLServer | conns | req/s ratio (per round) | p99 ratio (ours / MLServer) |", "| --- | --- | ---: | --- | ---: |"];
    for (const connections of options.connections) {
        for (const o of ours) {
            for (const t of theirs) {
                const a = rows.find((r) => r.target.id === o && r.connections === connections)!;
                const b = rows.find((r) => r.target.id === t && r.connections === connections)!;
                const perRound = [...a.perRound.keys()].filter((k) => b.perRound.has(k)).map((k) => a.perRound.get(k)! / b.perRound.get(k)!);
                lines.push(`| ${a.target.id} | ${b.target.id} | ${connections} | ${(a.rps / b.rps).toFixed(2)}x (${Math.min(...perRound).toFixed(2)}-${Math.max(...perRound).toFixed(2)}) | ${(a.p99 / b.p99).toFixed(2)} |`);
            }
        }
    }
    return lines;
}

// ---------------------------------------------------------------- parts

function exampleRecord(modelDir: string, name: string): Record<string, unknown> {
    const card = JSON.parse(fs.readFileSync(path.join(modelDir, name, "model.json"), "utf8"));
    return Object.fromEntries(card.inputs.map((field: { name: string; example: unknown }) => [field.name, field.example]));
}

async function ensureExamples(options: Options, scratch: string): Promise<string> {
    if (options.examples) return options.examples;
    const out = path.join(scratch, "examples");
    log("building the example repository (app/training/examples.py)");
    const run = await runToEnd(PYTHON, ["-m", "training.examples", "--out", out], { cwd: path.join(PROJECT_ROOT, "app"), timeoutMs: 600_000 });
    if (run.code !== 0) throw new Error(`training.examples failed:\n${run.stderr.slice(-3000)}`);
    return out;
}

async function partModels(options: Options, scratch: string): Promise<string[]> {
    const examples = await ensureExamples(options, scratch);
    const repository = path.join(scratch, "repository");
    const copy = (from: string, name: string) => fs.cpSync(path.join(from, name), path.join(repository, name), { recursive: true });
    copy(path.join(PROJECT_ROOT, "models"), CLASSIFIER);
    for (const name of EXAMPLE_MODELS) copy(examples, name);
    const names = [CLASSIFIER, ...EXAMPLE_MODELS];
    log(`starting the stack (2 replicas, HTTPS via Nginx) on ${names.join(", ")}`);
    const topology = await startOurs(repository);
    try {
        const targets = names.map((name) => {
            const body = JSON.stringify(name === CLASSIFIER ? SEED_RECORD : exampleRecord(repository, name));
            return oursTarget(topology, name, `${MODEL_KINDS[name]} (\`${name}\`)`, `api/v1/models/${name}/predictions`, body);
        });
        for (const target of targets) {
            const answer = await post(target.url, target.body, topology.tls.trustPem);
            log(`${target.id}: ${target.body} -> ${JSON.stringify(answer)}`);
        }
        const runs = await measure(targets, options);
        const rows = summarise(targets, runs, options);
        fs.writeFileSync(path.join(options.out, "serving-models.json"), JSON.stringify({ options, runs }, null, 1));
        const lines = [
            `Bodies: ${targets.map((t) => `\`${t.id}\` ${t.body}`).join("; ")}.`,
            "",
            ...table(rows),
        ];
        fs.writeFileSync(path.join(options.out, "serving-models.md"), lines.join("\n") + "\n");
        return lines;
    } finally {
        await topology.stop();
    }
}

async function partMlServer(options: Options, scratch: string): Promise<string[]> {
    if (!fs.existsSync(path.join(MLSERVER_VENV, "bin", "mlserver"))) {
        throw new Error(`no MLServer at ${MLSERVER_VENV}: python3.11 -m venv ${MLSERVER_VENV} && ${MLSERVER_VENV}/bin/pip install -r bench/requirements-mlserver.txt`);
    }
    const modelFolder = path.join(scratch, "mlserver-model");
    const made = await runToEnd(PYTHON, [path.join(BENCH_DIR, "mlserver_model.py"), "--out", modelFolder], { timeoutMs: 300_000 });
    if (made.code !== 0) throw new Error(`mlserver_model.py failed:\n${made.stderr.slice(-3000)}`);
    log(made.stdout.trim());
    const servers: MlServer[] = [];
    let topology: Topology | undefined;
    try {
        log("starting the stack (built-in models/, 2 replicas, HTTPS via Nginx)");
        topology = await startOurs(undefined);
        const ours = [
            oursTarget(topology, "ours-v2", "ours: /v2/models/decision-tree-classifier/infer", `v2/models/${CLASSIFIER}/infer`, OURS_V2_BODY),
            oursTarget(topology, "ours-v1", "ours: /api/v1/models/decision-tree-classifier/predictions", `api/v1/models/${CLASSIFIER}/predictions`, JSON.stringify(SEED_RECORD)),
        ];
        for (const variant of MLSERVER_VARIANTS) {
            log(`starting ${variant.id}: ${JSON.stringify(variant.settings)}`);
            servers.push(await startMlServer(variant, modelFolder, scratch));
        }
        const targets = [...ours, ...servers.map((s) => s.target)];
        // The same prediction from every target.
        const expected = (await post(ours[1].url, ours[1].body, topology.tls.trustPem)).prediction;
        for (const target of targets) {
            const answer = await post(target.url, target.body, topology.tls.trustPem);
            const label = target.id === "ours-v1" ? answer.prediction : answer.outputs[0].data[0];
            log(`${target.id}: ${JSON.stringify(answer)}`);
            if (label !== expected) throw new Error(`${target.id} predicts ${label}, ours ${expected}`);
        }
        const runs = await measure(targets, options);
        const rows = summarise(targets, runs, options);
        fs.writeFileSync(path.join(options.out, "serving-mlserver.json"), JSON.stringify({ options, runs }, null, 1));
        const lines = [
            `Bodies: ours /v2 ${OURS_V2_BODY}; ours /api/v1 ${JSON.stringify(SEED_RECORD)}; MLServer ${MLSERVER_BODY}.`,
            "",
            ...table(rows),
            "",
            ...ratioLines(rows, ours.map((t) => t.id), servers.map((s) => s.target.id), options),
        ];
        fs.writeFileSync(path.join(options.out, "serving-mlserver.md"), lines.join("\n") + "\n");
        return lines;
    } finally {
        for (const server of servers) await server.stop();
        if (topology) await topology.stop();
    }
}

async function main(): Promise<void> {
    const options = parseOptions(process.argv.slice(2));
    fs.mkdirSync(options.out, { recursive: true });
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-serving-work-"));
    removeOnExit(scratch);
    const started = new Date();
    const output: string[] = [`Run of ${started.toISOString().slice(0, 19)}Z: ${options.rounds} interleaved rounds of ${options.durationSeconds} s per case, connections ${options.connections.join(", ")}; ${os.cpus().length} CPUs (${os.cpus()[0].model}), load average at start ${os.loadavg()[0].toFixed(2)}.`, ""];
    if (options.part !== "mlserver") output.push(...(await partModels(options, scratch)), "");
    if (options.part !== "models") output.push(...(await partMlServer(options, scratch)), "");
    output.push(`Finished ${new Date().toISOString().slice(0, 19)}Z.`);
    console.log(output.join("\n"));
    fs.rmSync(scratch, { recursive: true, force: true });
    log(`results in ${options.out}`);
}

main().catch((error) => {
    console.error(error);
    process.exit(1);
});
