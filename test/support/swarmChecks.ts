// What the swarm-mode suites look at on a deployed swarm stack: the app
// service's running tasks (from the manager, by node ID), which of them
// answer through the proxy, and the certificate an edge node serves.
import { spawnSync } from "child_process";
import * as os from "os";
import * as tls from "tls";
import { subnetsOverlap } from "../../components/config";
import { EngineEvent, EngineRestart } from "./engineRestart";
import { request, servingAgain } from "./http";
import { formatTraffic, startPacedLoad, TrafficReport } from "./pacedLoad";
import { waitFor } from "./processes";
import { Swarm, SwarmNode } from "./swarm";
import { engineApi } from "./swarmReplay";

export interface AppTask {
    /** Swarm node ID (the test swarm's nodes share one hostname). */
    node: string;
    container: string;
    /** Its address on the app network. */
    address: string;
    image: string;
}

/** The running tasks of `service`, with their addresses on `network`. */
export async function runningTasks(api: ReturnType<typeof engineApi>, service: string, network: string): Promise<AppTask[]> {
    const tasks: any[] = await api("GET", `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [service], "desired-state": ["running"] }))}`);
    return tasks
        .filter((t) => t.Status.State === "running")
        .map((t) => ({
            node: t.NodeID,
            container: t.Status.ContainerStatus.ContainerID,
            address: String(t.NetworksAttachments.find((n: any) => n.Network.Spec.Name === network).Addresses[0]).split("/")[0],
            image: t.Spec.ContainerSpec.Image,
        }));
}

/** The replicas (their hostnames: short container IDs) that answered `count` health checks through the proxy at `url`. */
export async function answeringReplicas(url: string, ca: string, count: number): Promise<Set<string>> {
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
        const response = await request(`${url}api/health`, { ca, timeoutMs: 5000 });
        if (response.status === 200) seen.add(response.json().replica);
    }
    return seen;
}

/** The certificate served on host:443, verified against `ca` for the name `localhost`. */
export function servedCertificate(host: string, ca: string): Promise<tls.PeerCertificate> {
    return new Promise((resolve, reject) => {
        const socket = tls.connect({ host, port: 443, servername: "localhost", ca }, () => {
            resolve(socket.getPeerCertificate());
            socket.end();
        });
        socket.on("error", reject);
    });
}

const CLIENTS = ["http1-resend", "http2"] as const;

/**
 * A worker that runs app tasks drops off the network, as a machine that
 * crashes or loses power (its tasks still run, nothing reaches them), under
 * a paced load from both kinds of client: the reports until Swarm runs all
 * `replicas` tasks on the other nodes, then those of 10 s more once the
 * proxy sends only to running tasks. The worker then comes back, and Swarm
 * has it stop the tasks it moved. Returns lines for the measurements.
 */
export async function loseWorkerUnderLoad(args: {
    swarm: Swarm;
    api: ReturnType<typeof engineApi>;
    service: string;
    network: string;
    url: string;
    ca: string;
    replicas: number;
}): Promise<{ during: TrafficReport[]; converged: TrafficReport[]; lines: string[] }> {
    const tasks = await runningTasks(args.api, args.service, args.network);
    const worker = args.swarm.nodes.find((n) => n.role === "worker" && tasks.some((t) => t.node === n.id)) as SwarmNode;
    const lost = tasks.filter((t) => t.node === worker.id).length;
    const lines: string[] = [];
    const loads = CLIENTS.map((client) => startPacedLoad({ url: args.url, ca: args.ca, connections: 2, ratePerSecond: 20, maxSeconds: 300, client }));
    let rescheduledSeconds = 0;
    let during: TrafficReport[];
    try {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const cut = Date.now();
        spawnSync("ip", ["-n", worker.netns, "link", "set", "eth0", "down"]);
        await waitFor(
            `Swarm to run all ${args.replicas} tasks on the other nodes`,
            async () => {
                const now = await runningTasks(args.api, args.service, args.network);
                return now.length === args.replicas && now.every((t) => t.node !== worker.id) ? true : undefined;
            },
            180_000,
            500,
        );
        rescheduledSeconds = (Date.now() - cut) / 1000;
    } finally {
        during = await Promise.all(loads.map((load) => load.stop()));
    }
    for (const report of during) lines.push(formatTraffic(`worker lost (${lost} of ${args.replicas} tasks), until rescheduled after ${rescheduledSeconds.toFixed(1)} s`, report, undefined, "in flight on the lost node"));

    await waitFor("the proxy to send only to running tasks", async () => ((await answeringReplicas(args.url, args.ca, 3 * args.replicas)).size === args.replicas ? true : undefined), 60_000, 500);
    const after = CLIENTS.map((client) => startPacedLoad({ url: args.url, ca: args.ca, connections: 2, ratePerSecond: 20, maxSeconds: 10, client }));
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const converged = await Promise.all(after.map((load) => load.stop()));
    for (const report of converged) lines.push(formatTraffic("after the worker loss, converged", report));

    spawnSync("ip", ["-n", worker.netns, "link", "set", "eth0", "up"]);
    await waitFor(
        "the worker to be Ready again with no task of the stack",
        async () => {
            const node = await args.api("GET", `/nodes/${worker.id}`);
            const running = args.swarm.docker(worker, ["ps", "-q", "--filter", `label=com.docker.swarm.service.name=${args.service}`]);
            return node.Status.State === "ready" && running === "" ? true : undefined;
        },
        120_000,
        1000,
    );
    return { during, converged, lines };
}

/** At most 10 requests or a tenth of them failed, in each report. */
function expectFewFailed(reports: TrafficReport[]): void {
    for (const report of reports) expect(report.failed).toBeLessThanOrEqual(Math.max(10, report.requests * 0.1));
}

/** Few failures while a worker is lost (the requests in flight on its tasks, and those sent there before DNS dropped them), none once converged. */
export function expectBoundedLoss(result: { during: TrafficReport[]; converged: TrafficReport[] }): void {
    expectFewFailed(result.during);
    for (const report of result.converged) expect([report.client, report.failed]).toEqual([report.client, 0]);
}

/**
 * One event of a host's life (engineRestart.ts's graceful restart, crash or
 * reboot) done to one node's engine under a paced load from both kinds of
 * client. Waits until the stack serves again, Swarm runs all `replicas` app
 * tasks and every one answers through the proxy; returns the times (from the
 * engine answering again), the traffic reports and lines for the measurements.
 */
export async function restartNodeUnderLoad(args: {
    swarm: Swarm;
    api: ReturnType<typeof engineApi>;
    node: SwarmNode;
    event: EngineEvent;
    service: string;
    network: string;
    url: string;
    ca: string;
    replicas: number;
}): Promise<{ servingSeconds: number; convergedSeconds: number; tasksOnNode: number; reports: TrafficReport[]; lines: string[] }> {
    const onNode = (tasks: AppTask[]) => tasks.filter((t) => t.node === args.node.id).length;
    const before = onNode(await runningTasks(args.api, args.service, args.network));
    const loads = CLIENTS.map((client) => startPacedLoad({ url: args.url, ca: args.ca, connections: 2, ratePerSecond: 20, maxSeconds: 300, client }));
    let restart: EngineRestart | undefined;
    let servingSeconds = Number.NaN;
    let convergedSeconds = Number.NaN;
    let tasksOnNode = 0;
    let reports: TrafficReport[] = [];
    try {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        restart = await args.swarm.restartNode(args.node, args.event);
        const answeringAt = restart.answeringAt;
        const services = () => args.swarm.docker(args.swarm.manager, ["service", "ps", "--format", "{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}", args.service]);
        servingSeconds = ((await servingAgain(args.url, args.ca, answeringAt, () => `tasks:\n${services()}`)) - answeringAt) / 1000;
        await waitFor(
            `Swarm to run all ${args.replicas} tasks, every one answering through the proxy`,
            async () => {
                const tasks = await runningTasks(args.api, args.service, args.network);
                if (tasks.length !== args.replicas) return undefined;
                if ((await answeringReplicas(args.url, args.ca, 6 * args.replicas)).size !== args.replicas) return undefined;
                tasksOnNode = onNode(tasks);
                return true;
            },
            180_000,
            500,
        );
        convergedSeconds = (Date.now() - answeringAt) / 1000;
        // A little steady traffic after the recovery, in the reports too.
        await new Promise((resolve) => setTimeout(resolve, 2000));
    } finally {
        reports = await Promise.all(loads.map((load) => load.stop()));
    }
    const label = `${args.node.name} (${args.node.role}) engine ${args.event}`;
    const lines = [
        `${label}: engine down ${((restart!.answeringAt - restart!.stoppedAt) / 1000).toFixed(1)} s; serving again ${servingSeconds.toFixed(1)} s after it answered, ` +
            `all ${args.replicas} tasks running and answering after ${convergedSeconds.toFixed(1)} s; its tasks ${before} before, ${tasksOnNode} after (${restart!.killed})`,
        ...reports.map((report) => `  ${formatTraffic(label, report, undefined, `${args.node.name}'s engine restarted`)}`),
    ];
    return { servingSeconds, convergedSeconds, tasksOnNode, reports, lines };
}

/**
 * How long after its engine answers again an edge node that is the swarm's
 * only manager may take to serve: its overlay learns the other nodes' tasks
 * only when their gossip reaches it again (measured 2-64 s; an edge node
 * that is a worker rejoins through the running manager in about 5 s:
 * docs/swarm.md).
 */
export const LONE_MANAGER_RECOVERY_SECONDS = 90;

/**
 * After an engine event: the stack serves again within `limitSeconds` of the
 * engine answering; meanwhile clients get connection errors or the proxy's
 * 503 (no task reachable yet), never another answer.
 */
export function expectServingAgain(result: { servingSeconds: number; reports: TrafficReport[] }, limitSeconds: number): void {
    expect(result.servingSeconds).toBeLessThan(limitSeconds);
    for (const report of result.reports) expect(Object.keys(report.failures).filter((kind) => kind.startsWith("HTTP ") && kind !== "HTTP 503")).toEqual([]);
}

/** A node rebooted for a moment gets tasks again; requests failing meanwhile are few (those in flight on its tasks). */
export function expectWorkerBack(result: { servingSeconds: number; tasksOnNode: number; reports: TrafficReport[] }): void {
    expectServingAgain(result, 30);
    expectFewFailed(result.reports);
    expect(result.tasksOnNode).toBeGreaterThan(0);
}

/**
 * The client address the proxy's access log gives a request to `url` + a
 * unique path, made from this machine through the edge node's forwarder,
 * checked: not the forwarder's own (on `frontSubnet`), but the address the
 * forwarder's peer had. That is this machine's on a real cluster; the test
 * swarm's daemons run without iptables, so docker-proxy relays a host-mode
 * port, from the edge node's docker_gwbridge.
 */
export async function expectClientAddress(args: { swarm: Swarm; api: ReturnType<typeof engineApi>; prefix: string; frontSubnet: string; url: string; ca: string }): Promise<string> {
    const uri = `/api/v1/client-address-probe-${Date.now()}`;
    const response = await request(`${args.url}${uri.slice(1)}`, { ca: args.ca });
    if (response.status !== 404) throw new Error(`the probe ${uri} answered ${response.status}, not the API's 404`);
    const proxies = await runningTasks(args.api, `${args.prefix}-proxy`, `${args.prefix}-front`);
    const logged = await waitFor(`a proxy task to log ${uri}`, () => {
        for (const task of proxies) {
            const node = args.swarm.nodes.find((n) => n.id === task.node) as SwarmNode;
            const line = args.swarm.docker(node, ["logs", task.container]).split("\n").find((l) => l.includes(`"uri":"${uri}"`));
            if (line) return String(JSON.parse(line).remote_addr);
        }
        return undefined;
    }, 10_000, 500);
    const forwarders = await runningTasks(args.api, `${args.prefix}-forwarder`, `${args.prefix}-front`);
    const relays = forwarders.flatMap((task) => {
        const node = args.swarm.nodes.find((n) => n.id === task.node) as SwarmNode;
        return (JSON.parse(args.swarm.docker(node, ["network", "inspect", "docker_gwbridge", "--format", "{{json .IPAM.Config}}"])) as { Subnet: string }[]).map((c) => c.Subnet);
    });
    const ours = Object.values(os.networkInterfaces()).flatMap((addresses) => (addresses ?? []).filter((a) => a.family === "IPv4").map((a) => a.address));
    const inSubnet = (subnet: string) => subnetsOverlap(`${logged}/32`, subnet);
    expect(inSubnet(args.frontSubnet)).toBe(false);
    expect({ logged, fromClientSide: ours.includes(logged) || relays.some(inSubnet) }).toEqual({ logged, fromClientSide: true });
    return logged;
}

/** The worker running most of `service`'s tasks. */
export async function busiestWorker(swarm: Swarm, api: ReturnType<typeof engineApi>, service: string, network: string): Promise<SwarmNode> {
    const tasks = await runningTasks(api, service, network);
    const count = (node: SwarmNode) => tasks.filter((t) => t.node === node.id).length;
    return swarm.nodes.filter((n) => n.role === "worker").sort((a, b) => count(b) - count(a))[0];
}
