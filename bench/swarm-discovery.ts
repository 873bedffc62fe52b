// How swarm mode's Nginx finds the app service's tasks, measured on a real
// 3-node swarm (test/support/swarm.ts): (A) what the program deploys, a
// static upstream block with keep-alive whose server list the discovery loop
// (nginx/bin/mlapi-swarm-proxy) rewrites, reloading Nginx, when tasks.<app>
// changes; against (B) Nginx resolving tasks.<app> itself (resolver
// 127.0.0.11 valid=1s, proxy_pass to a variable): no keep-alive to the app
// and no memory of a failed task. BENCHMARKS.md ("Swarm mode: how Nginx finds
// the tasks") holds one run's figures.
//
//   npx tsx bench/swarm-discovery.ts [--rounds N] [--duration S] [--no-faults]
//
// As root, with what the swarm suites need (scripts/setup.sh), and
// MLAPI_BUILD_CA_CERT_FILE where the network intercepts TLS, as for the
// tests. About 6 minutes with the defaults (3 rounds of 10 s).
//
// What it does, in order:
//   1. builds the test images (buildTestImages), makes a 3-node swarm (one
//      manager) and pushes both images to its registry;
//   2. deploys through the manager's Engine API from the program's own pure
//      specs (appServiceArgs, proxyServiceArgs, translated as the swarm suite
//      replays them, serviceSpec): the app (2 tasks, placed by the scheduler)
//      and two proxy services on the manager, each behind a port forwarder
//      of its own (its host-mode ports), with its own edge and front
//      networks, and config, certificate, key and frontend as
//      content-named Swarm configs and secret (a bench certificate made with
//      openssl). A is exactly what the program deploys (swarmNginxConfig's
//      config, the discovery loop). B is the same rendered config with the
//      upstream block replaced by the resolver form (a text edit, as
//      bench/experiment.ts --nginx makes) and Nginx run by the image's own
//      command, without the loop: B has nothing for it to do, and its reloads
//      would only cost B;
//   3. loads A and B in turn (A, B, A, B, ...) with wrk (bench/post.lua over
//      HTTPS, 16 then 64 connections): req/s, p50 and p99, new upstream
//      connections per request (TCP ActiveOpens of the proxy task's network
//      namespace; its health check adds one every 5 s) and the busier task's
//      share of the requests (the access log's upstream address);
//   4. failover (unless --no-faults), under an open-loop load of 50
//      requests/s on A and on B at once: `docker kill` of an app task on a
//      worker, then that worker cut off (eth0 down in its namespace, up again
//      afterwards): failed requests, successful answers slower than 1 s, and
//      when tasks.<app> (resolved on the proxies' node) and A's upstream list
//      drop the task and list its replacement;
//   5. prints the figures, and tears the swarm down (also on failure and
//      Ctrl-C).
// The per-client rate limit is raised for the one load-generating client,
// with the stack's own settings, as bench/run.ts does. All traffic stays
// between this machine and the swarm's namespaces.
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import { replicaSettings } from "../components/appSpec";
import { parseSettings, StackSettings } from "../components/config";
import { PROXY_FILES } from "../components/layout";
import { frontendFiles, proxyFrontConfig, proxyUploads, SWARM_FORWARDER_FILES, SWARM_UPSTREAMS_FILE, swarmForwarderConfig, swarmNginxConfig } from "../components/proxyConfig";
import { appServiceArgs } from "../components/swarm/appService";
import { contentName, forwarderServiceArgs, MountedFile, proxyServiceArgs } from "../components/swarm/proxyService";
import { buildTestImages, TEST_IMAGES } from "../test/support/docker";
import { postJson, SEED_PAYLOADS } from "../test/support/http";
import { generateKey, selfSignedCert } from "../test/support/openssl";
import { sleep, waitFor } from "../test/support/processes";
import { createSwarm, Swarm, SwarmNode } from "../test/support/swarm";
import { engineApi, serviceSpec } from "../test/support/swarmReplay";
import { activeOpens, resolverConfig, Sample, Span, startOpenLoad, summariseSamples } from "./lib/swarmDiscovery";
import { median } from "./lib/report";
import { LoadResult, runLoad } from "./lib/wrk";
import { CLASSIFIER_BODY, CLASSIFIER_PATH } from "./tutorial/stack";

const USAGE = "usage: npx tsx bench/swarm-discovery.ts [--rounds N] [--duration S] [--no-faults]";
/** Outside the harness's underlay (10.231.0.0/16) and overlay pool (10.232.0.0/16). */
const APP_SUBNET = "10.233.78.0/24";
const NAME_PREFIX = "disc";
const VARIANTS = {
    A: { namePrefix: "disc-a", httpsPort: 10443, httpPort: 10080, frontSubnet: "10.233.81.0/24", form: "static upstream + keepalive, discovery loop reloads" },
    B: { namePrefix: "disc-b", httpsPort: 11443, httpPort: 11080, frontSubnet: "10.233.82.0/24", form: "resolver valid=1s + proxy_pass to a variable" },
} as const;
type Variant = keyof typeof VARIANTS;
const ORDER: Variant[] = ["A", "B"];
const CONNECTIONS = [16, 64];
const FAILOVER_RATE = 50;
/** The load runs this long before a fault, and this long after the replacement is listed. */
const BEFORE_FAULT_MS = 5000;
const AFTER_REPLACEMENT_MS = 3000;

interface Options {
    rounds: number;
    durationSeconds: number;
    faults: boolean;
}

function parseOptions(argv: string[]): Options {
    const options: Options = { rounds: 3, durationSeconds: 10, faults: true };
    for (let i = 0; i < argv.length; i++) {
        const number = () => {
            const value = Number(argv[++i]);
            if (!Number.isInteger(value) || value < 1) throw new Error(`${argv[i - 1]} wants a positive integer\n${USAGE}`);
            return value;
        };
        if (argv[i] === "--rounds") options.rounds = number();
        else if (argv[i] === "--duration") options.durationSeconds = number();
        else if (argv[i] === "--no-faults") options.faults = false;
        else throw new Error(`unknown argument ${argv[i]}\n${USAGE}`);
    }
    return options;
}

const log = (message: string) => console.log(`${new Date().toISOString().slice(11, 23)} ${message}`);

function run(command: string, args: string[], timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) =>
        execFile(command, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) =>
            error ? reject(new Error(`${command} ${args.join(" ")}: ${error.message} ${stderr}`)) : resolve(stdout),
        ),
    );
}

interface Task {
    node: SwarmNode;
    container: string;
    /** Its address on the app network. */
    address: string;
    /** Its container's first process, as this machine sees it (the node daemons share its PID namespace). */
    pid: number;
}

interface Proxy {
    variant: Variant;
    url: string;
    task: Task;
}

interface Stack {
    swarm: Swarm;
    api: ReturnType<typeof engineApi>;
    appService: string;
    proxies: Record<Variant, Proxy>;
    /** The bench certificate, to trust the proxies. */
    certPem: string;
}

/** The stack's settings for this swarm, the per-client rate limit raised for one load-generating client. */
function benchSettings(swarm: Swarm): StackSettings {
    const raw: Record<string, string> = {
        platform: "swarm",
        registryAddress: swarm.registry,
        registryUsername: swarm.registryAuth.username,
        swarmManagerHost: swarm.manager.host,
        edgeAddress: swarm.manager.address,
        certIpAddresses: JSON.stringify([swarm.manager.address]),
        appSubnet: APP_SUBNET,
        rateLimitPerSecond: "1000000",
        rateLimitBurst: "1000000",
    };
    return parseSettings((key) => raw[key]);
}

/** X-Registry-Auth of a service create, as the provider sends it: URL-safe base64, padded. */
function registryAuthHeader(swarm: Swarm): Record<string, string> {
    const auth = { ...swarm.registryAuth, serveraddress: swarm.registry };
    return { "X-Registry-Auth": Buffer.from(JSON.stringify(auth)).toString("base64").replace(/\+/g, "-").replace(/\//g, "_") };
}

/** The running tasks of `service`, with their addresses on the app network. */
async function runningTasks(stack: Pick<Stack, "swarm" | "api">, service: string): Promise<Task[]> {
    const tasks: any[] = await stack.api("GET", `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [service], "desired-state": ["running"] }))}`);
    return tasks
        .filter((t) => t.Status.State === "running")
        .map((t) => ({
            node: stack.swarm.nodes.find((n) => n.id === t.NodeID)!,
            container: t.Status.ContainerStatus.ContainerID,
            address: String(t.NetworksAttachments.find((n: any) => n.Network.Spec.Name === `${NAME_PREFIX}-app`).Addresses[0]).split("/")[0],
            pid: t.Status.ContainerStatus.PID,
        }));
}

const waitForTasks = (stack: Pick<Stack, "swarm" | "api">, service: string, count: number) =>
    waitFor(`${count} running task(s) of ${service}`, async () => {
        const tasks = await runningTasks(stack, service);
        return tasks.length === count ? tasks : undefined;
    }, 240_000, 1000);

/**
 * One proxy service: its edge and front networks, its files as Swarm configs
 * and a secret named by their content (as SwarmProxyService makes them), the
 * service, from proxyServiceArgs, and its forwarder (forwarderServiceArgs). B
 * runs the image's command instead of the loop.
 */
async function createProxy(api: Stack["api"], variant: Variant, args: { image: string; appService: string; appNetworkId: string; config: string; certPem: string; keyPem: string; settings: StackSettings; auth: Record<string, string> }) {
    const { namePrefix, httpsPort, httpPort, frontSubnet } = VARIANTS[variant];
    const edge = await api("POST", "/networks/create", { Name: `${namePrefix}-edge`, Driver: "overlay", CheckDuplicate: true });
    const front = await api("POST", "/networks/create", { Name: `${namePrefix}-front`, Driver: "overlay", Internal: true, CheckDuplicate: true, IPAM: { Config: [{ Subnet: frontSubnet }] } });
    /** One file as a Swarm config or secret named by its content, mounted read-only, as the program mounts it. */
    const mount = async (upload: { file: string; content: string; permissions: string }, secret: boolean): Promise<MountedFile<string>> => {
        const name = contentName(namePrefix, upload.file, upload.content);
        const created = await api("POST", secret ? "/secrets/create" : "/configs/create", { Name: name, Data: Buffer.from(upload.content).toString("base64") });
        return { id: created.ID, name, file: upload.file, mode: Number.parseInt(upload.permissions, 8) & ~0o222 };
    };
    const configs: MountedFile<string>[] = [];
    const secrets: MountedFile<string>[] = [];
    for (const upload of proxyUploads({ config: args.config, front: proxyFrontConfig({ workers: args.settings.proxyWorkers, frontSubnet }), certPem: args.certPem, privateKeyPem: args.keyPem, frontend: frontendFiles() })) {
        const secret = upload.file === PROXY_FILES.certificateKey;
        (secret ? secrets : configs).push(await mount(upload, secret));
    }
    // What both services take from the stack's settings.
    const shared = {
        namePrefix,
        image: args.image,
        httpsPort,
        httpPort,
        replicas: 1,
        constraint: args.settings.proxyConstraint,
        memoryMb: args.settings.proxyMemoryMb,
        imagePlatform: args.settings.imagePlatform,
    };
    const spec = proxyServiceArgs<string>({ ...shared, appServiceName: args.appService, appNetworkId: args.appNetworkId, frontNetworkId: front.Id, configs, secrets });
    if (variant === "B") {
        const { commands: _loop, env: _interval, ...containerSpec } = spec.taskSpec.containerSpec;
        spec.taskSpec.containerSpec = containerSpec as typeof spec.taskSpec.containerSpec;
    }
    await api("POST", "/services/create", serviceSpec(spec), args.auth);
    const config = await mount({ file: SWARM_FORWARDER_FILES.config, content: swarmForwarderConfig(args.settings.proxyWorkers), permissions: "0444" }, false);
    const forwarder = forwarderServiceArgs<string>({ ...shared, edgeNetworkId: edge.Id, frontNetworkId: front.Id, config });
    await api("POST", "/services/create", serviceSpec(forwarder), args.auth);
    return spec.name;
}

async function deploy(swarm: Swarm): Promise<Stack> {
    const settings = benchSettings(swarm);
    const api = engineApi(swarm.manager.host.replace(/^unix:\/\//, ""));
    const auth = registryAuthHeader(swarm);
    const [appImage, proxyImage] = await Promise.all([swarm.pushImage(TEST_IMAGES.app, "mlapi-app:disc"), swarm.pushImage(TEST_IMAGES.proxy, "mlapi-proxy:disc")]);
    log("images pushed");

    const network = await api("POST", "/networks/create", { Name: `${NAME_PREFIX}-app`, Driver: "overlay", Internal: true, CheckDuplicate: true, IPAM: { Config: [{ Subnet: APP_SUBNET }] } });
    const app = appServiceArgs<string>({ namePrefix: NAME_PREFIX, image: appImage, networkId: network.Id, ...replicaSettings(settings) });
    await api("POST", "/services/create", serviceSpec(app), auth);

    const keyPem = generateKey(settings.keyAlgorithm);
    const certPem = selfSignedCert({ keyPem, subject: settings.certSubject, dnsNames: settings.certDnsNames, ipAddresses: settings.certIpAddresses, validityHours: 24, allowedUses: ["digital_signature", "key_encipherment", "server_auth"] });
    // As the program names them (platform.ts).
    const serverNames = [...settings.certDnsNames, ...settings.certIpAddresses];
    const services = {} as Record<Variant, string>;
    for (const variant of ORDER) {
        const rendered = swarmNginxConfig({ serverNames, publicHttpsPort: VARIANTS[variant].httpsPort, limits: settings });
        const config = variant === "A" ? rendered : resolverConfig(rendered, app.name);
        services[variant] = await createProxy(api, variant, { image: proxyImage, appService: app.name, appNetworkId: network.Id, config, certPem, keyPem, settings, auth });
    }

    const stack = { swarm, api };
    const appTasks = await waitForTasks(stack, app.name, settings.replicas);
    log(`app tasks: ${appTasks.map((t) => `${t.node.name} ${t.address}`).join(", ")}`);
    const proxies = {} as Record<Variant, Proxy>;
    for (const variant of ORDER) {
        const [task] = await waitForTasks(stack, services[variant], 1);
        const url = `https://${swarm.manager.address}:${VARIANTS[variant].httpsPort}/${CLASSIFIER_PATH}`;
        await waitFor(`proxy ${variant} to answer`, async () => ((await postJson(url, SEED_PAYLOADS.classifier, { ca: certPem, timeoutMs: 3000 })).status === 200 ? true : undefined), 120_000, 1000);
        proxies[variant] = { variant, url, task };
    }
    return { ...stack, appService: app.name, proxies, certPem };
}

/** The addresses tasks.<app> resolves to on the proxies' node (Docker's DNS, from proxy A's namespaces), or undefined when the lookup fails. */
async function resolvedTasks(stack: Stack): Promise<string[] | undefined> {
    const out = await run("nsenter", ["-t", String(stack.proxies.A.task.pid), "-n", "-m", "getent", "ahostsv4", `tasks.${stack.appService}`], 3000).catch(() => undefined);
    return out === undefined ? undefined : [...new Set(out.split("\n").filter(Boolean).map((line) => line.split(/\s+/)[0]))].sort();
}

/** The addresses in proxy A's upstream list (what the discovery loop last wrote). */
function upstreamList(stack: Stack): string[] {
    const text = fs.readFileSync(`/proc/${stack.proxies.A.task.pid}/root${SWARM_UPSTREAMS_FILE}`, "utf8");
    return [...text.matchAll(/^server (\S+):\d+ (?!down)/gm)].map((m) => m[1]).sort();
}

/** The running app tasks, once tasks.<app> and A's upstream list both name exactly them. */
function steadyTasks(stack: Stack): Promise<Task[]> {
    return waitFor("every app task in tasks.<app> and in A's upstream list", async () => {
        const tasks = await runningTasks(stack, stack.appService);
        const addresses = tasks.map((t) => t.address).sort().join(" ");
        return tasks.length === 2 && (await resolvedTasks(stack))?.join(" ") === addresses && upstreamList(stack).join(" ") === addresses ? tasks : undefined;
    }, 180_000, 500);
}

interface AccessEntry {
    /** The upstream address that answered (the last one tried). */
    upstream: string;
    /** Nginx tried more than one upstream. */
    retried: boolean;
    status: number;
}

/** The prediction requests in a proxy's access log between two epoch-ms times (Docker's timestamps; Nginx flushes every second). */
async function accessLog(stack: Stack, proxy: Proxy, from: number, to: number): Promise<AccessEntry[]> {
    const out = await run("docker", ["--config", stack.swarm.dockerConfig, "-H", proxy.task.node.host, "logs", "--since", (from / 1000).toFixed(3), "--until", (to / 1000).toFixed(3), proxy.task.container], 60_000);
    return out
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line))
        .filter((entry) => entry.uri === `/${CLASSIFIER_PATH}`)
        .map((entry) => {
            const tried = String(entry.upstream).split(/,\s*/);
            return { upstream: tried[tried.length - 1], retried: tried.length > 1, status: entry.status };
        });
}

interface Measurement {
    variant: Variant;
    connections: number;
    round: number;
    load: LoadResult;
    opensPerRequest: number;
    busierShare: number;
}

async function measure(stack: Stack, proxy: Proxy, connections: number, round: number, durationSeconds: number): Promise<Measurement> {
    const opens = activeOpens(proxy.task.pid);
    const started = Date.now();
    const load = await runLoad({ url: proxy.url, connections, threads: 2, durationSeconds, body: CLASSIFIER_BODY, appGroups: [], proxyGroups: [] });
    const ended = Date.now();
    const opened = activeOpens(proxy.task.pid) - opens;
    await sleep(1500); // the access log's flush
    const counts = new Map<string, number>();
    for (const entry of await accessLog(stack, proxy, started, ended + 1200)) counts.set(entry.upstream, (counts.get(entry.upstream) ?? 0) + 1);
    const logged = [...counts.values()].reduce((a, b) => a + b, 0);
    return { variant: proxy.variant, connections, round, load, opensPerRequest: opened / load.requests, busierShare: Math.max(...counts.values()) / logged };
}

function errorsOf(load: LoadResult): number {
    const e = load.errors;
    return e.connect + e.read + e.write + e.status + e.timeout;
}

function throughputTable(rows: Measurement[]): string[] {
    const lines = [
        "| conns | A req/s | B req/s | B/A req/s (median of pairs, range) | p50 A / B ms | p99 A / B ms | new upstream conns per request A / B | busier task's share A / B | errors A / B |",
        "| ---: | ---: | ---: | --- | --- | --- | --- | --- | --- |",
    ];
    for (const connections of CONNECTIONS) {
        const of = (variant: Variant) => rows.filter((r) => r.variant === variant && r.connections === connections).sort((a, b) => a.round - b.round);
        const [a, b] = [of("A"), of("B")];
        const m = (list: Measurement[], value: (r: Measurement) => number) => median(list.map(value));
        const both = (value: (r: Measurement) => number, digits: number) => `${m(a, value).toFixed(digits)} / ${m(b, value).toFixed(digits)}`;
        const ratios = a.map((r, i) => b[i].load.rps / r.load.rps);
        lines.push(
            `| ${connections} | ${m(a, (r) => r.load.rps).toFixed(0)} | ${m(b, (r) => r.load.rps).toFixed(0)} | ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}) ` +
                `| ${both((r) => r.load.latencyMs.p50, 1)} | ${both((r) => r.load.latencyMs.p99, 0)} | ${both((r) => r.opensPerRequest, 4)} | ${both((r) => r.busierShare, 3)} ` +
                `| ${a.reduce((s, r) => s + errorsOf(r.load), 0)} / ${b.reduce((s, r) => s + errorsOf(r.load), 0)} |`,
        );
    }
    return lines;
}

type Fault = "kill" | "cut";

interface FaultResult {
    fault: Fault;
    target: string;
    /** Seconds from the fault to each event. */
    events: Partial<Record<"nodeDown" | "dnsDrop" | "listDrop" | "dnsAdd" | "listAdd", number>>;
    traffic: Record<Variant, ReturnType<typeof summariseSamples> & { retried: number }>;
}

/**
 * Watches, every 250 ms, tasks.<app>, A's upstream list and (for a cut) the
 * manager's view of the node, until both name a replacement or `timeoutMs`
 * has passed; returns when each changed, in seconds from `at`.
 */
async function watchFailover(stack: Stack, target: Task, fault: Fault, at: number, timeoutMs: number): Promise<FaultResult["events"]> {
    const events: FaultResult["events"] = {};
    const mark = (event: keyof FaultResult["events"], happened: boolean) => {
        if (happened && events[event] === undefined) {
            events[event] = (Date.now() - at) / 1000;
            log(`  +${events[event]!.toFixed(2)} s ${event}`);
        }
    };
    while (Date.now() < at + timeoutMs && (events.dnsAdd === undefined || events.listAdd === undefined)) {
        const dns = await resolvedTasks(stack);
        const list = upstreamList(stack);
        if (dns) {
            mark("dnsDrop", !dns.includes(target.address));
            mark("dnsAdd", events.dnsDrop !== undefined && dns.length === 2);
        }
        mark("listDrop", !list.includes(target.address));
        mark("listAdd", events.listDrop !== undefined && list.length === 2);
        if (fault === "cut") mark("nodeDown", (await stack.api("GET", `/nodes/${target.node.id}`)).Status.State !== "ready");
        await sleep(250);
    }
    return events;
}

/** One fault under the open-loop load on both proxies; the target is an app task on a worker. */
async function failover(stack: Stack, fault: Fault): Promise<FaultResult> {
    const target = (await steadyTasks(stack)).find((t) => t.node.role === "worker")!;
    await sleep(2000);
    log(`failover: ${fault} ${target.node.name} (task ${target.address})`);
    const started = Date.now();
    const loads = Object.fromEntries(ORDER.map((v) => [v, startOpenLoad(stack.proxies[v].url, CLASSIFIER_BODY, FAILOVER_RATE, stack.certPem, 150)]));
    const samples = {} as Record<Variant, Sample[]>;
    let events: FaultResult["events"];
    let at = 0;
    try {
        await sleep(BEFORE_FAULT_MS);
        at = Date.now();
        if (fault === "kill") await stack.swarm.dockerAsync(target.node, ["kill", target.container]);
        else await run("ip", ["-n", target.node.netns, "link", "set", "eth0", "down"]);
        events = await watchFailover(stack, target, fault, at, 100_000);
        await sleep(AFTER_REPLACEMENT_MS);
    } finally {
        for (const v of ORDER) samples[v] = await loads[v].stop();
        if (fault === "cut") await run("ip", ["-n", target.node.netns, "link", "set", "eth0", "up"]);
    }
    const ended = Date.now();
    if (fault === "cut") {
        await waitFor(`${target.node.name} to be ready again`, async () => ((await stack.api("GET", `/nodes/${target.node.id}`)).Status.State === "ready" ? true : undefined), 120_000, 1000);
    }
    await sleep(1500); // the access log's flush
    const traffic = {} as FaultResult["traffic"];
    for (const v of ORDER) {
        const entries = await accessLog(stack, stack.proxies[v], started, ended + 1200);
        traffic[v] = { ...summariseSamples(samples[v], at), retried: entries.filter((e) => e.retried).length };
    }
    return { fault, target: `${target.node.name} ${target.address}`, events, traffic };
}

function failoverTable(results: FaultResult[]): string[] {
    const signed = (seconds: number) => `${seconds < 0 ? "" : "+"}${seconds.toFixed(1)}`;
    const s = (seconds: number | undefined) => (seconds === undefined ? "-" : `${signed(seconds)} s`);
    const when = (f: Span) => `${signed(f.first)}${f.last > f.first ? `..${signed(f.last)}` : ""} s`;
    const failures = (t: FaultResult["traffic"][Variant]) =>
        `${t.failed}${t.failed ? ` (${Object.entries(t.failures).map(([k, f]) => `${f.count} ${k} ${when(f)}`).join(", ")})` : ""}`;
    const slow = (f: Span) => `${f.count}${f.count ? ` (${when(f)})` : ""}`;
    const lines = [
        "| fault | manager: node down | tasks.<app> drops the task | A's list drops it | replacement in tasks.<app> | in A's list | requests A / B | failed A / B | OK answers > 1 s A / B | longest request A / B ms | retried by Nginx A / B |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ];
    for (const r of results) {
        const [a, b] = [r.traffic.A, r.traffic.B];
        const e = r.events;
        const name = r.fault === "kill" ? `docker kill (task on ${r.target.split(" ")[0]})` : `${r.target.split(" ")[0]} cut off (eth0 down)`;
        lines.push(
            `| ${name} | ${s(e.nodeDown)} | ${s(e.dnsDrop)} | ${s(e.listDrop)} | ${s(e.dnsAdd)} | ${s(e.listAdd)} | ${a.requests} / ${b.requests} | ${failures(a)} / ${failures(b)} | ${slow(a.slowOk)} / ${slow(b.slowOk)} | ${a.longestMs} / ${b.longestMs} | ${a.retried} / ${b.retried} |`,
        );
    }
    return lines;
}

async function main() {
    const options = parseOptions(process.argv.slice(2));
    log(`building the test images (${(await buildTestImages()).toFixed(0)} s); load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} on ${os.cpus().length} CPUs`);
    const swarm = await createSwarm({ nodes: 3, managers: 1, tmpfsSize: os.freemem() > 8 * 2 ** 30 ? "4g" : undefined });
    process.once("SIGINT", () => void swarm.teardown().finally(() => process.exit(130)));
    log(`swarm ${swarm.id}: ${swarm.nodes.map((n) => `${n.name} ${n.role} ${n.address}`).join(", ")}`);
    try {
        const stack = await deploy(swarm);
        await steadyTasks(stack);
        for (const v of ORDER) log(`proxy ${v} (${VARIANTS[v].form}): ${stack.proxies[v].url}`);
        for (const v of ORDER) await runLoad({ url: stack.proxies[v].url, connections: 16, threads: 2, durationSeconds: 3, body: CLASSIFIER_BODY, appGroups: [], proxyGroups: [] });

        const rows: Measurement[] = [];
        for (const connections of CONNECTIONS) {
            for (let round = 1; round <= options.rounds; round++) {
                for (const v of ORDER) {
                    const r = await measure(stack, stack.proxies[v], connections, round, options.durationSeconds);
                    rows.push(r);
                    log(`${v} c=${connections} round ${round}: ${r.load.rps.toFixed(0)} req/s p50 ${r.load.latencyMs.p50.toFixed(1)} p99 ${r.load.latencyMs.p99.toFixed(0)} ms; ` +
                        `${r.opensPerRequest.toFixed(4)} new conns/request; busier task ${r.busierShare.toFixed(3)}; errors ${errorsOf(r.load)}`);
                }
            }
        }
        const faults: FaultResult[] = [];
        if (options.faults) for (const fault of ["kill", "cut"] as Fault[]) faults.push(await failover(stack, fault));

        console.log(`\nThroughput and latency (${options.rounds} interleaved pairs of ${options.durationSeconds} s per row; medians; load average now ${os.loadavg()[0].toFixed(1)}):`);
        console.log(throughputTable(rows).join("\n"));
        if (faults.length) {
            console.log(`\nFailover (${FAILOVER_RATE} requests/s on A and on B at once, from ${BEFORE_FAULT_MS / 1000} s before the fault to ${AFTER_REPLACEMENT_MS / 1000} s after the replacement is listed; times from the fault):`);
            console.log(failoverTable(faults).join("\n"));
        }
    } finally {
        const report = await swarm.teardown();
        log(`teardown: ${report.seconds.toFixed(1)} s${report.leftovers.length ? `, left: ${report.leftovers.join("; ")}` : ""}`);
    }
}

main().catch((error) => {
    console.error(error);
    process.exit(1);
});
