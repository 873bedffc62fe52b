// The deployed stack at a glance: each replica (state, health, requests/s,
// 5xx and 4xx shares, p50/p99 over the last minute, workers, image), the
// proxy, the certificate's days left, the images, and a verdict line. Exits
// 1 when something needs attention (a replica down, the certificate inside
// its renewal window, ...), 2 when it cannot tell, so cron or CI can run it.
//
//   npm run status                          # reads the outputs of $STACK (dev)
//   npm run status -- --outputs out.json    # outputs saved with `pulumi stack output --json`
//   npm run status -- --window 300          # rates over the last 5 minutes
//   npm run status -- --host ssh://admin@10.0.0.10   # a swarm stack: the manager to ask
//
// It reads the stack's outputs, Docker (the containers' state, the proxy's
// access log) and the operator listener (Nginx's stub_status, each replica's
// metrics and health); it changes nothing.
//
// On a swarm stack (its outputs name appServiceName) it asks a manager
// instead: --host, else the stack's swarmManagerHost (else docker:host),
// else DOCKER_HOST or the docker CLI's default. It reads the nodes, the two
// services and their tasks (the current ones, and those that failed in the
// last --window seconds, an hour unless given) and asks /api/health through
// the proxy 6 times per app replica to see which tasks answer
// (scripts/lib/swarmStatus.ts).
import { execFile } from "child_process";
import * as fs from "fs";
import { promisify } from "util";
import { certificateFacts } from "../components/certificate";
import { request } from "../test/support/http";
import { peerCertificate, stackConfigValue, stackOutputs } from "./lib/deployed";
import { accessLogWindow, assess, CertificateStatus, ContainerState, parsePrometheus, parseStubStatus, StatusFacts } from "./lib/statusReport";
import { assessSwarm, HealthAnswer, selectTasks, SwarmFacts, SwarmNodeFacts, SwarmServiceFacts, SwarmTaskFacts } from "./lib/swarmStatus";

const run = promisify(execFile);

/** `docker inspect` of every name at once; a missing container is simply absent. */
async function inspectContainers(names: string[]): Promise<Map<string, ContainerState>> {
    const result = await run("docker", ["inspect", "--type", "container", ...names], { maxBuffer: 64 << 20 }).catch((error) => ({ stdout: error.stdout as string }));
    const found = new Map<string, ContainerState>();
    for (const c of JSON.parse(result.stdout || "[]")) {
        found.set(String(c.Name).replace(/^\//, ""), {
            status: c.State.Status,
            health: c.State.Health?.Status,
            restarts: c.RestartCount,
            startedAt: c.State.StartedAt,
            image: c.Image,
            addresses: Object.values(c.NetworkSettings.Networks ?? {}).map((n: any) => n.IPAddress).filter(Boolean),
        });
    }
    return found;
}

async function fetchText(url: string): Promise<{ status: number; body: string } | string> {
    try {
        const answer = await request(url, { timeoutMs: 5000 });
        return { status: answer.status, body: answer.body };
    } catch (error) {
        return error instanceof Error ? error.message : String(error);
    }
}

/** The certificate HTTPS presents at `url` (not verified: the report checks it) and what the outputs expect of it. */
async function servedCertificate(url: string, outputs: Record<string, unknown>): Promise<CertificateStatus> {
    const served = await peerCertificate(url, { insecure: true }).then(
        (peer) => certificateFacts(peer.certPem),
        (error) => (error instanceof Error ? error.message : String(error)),
    );
    return {
        served: typeof served === "string" ? served : { notAfter: served.notAfter, fingerprintSha256: served.fingerprintSha256, subject: served.subject },
        expectedFingerprintSha256: typeof outputs.certificateFingerprintSha256 === "string" ? outputs.certificateFingerprintSha256 : undefined,
        renewalDays: typeof outputs.certificateRenewalDays === "number" ? outputs.certificateRenewalDays : undefined,
    };
}

export async function gatherFacts(outputs: Record<string, unknown>, options: { stack: string; windowSeconds: number; nowMs?: number }): Promise<StatusFacts> {
    const text = (key: string) => (typeof outputs[key] === "string" ? (outputs[key] as string) : undefined);
    const url = text("url");
    const replicaNames = outputs.replicaNames;
    const proxyName = text("proxyContainerName");
    if (outputs.appServiceName) throw new Error("this is a swarm stack: its facts come from gatherSwarmFacts");
    if (!url || !Array.isArray(replicaNames) || !proxyName) throw new Error("the outputs have no url, replicaNames or proxyContainerName: is the stack deployed (`npm run deploy`)?");
    const holderName = text("portHolderName");
    const operatorUrl = text("operatorUrl");
    const nowMs = options.nowMs ?? Date.now();

    const containers = await inspectContainers([...replicaNames, proxyName, ...(holderName ? [holderName] : [])]);
    const proxy = containers.get(proxyName);
    // The window never reaches back before this Nginx started (an earlier one's log went with it).
    const sinceStart = proxy ? Math.floor((nowMs - Date.parse(proxy.startedAt)) / 1000) : options.windowSeconds;
    const windowSeconds = Math.max(1, Math.min(options.windowSeconds, sinceStart));
    const [logs, served, operatorIndex, stub, exported, ...perReplica] = await Promise.all([
        proxy
            ? run("docker", ["logs", "--since", `${windowSeconds + 1}s`, proxyName], { maxBuffer: 512 << 20 }).then(
                  (r) => accessLogWindow(r.stdout.split("\n"), nowMs, windowSeconds),
                  (error) => String(error.message).split("\n")[0],
              )
            : Promise.resolve("the proxy container does not exist"),
        servedCertificate(url, outputs),
        operatorUrl ? fetchText(operatorUrl) : undefined,
        operatorUrl ? fetchText(new URL("nginx/status", operatorUrl).href) : undefined,
        operatorUrl ? fetchText(new URL("nginx/metrics", operatorUrl).href) : undefined,
        ...replicaNames.map(async (name: string) =>
            operatorUrl ? Promise.all([fetchText(new URL(`replicas/${name}/health`, operatorUrl).href), fetchText(new URL(`replicas/${name}/metrics`, operatorUrl).href)]) : undefined,
        ),
    ]);

    let operator: StatusFacts["operator"];
    if (operatorUrl) {
        if (typeof operatorIndex === "object" && operatorIndex.status === 200) {
            operator = { url: operatorUrl, replicaNames: JSON.parse(operatorIndex.body).replicas.map((r: { name: string }) => r.name) };
        } else operator = { url: operatorUrl, error: typeof operatorIndex === "object" ? `HTTP ${operatorIndex.status}` : operatorIndex };
    }
    return {
        stack: options.stack,
        url,
        nowMs,
        replicas: replicaNames.map((name: string, i: number) => {
            const answers = perReplica[i];
            const [health, metrics] = answers ?? [];
            return {
                name,
                container: containers.get(name),
                healthStatus: health === undefined ? undefined : typeof health === "string" ? health : health.status,
                metrics: metrics === undefined ? undefined : typeof metrics === "string" ? metrics : metrics.status === 200 ? parsePrometheus(metrics.body) : `HTTP ${metrics.status}`,
            };
        }),
        proxy: {
            name: proxyName,
            container: proxy,
            stub: stub === undefined ? undefined : typeof stub === "string" ? stub : stub.status === 200 ? parseStubStatus(stub.body) : `HTTP ${stub.status}`,
            exported: exported === undefined ? undefined : typeof exported === "string" ? exported : /^nginx_up 1$/m.test(exported.body) ? true : `HTTP ${exported.status}${exported.status === 200 ? ", nginx_up is not 1" : ""}`,
        },
        portHolder: holderName ? { name: holderName, container: containers.get(holderName) } : undefined,
        operator,
        window: logs,
        certificate: served,
        // What the replicas run: the served image (app + models); stacks from before it had the app image alone.
        images: { app: text("servedImage") ?? text("appImage"), proxy: text("proxyImage") },
    };
}

/** The docker CLI against `host` (its -H), or against its default endpoint. */
function dockerOn(host: string | undefined) {
    return (args: string[]) => run("docker", [...(host ? ["-H", host] : []), ...args], { maxBuffer: 64 << 20 });
}

const firstLine = (error: any) => String(error?.stderr || error?.message || error).trim().split("\n")[0];

/** A task as `docker inspect --type task` prints it. */
function taskFacts(t: any): SwarmTaskFacts {
    return {
        id: t.ID,
        slot: t.Slot,
        nodeId: t.NodeID ?? "",
        state: t.Status?.State ?? "?",
        desiredState: t.DesiredState ?? "?",
        // Docker's nanoseconds, to milliseconds.
        since: String(t.Status?.Timestamp ?? t.UpdatedAt ?? "").replace(/(\.\d{3})\d+/, "$1"),
        error: t.Status?.Err || undefined,
        image: t.Spec?.ContainerSpec?.Image ?? "?",
        containerId: t.Status?.ContainerStatus?.ContainerID || undefined,
    };
}

/**
 * GET <url>api/health through the proxy `samples` times, one after the
 * other, without verifying the certificate (the report checks it): who
 * answered, and why the others got no task's answer. A 429 (the proxy's
 * per-client limit) is waited out and asked again, up to 3 times.
 */
async function sampleHealth(url: string, samples: number): Promise<SwarmFacts["health"]> {
    const answers: HealthAnswer[] = [];
    const failures: string[] = [];
    for (let i = 0; i < samples; i++) {
        for (let attempt = 1; ; attempt++) {
            const response = await request(`${url}api/health`, { insecure: true, timeoutMs: 5000 }).catch((error: Error) => error.message);
            if (typeof response === "string") {
                failures.push(response);
                break;
            }
            if (response.status === 429 && attempt < 4) {
                await new Promise((resolve) => setTimeout(resolve, 1000));
                continue;
            }
            let body: any;
            try {
                body = JSON.parse(response.body);
            } catch {
                body = undefined;
            }
            if (typeof body?.replica === "string") answers.push({ replica: body.replica, status: response.status, models: body.models ?? {} });
            else failures.push(`HTTP ${response.status}${typeof body?.error?.code === "string" ? ` ${body.error.code}` : ""} without a replica's answer`);
            break;
        }
    }
    return { samples, answers, failures };
}

/**
 * A swarm stack's facts, from a manager (`host`: a Docker endpoint such as
 * ssh://admin@10.0.0.10 or unix:///run/docker.sock; undefined: the docker
 * CLI's default): its nodes, the app, proxy and forwarder services with their current
 * tasks and those that failed in the last `windowSeconds` (an hour unless
 * given), which app tasks answer /api/health through the proxy (6 checks per
 * app replica) and the certificate HTTPS presents.
 */
export async function gatherSwarmFacts(
    outputs: Record<string, unknown>,
    options: { stack: string; host?: string; windowSeconds?: number; nowMs?: number },
): Promise<SwarmFacts> {
    const text = (key: string) => (typeof outputs[key] === "string" ? (outputs[key] as string) : undefined);
    const url = text("url");
    const appName = text("appServiceName");
    const proxyName = text("proxyServiceName");
    const forwarderName = text("forwarderServiceName");
    if (!url || !appName || !proxyName) throw new Error("the outputs have no url, appServiceName or proxyServiceName: is the swarm stack deployed (`npm run deploy`)?");
    const nowMs = options.nowMs ?? Date.now();
    const sinceMs = nowMs - (options.windowSeconds ?? 3600) * 1000;
    const docker = dockerOn(options.host);
    const where = options.host ?? process.env.DOCKER_HOST ?? "the docker CLI's default engine";

    const [nodeList, inspected, certificate] = await Promise.all([
        docker(["node", "ls", "--format", "{{json .}}"]).catch((error) => {
            throw new Error(`docker node ls on ${where}: ${firstLine(error)} (is it a manager of the swarm? --host names one)`);
        }),
        docker(["service", "inspect", appName, proxyName, ...(forwarderName ? [forwarderName] : [])]).catch((error) => {
            // A missing service: the other one is printed all the same.
            if (!/no such service/i.test(String(error.stderr))) throw new Error(`docker service inspect on ${where}: ${firstLine(error)}`);
            return { stdout: String(error.stdout ?? "") };
        }),
        servedCertificate(url, outputs),
    ]);
    const nodes: SwarmNodeFacts[] = nodeList.stdout
        .split("\n")
        .filter((line) => line.trim())
        .map((line) => JSON.parse(line))
        .map((n) => ({ id: n.ID, hostname: n.Hostname, status: n.Status, availability: n.Availability, managerStatus: n.ManagerStatus ?? "" }));
    const specs = new Map<string, any>((JSON.parse(inspected.stdout.trim() || "[]") as any[]).map((s) => [s.Spec.Name, s]));

    const tasksOf = async (name: string): Promise<SwarmTaskFacts[]> => {
        if (!specs.has(name)) return [];
        const ids = (await docker(["service", "ps", "--quiet", "--no-trunc", name])).stdout.split("\n").filter((id) => id.trim());
        return ids.length ? (JSON.parse((await docker(["inspect", "--type", "task", ...new Set(ids)])).stdout) as any[]).map(taskFacts) : [];
    };
    const service = (name: string, tasks: SwarmTaskFacts[]): SwarmServiceFacts => {
        const spec = specs.get(name);
        if (!spec) return { name, missing: true, desired: 0, tasks: [] };
        const update = spec.UpdateStatus?.State ? { state: String(spec.UpdateStatus.State), message: spec.UpdateStatus.Message || undefined } : undefined;
        return { name, desired: Number(spec.Spec?.Mode?.Replicated?.Replicas ?? 0), update, tasks: selectTasks(tasks, sinceMs) };
    };
    const appReplicas = Number(specs.get(appName)?.Spec?.Mode?.Replicated?.Replicas ?? outputs.appReplicas ?? 1);
    const [appTasks, proxyTasks, forwarderTasks, health] = await Promise.all([
        tasksOf(appName),
        tasksOf(proxyName),
        forwarderName ? tasksOf(forwarderName) : Promise.resolve([]),
        sampleHealth(url, 6 * Math.max(1, appReplicas)),
    ]);
    return {
        stack: options.stack,
        url,
        nowMs,
        manager: options.host ?? process.env.DOCKER_HOST,
        nodes,
        app: service(appName, appTasks),
        proxy: service(proxyName, proxyTasks),
        ...(forwarderName ? { forwarder: service(forwarderName, forwarderTasks) } : {}),
        health,
        certificate,
        images: { app: text("servedImage"), proxy: text("proxyImage") },
    };
}

/** The manager the stack deploys to: swarmManagerHost, else docker:host (as components/swarm/platform.ts); undefined: neither is set. */
function configuredManager(stack: string): string | undefined {
    try {
        return stackConfigValue(stack, "swarmManagerHost") ?? stackConfigValue(stack, "docker:host");
    } catch (error) {
        throw new Error(`${error instanceof Error ? error.message : error}; give the manager with --host`);
    }
}

async function main(argv: string[]): Promise<number> {
    const flag = (name: string) => {
        const index = argv.indexOf(`--${name}`);
        return index >= 0 ? argv[index + 1] : undefined;
    };
    const options = ["--outputs", "--stack", "--window", "--host"];
    const unknown = argv.filter((a, i) => a.startsWith("--") && !options.includes(a) && !options.includes(argv[i - 1]));
    if (unknown.length) throw new Error(`unknown option ${unknown[0]}; the options are --outputs FILE|-, --stack NAME, --window SECONDS, --host DOCKER_HOST (a swarm stack's manager)`);
    const stack = flag("stack") ?? process.env.STACK ?? "dev";
    const windowSeconds = Number(flag("window") ?? 60);
    if (!Number.isInteger(windowSeconds) || windowSeconds < 1 || windowSeconds > 86400) throw new Error(`--window is ${flag("window")}: expected whole seconds from 1 to 86400`);
    const file = flag("outputs");
    const outputs = file ? JSON.parse(fs.readFileSync(file === "-" ? 0 : file, "utf8")) : stackOutputs(stack);
    const swarm = Boolean(outputs.appServiceName);
    if (!swarm && flag("host") !== undefined) throw new Error("--host names a swarm stack's manager; this stack runs on one Docker host, which status reads with the docker CLI's default (DOCKER_HOST)");
    const report = swarm
        ? assessSwarm(await gatherSwarmFacts(outputs, { stack, host: flag("host") ?? configuredManager(stack), windowSeconds: flag("window") === undefined ? undefined : windowSeconds }))
        : assess(await gatherFacts(outputs, { stack, windowSeconds }));
    console.log(report.text);
    return report.attention.length ? 1 : 0;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (error) => {
            console.error(`status: ${error instanceof Error ? error.message : error}`);
            process.exit(2);
        },
    );
}
