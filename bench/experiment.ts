// Tries candidate settings of our stack side by side, without editing app/ or
// components/: each variant is the e2e topology started with other stack
// config values or replica environment (Gunicorn reads GUNICORN_CMD_ARGS
// after app/gunicorn.conf.py, so any Gunicorn setting can be overridden).
// Variants are loaded interleaved, like bench/run.ts's cases.
//
//   npx tsx bench/experiment.ts --variant default \
//       --variant nginx-auto --set proxyWorkers=0 \
//       --variant sync --env "GUNICORN_CMD_ARGS=--worker-class sync" \
//       --variant keepalive8 --nginx "keepalive 32;=>keepalive 8;" \
//       [--replicas 2] [--connections 16,64] [--rounds 3] [--duration 5] [--profile] [--direct]
//
// Prints one table and writes the runs as JSON into a temp dir.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PROJECT_ROOT, startTopology, Topology, VENV } from "../test/e2e/harness";
import { summariseRawProfile } from "./lib/profile";
import { removeOnExit, sleep, startGroup } from "../test/support/processes";
import { median } from "./lib/report";
import { LoadResult, runLoad } from "./lib/wrk";
import { CLASSIFIER_BODY, CLASSIFIER_PATH } from "./tutorial/stack";

interface Variant {
    name: string;
    config: Record<string, string>;
    env: Record<string, string>;
    /** Edits of the rendered nginx.conf (a scratch copy of the text, never the renderer): [from, to]. */
    nginx: [string, string][];
    topology?: Topology;
}

const BENCH_CONFIG = { rateLimitPerSecond: "1000000", rateLimitBurst: "1000000" };

function parse(argv: string[]) {
    const variants: Variant[] = [];
    const options = { replicas: 2, connections: [16, 64], rounds: 3, duration: 5, profile: false, direct: false, constant: false };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const value = () => argv[++i];
        const pair = (text: string) => [text.slice(0, text.indexOf("=")), text.slice(text.indexOf("=") + 1)];
        if (arg === "--variant") variants.push({ name: value(), config: {}, env: {}, nginx: [] });
        else if (arg === "--nginx") {
            const [from, to] = value().split("=>");
            variants[variants.length - 1].nginx.push([from, to ?? ""]);
        }
        else if (arg === "--set") {
            const [k, v] = pair(value());
            variants[variants.length - 1].config[k] = v;
        } else if (arg === "--env") {
            const [k, v] = pair(value());
            variants[variants.length - 1].env[k] = v;
        } else if (arg === "--replicas") options.replicas = Number(value());
        else if (arg === "--connections") options.connections = value().split(",").map(Number);
        else if (arg === "--rounds") options.rounds = Number(value());
        else if (arg === "--duration") options.duration = Number(value());
        else if (arg === "--profile") options.profile = true;
        else if (arg === "--direct") options.direct = true;
        else if (arg === "--constant") options.constant = true;
        else throw new Error(`unknown argument ${arg}`);
    }
    if (variants.length === 0) variants.push({ name: "default", config: {}, env: {}, nginx: [] });
    return { variants, options };
}

async function main() {
    const { variants, options } = parse(process.argv.slice(2));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-bench-experiment-"));
    const route = options.constant ? "api/bench/constant" : CLASSIFIER_PATH;
    try {
        for (const variant of variants) {
            const wrapper: Record<string, string> = options.constant ? { PYTHONPATH: `${path.join(PROJECT_ROOT, "app")}:${path.join(__dirname, "wsgi")}` } : {};
            variant.topology = await startTopology({
                replicas: options.replicas,
                config: { ...BENCH_CONFIG, ...variant.config },
                wsgiApp: options.constant ? "bench_constant:app" : undefined,
                replicaEnv: () => ({ ...wrapper, ...variant.env }),
            });
            removeOnExit(variant.topology.dir);
            if (variant.nginx.length > 0) {
                const t = variant.topology;
                let text = fs.readFileSync(t.nginxConfigFile, "utf8");
                for (const [from, to] of variant.nginx) {
                    // "re:PATTERN" is a regular expression (global, multiline); anything else a literal.
                    const pattern = from.startsWith("re:") ? new RegExp(from.slice(3), "gm") : new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "g");
                    if (!pattern.test(text)) throw new Error(`${variant.name}: "${from}" is not in the rendered nginx.conf`);
                    text = text.replace(pattern, to);
                }
                fs.writeFileSync(t.nginxConfigFile, text);
                const master = Number(fs.readFileSync(path.join(t.dir, "nginx.pid"), "utf8"));
                process.kill(master, "SIGHUP"); // reload: new workers with the edited text
                await sleep(1500);
            }
        }
        const paths = options.direct ? (["https", "direct"] as const) : (["https"] as const);
        const cells: { variant: Variant; path: string; connections: number }[] = [];
        for (const variant of variants) for (const p of paths) for (const connections of options.connections) cells.push({ variant, path: p, connections });
        const results = new Map<string, LoadResult[]>();
        const key = (c: { variant: Variant; path: string; connections: number }) => `${c.variant.name}|${c.path}|${c.connections}`;
        const load = (c: (typeof cells)[number], duration: number) => {
            const t = c.variant.topology!;
            const nginx = Number(fs.readFileSync(path.join(t.dir, "nginx.pid"), "utf8"));
            return runLoad({
                url: c.path === "https" ? `${t.httpsUrl}${route}` : `${t.replicas[0].url}/${route}`,
                ports: c.path === "direct" && t.replicas.length > 1 ? t.replicas.map((r) => r.port) : undefined,
                connections: c.connections,
                threads: c.path === "direct" ? Math.max(2, t.replicas.length) : 2,
                durationSeconds: duration,
                body: CLASSIFIER_BODY,
                appGroups: t.replicas.map((r) => r.process.pid!),
                proxyGroups: c.path === "https" ? [nginx] : [],
            });
        };
        for (const c of cells) await load(c, 1); // warm-up
        for (let round = 1; round <= options.rounds; round++) {
            const order = round % 2 ? cells : [...cells].reverse();
            for (const c of order) {
                const r = await load(c, options.duration);
                results.set(key(c), [...(results.get(key(c)) ?? []), r]);
                console.log(
                    `${key(c)}: ${r.rps.toFixed(0)} req/s p50 ${r.latencyMs.p50.toFixed(2)} p99 ${r.latencyMs.p99.toFixed(2)} ms; ` +
                        `us/req app ${r.cpu.appUsPerRequest.toFixed(0)} nginx ${r.cpu.proxyUsPerRequest.toFixed(0)} wrk ${r.cpu.wrkUsPerRequest.toFixed(0)}; other ${r.cpu.otherCores.toFixed(2)} cores; errors ${r.errors.status + r.errors.timeout}`,
                );
                await sleep(300);
            }
        }
        console.log("\n| variant | path | conns | req/s (median, min-max) | p50 ms | p99 ms | app us/req | nginx us/req | other cores |");
        console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (const c of cells) {
            const rs = results.get(key(c))!;
            const rps = rs.map((r) => r.rps);
            console.log(
                `| ${c.variant.name} | ${c.path} | ${c.connections} | ${median(rps).toFixed(0)} (${Math.min(...rps).toFixed(0)}-${Math.max(...rps).toFixed(0)}) | ${median(rs.map((r) => r.latencyMs.p50)).toFixed(2)} | ${median(rs.map((r) => r.latencyMs.p99)).toFixed(2)} | ${median(rs.map((r) => r.cpu.appUsPerRequest)).toFixed(0)} | ${median(rs.map((r) => r.cpu.proxyUsPerRequest)).toFixed(0)} | ${median(rs.map((r) => r.cpu.otherCores)).toFixed(2)} |`,
            );
        }
        if (options.profile) {
            for (const variant of variants) {
                const raw = path.join(out, `profile-${variant.name}.txt`);
                const pyspy = startGroup(path.join(VENV, "bin", "py-spy"), ["record", "--pid", String(variant.topology!.replicas[0].process.pid), "--subprocesses", "--gil", "--nonblocking", "--rate", "200", "--duration", "7", "--format", "raw", "--output", raw], { logFile: path.join(out, "py-spy.log") });
                await sleep(1000);
                await load({ variant, path: "https", connections: options.connections[options.connections.length - 1] }, 5);
                await new Promise<void>((resolve) => (pyspy.exitCode !== null ? resolve() : pyspy.once("exit", () => resolve())));
                const summary = summariseRawProfile(raw);
                console.log(`\nprofile ${variant.name} (${summary.samples} GIL-holding samples; mlapi work ${(summary.mlapiWorkShare * 100).toFixed(1)}%, predict view ${(summary.predictViewShare * 100).toFixed(1)}%):`);
                for (const b of summary.buckets) console.log(`  ${(b.share * 100).toFixed(1).padStart(5)}%  ${b.name}`);
                console.log("  top self:");
                for (const f of summary.topSelf) console.log(`  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.frame}`);
                console.log("  top inclusive:");
                for (const f of summary.topInclusive) console.log(`  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.frame}`);
            }
        }
        fs.writeFileSync(path.join(out, "experiment.json"), JSON.stringify(Object.fromEntries(results), null, 1));
        console.log(`\nruns in ${out}`);
    } finally {
        for (const variant of variants) await variant.topology?.stop();
    }
}

main().catch((error) => {
    console.error(error);
    process.exit(1);
});
