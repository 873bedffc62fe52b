// The deployed stack at a glance: each replica (state, health, requests/s,
// 5xx and 4xx shares, p50/p99 over the last minute, workers, image), the
// proxy, the certificate's days left, the images, and a verdict line. Exits
// 1 when something needs attention (a replica down, the certificate inside
// its renewal window, ...), 2 when it cannot tell, so cron or CI can run it.
//
//   npm run status                          # reads the outputs of $STACK (dev)
//   npm run status -- --outputs out.json    # outputs saved with `pulumi stack output --json`
//   npm run status -- --window 300          # rates over the last 5 minutes
//
// It reads the stack's outputs, Docker (the containers' state, the proxy's
// access log) and the operator listener (Nginx's stub_status, each replica's
// metrics and health); it changes nothing.
import { execFile } from "child_process";
import * as fs from "fs";
import { promisify } from "util";
import { certificateFacts } from "../components/certificate";
import { request } from "../test/support/http";
import { peerCertificate, stackOutputs } from "./lib/deployed";
import { accessLogWindow, assess, ContainerState, parsePrometheus, parseStubStatus, StatusFacts } from "./lib/statusReport";

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

export async function gatherFacts(outputs: Record<string, unknown>, options: { stack: string; windowSeconds: number; nowMs?: number }): Promise<StatusFacts> {
    const text = (key: string) => (typeof outputs[key] === "string" ? (outputs[key] as string) : undefined);
    const url = text("url");
    const replicaNames = outputs.replicaNames;
    const proxyName = text("proxyContainerName");
    if (outputs.appServiceName) throw new Error("this is a swarm stack: `npm run status` reads one Docker host's containers; on a swarm use `docker service ps` on a manager (README, \"Swarm mode\")");
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
        peerCertificate(url, { insecure: true }).then(
            (peer) => certificateFacts(peer.certPem),
            (error) => (error instanceof Error ? error.message : String(error)),
        ),
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
        certificate: {
            served: typeof served === "string" ? served : { notAfter: served.notAfter, fingerprintSha256: served.fingerprintSha256, subject: served.subject },
            expectedFingerprintSha256: text("certificateFingerprintSha256"),
            renewalDays: typeof outputs.certificateRenewalDays === "number" ? outputs.certificateRenewalDays : undefined,
        },
        // What the replicas run: the served image (app + models); stacks from before it had the app image alone.
        images: { app: text("servedImage") ?? text("appImage"), proxy: text("proxyImage") },
    };
}

async function main(argv: string[]): Promise<number> {
    const flag = (name: string) => {
        const index = argv.indexOf(`--${name}`);
        return index >= 0 ? argv[index + 1] : undefined;
    };
    const options = ["--outputs", "--stack", "--window"];
    const unknown = argv.filter((a, i) => a.startsWith("--") && !options.includes(a) && !options.includes(argv[i - 1]));
    if (unknown.length) throw new Error(`unknown option ${unknown[0]}; the options are --outputs FILE|-, --stack NAME, --window SECONDS`);
    const stack = flag("stack") ?? process.env.STACK ?? "dev";
    const windowSeconds = Number(flag("window") ?? 60);
    if (!Number.isInteger(windowSeconds) || windowSeconds < 1 || windowSeconds > 86400) throw new Error(`--window is ${flag("window")}: expected whole seconds from 1 to 86400`);
    const file = flag("outputs");
    const outputs = file ? JSON.parse(fs.readFileSync(file === "-" ? 0 : file, "utf8")) : stackOutputs(stack);
    const report = assess(await gatherFacts(outputs, { stack, windowSeconds }));
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
