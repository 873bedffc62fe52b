// The status report of a swarm stack, apart from the gathering
// (scripts/status.ts gatherSwarmFacts): the nodes, the app, proxy and
// forwarder services with their tasks, which app tasks answer through the proxy, the
// certificate, and the verdict. Pure, so the unit tests give it facts and
// read the answer. Swarm's task API has no health and the tasks' metrics are
// on the overlay network, which the report does not reach: a task that
// answers /api/health through the proxy is the healthy one.
import { assessCertificate, CertificateStatus, shortId, StatusReport, table } from "./statusReport";

/** A node as `docker node ls` shows it. */
export interface SwarmNodeFacts {
    id: string;
    hostname: string;
    /** Ready, Down, Unknown, Disconnected. */
    status: string;
    /** Active, Pause, Drain. */
    availability: string;
    /** Leader, Reachable, Unreachable; empty for a worker. */
    managerStatus: string;
}

/** A task as `docker inspect --type task` shows it (what the report needs). */
export interface SwarmTaskFacts {
    id: string;
    slot?: number;
    /** Empty while Swarm has not placed it. */
    nodeId: string;
    /** Status.State: new, pending, assigned, preparing, starting, running, complete, failed, shutdown, rejected, orphaned, ... */
    state: string;
    /** DesiredState: running for the service's current tasks, shutdown for those it stopped or replaced. */
    desiredState: string;
    /** Status.Timestamp: when it entered its state. */
    since: string;
    /** Status.Err. */
    error?: string;
    /** Spec.ContainerSpec.Image: registry/name@sha256:... */
    image: string;
    containerId?: string;
}

export interface SwarmServiceFacts {
    name: string;
    /** The service does not exist on the swarm. */
    missing?: boolean;
    /** Spec.Mode.Replicated.Replicas. */
    desired: number;
    /** UpdateStatus, when the service was ever updated. */
    update?: { state: string; message?: string };
    /** Its current tasks, then the few that failed recently (selectTasks). */
    tasks: SwarmTaskFacts[];
}

/** One answer of GET <url>api/health through the proxy. */
export interface HealthAnswer {
    /** The answering task's hostname: the first 12 characters of its container ID. */
    replica: string;
    status: number;
    /** Model name: version. */
    models: Record<string, string>;
}

export interface SwarmFacts {
    stack: string;
    url: string;
    nowMs: number;
    /** The Docker endpoint read (-H); undefined: the docker CLI's default. */
    manager?: string;
    nodes: SwarmNodeFacts[];
    app: SwarmServiceFacts;
    proxy: SwarmServiceFacts;
    /** The port forwarders in front of the proxy (undefined: a stack deployed before they existed). */
    forwarder?: SwarmServiceFacts;
    /** The health checks made through the proxy: their answers, and why the others got none. */
    health: { samples: number; answers: HealthAnswer[]; failures: string[] };
    certificate: CertificateStatus;
    /** The stack's outputs servedImage and proxyImage: "name (registry/name@sha256:...)". */
    images: { app?: string; proxy?: string };
}

/** Failed tasks listed per service, at most. */
export const FAILED_TASKS_SHOWN = 3;

const ENDED_BADLY = ["failed", "rejected", "orphaned"];

/**
 * A service's current tasks (desired state running, or ready while Swarm
 * starts them), by slot, then the few most recent that failed since
 * `sinceMs`, newest first.
 */
export function selectTasks(tasks: SwarmTaskFacts[], sinceMs: number): SwarmTaskFacts[] {
    const at = (t: SwarmTaskFacts) => Date.parse(t.since) || 0;
    const current = tasks.filter((t) => t.desiredState === "running" || t.desiredState === "ready").sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0) || at(a) - at(b));
    const failed = tasks
        .filter((t) => !current.includes(t) && ENDED_BADLY.includes(t.state) && at(t) >= sinceMs)
        .sort((a, b) => at(b) - at(a))
        .slice(0, FAILED_TASKS_SHOWN);
    return [...current, ...failed];
}

/** A current task (desired state running) that runs. */
const isRunning = (t: SwarmTaskFacts) => t.desiredState === "running" && t.state === "running";

/** How many of a service's current tasks run. */
export function runningCount(tasks: SwarmTaskFacts[]): number {
    return tasks.filter(isRunning).length;
}

/** The digest of an image reference or of the outputs' "name (registry/name@sha256:...)". */
export function imageDigest(image: string | undefined): string | undefined {
    return /@(sha256:[0-9a-f]{64})/.exec(image ?? "")?.[1];
}

/** What an update state means, for the states that need attention. */
const UPDATE_TROUBLE: Record<string, string> = {
    paused: "Swarm paused its update halfway: its tasks may run two releases; run `pulumi up` with a fixed release",
    rollback_started: "Swarm is rolling back the last update (a new task failed): run `pulumi up` with a fixed release",
    rollback_paused: "Swarm's rollback of the last update failed too and is paused: its tasks may run two releases; run `pulumi up` with a fixed release",
    rollback_completed: "Swarm rolled back the last update (a new task failed): it runs the previous release, not the stack's; run `pulumi up` with a fixed release",
};

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
const shortContainer = (id: string | undefined) => (id ? id.slice(0, 12) : undefined);

/** The report and what needs attention (empty: healthy). */
export function assessSwarm(facts: SwarmFacts): StatusReport {
    const attention: string[] = [];
    const nodesById = new Map(facts.nodes.map((n) => [n.id, n]));
    const nodeName = (id: string) => (id ? `${nodesById.get(id)?.hostname ?? "?"} (${id.slice(0, 12)})` : "-");

    const nodeRows = [["node", "id", "status", "availability", "manager"]];
    for (const node of facts.nodes) {
        const name = `${node.hostname} (${node.id.slice(0, 12)})`;
        if (node.status !== "Ready") attention.push(`node ${name} is ${node.status}: Swarm runs no task there and moves its tasks to the other nodes`);
        if (node.managerStatus === "Unreachable") attention.push(`manager ${name} is unreachable: the swarm's managers keep a majority only while enough of them answer`);
        nodeRows.push([node.hostname, node.id.slice(0, 12), node.status, node.availability, node.managerStatus || "worker"]);
    }

    // Which app task answered: its container's hostname is its container ID's first 12 characters.
    const answersBy = new Map<string, HealthAnswer[]>();
    for (const answer of facts.health.answers) answersBy.set(answer.replica, [...(answersBy.get(answer.replica) ?? []), answer]);
    const anyAnswer = facts.health.answers.length > 0;
    const runningApp = facts.app.tasks.filter(isRunning);
    const answering = (task: SwarmTaskFacts): string => {
        if (facts.health.samples === 0 || !isRunning(task)) return "-";
        const answers = answersBy.get(shortContainer(task.containerId) ?? "") ?? [];
        const ok = answers.filter((a) => a.status === 200).length;
        if (ok) return `yes (${ok})`;
        return answers.length ? `no (${answers[0].status})` : "no";
    };

    const serviceSection = (service: SwarmServiceFacts, label: string, expectedImage: string | undefined): string[] => {
        if (service.missing) {
            attention.push(`the ${label} service ${service.name} does not exist: run \`pulumi up\`, which makes it again`);
            return [`${label[0].toUpperCase()}${label.slice(1)} service ${service.name}: missing`];
        }
        const running = runningCount(service.tasks);
        if (running < service.desired) {
            const waiting = service.tasks.filter((t) => t.desiredState === "running" && t.state !== "running");
            const why = waiting.map((t) => `task ${t.slot ?? t.id.slice(0, 12)} ${t.state}${t.error ? `: ${t.error}` : ""}`).join("; ");
            attention.push(`the ${label} service ${service.name} runs ${running} of ${service.desired} tasks${why ? ` (${why})` : ""}`);
        }
        const update = service.update;
        if (update && UPDATE_TROUBLE[update.state]) attention.push(`the ${label} service ${service.name}: update ${update.state}${update.message ? ` (${update.message})` : ""}: ${UPDATE_TROUBLE[update.state]}`);
        const digest = imageDigest(expectedImage);
        const rows = [["slot", "task", "node", "state", "since", "container", ...(label === "app" ? ["answers"] : []), "image", "error"]];
        for (const task of service.tasks) {
            const current = task.desiredState === "running" || task.desiredState === "ready";
            const taskDigest = imageDigest(task.image);
            if (current && digest && taskDigest !== digest) {
                attention.push(`${label} task ${task.slot ?? "-"} (${task.id.slice(0, 12)}) on ${nodeName(task.nodeId)} runs image ${taskDigest ? shortId(taskDigest) : task.image}, not the stack's ${shortId(digest)}`);
            }
            rows.push([
                String(task.slot ?? "-"),
                task.id.slice(0, 12),
                nodeName(task.nodeId),
                current ? task.state : `${task.state} (${task.desiredState})`,
                task.since ? iso(Date.parse(task.since)) : "-",
                shortContainer(task.containerId) ?? "-",
                ...(label === "app" ? [answering(task)] : []),
                taskDigest ? shortId(taskDigest) : task.image,
                task.error ?? "",
            ]);
        }
        const updateNote = update ? `; last update ${update.state}` : "";
        return [`${label[0].toUpperCase()}${label.slice(1)} service ${service.name}: ${running} of ${service.desired} tasks running${updateNote}`, ...table(rows)];
    };
    const appSection = serviceSection(facts.app, "app", facts.images.app);
    const proxySection = serviceSection(facts.proxy, "proxy", facts.images.proxy);
    const forwarderSection = facts.forwarder ? ["", ...serviceSection(facts.forwarder, "forwarder", facts.images.proxy)] : [];

    // What the health checks through the proxy found.
    const failures = facts.health.failures;
    if (facts.health.samples > 0 && !anyAnswer) {
        attention.push(`no task answered any of ${facts.health.samples} health checks through the proxy at ${facts.url}${failures.length ? `: ${failures[0]}` : ""}`);
    } else if (anyAnswer) {
        for (const task of runningApp) {
            const state = answering(task);
            if (state.startsWith("yes")) continue;
            const answers = answersBy.get(shortContainer(task.containerId) ?? "") ?? [];
            attention.push(
                `app task ${task.slot ?? "-"} (container ${shortContainer(task.containerId) ?? "?"} on ${nodeName(task.nodeId)}) ` +
                    (answers.length
                        ? `answered its health checks through the proxy with ${answers[0].status} only (its models are not loaded: its log says why)`
                        : `did not answer any of ${facts.health.samples} health checks through the proxy (is it in the proxy's upstreams? \`docker service logs ${facts.proxy.name}\`)`),
            );
        }
        const running = new Set(runningApp.map((t) => shortContainer(t.containerId)));
        for (const [replica, answers] of answersBy) {
            if (!running.has(replica)) attention.push(`replica ${replica} answered ${answers.length} of the ${facts.health.samples} health checks through the proxy but is not a running task of ${facts.app.name}`);
        }
        if (failures.length) attention.push(`${failures.length} of ${facts.health.samples} health checks through the proxy got no task's answer: ${failures[0]}`);
    }

    const certificate = assessCertificate(facts.certificate, facts.nowMs);
    attention.push(...certificate.attention);

    const models = [
        ...new Set(facts.health.answers.filter((a) => a.status === 200).flatMap((a) => Object.entries(a.models).map(([name, version]) => `${name} ${version}`))),
    ].sort();
    const ready = facts.nodes.filter((n) => n.status === "Ready").length;
    const lines = [
        `Swarm stack ${facts.stack} at ${facts.url}  (manager ${facts.manager ?? "the docker CLI's default"}; ${iso(facts.nowMs)})`,
        "",
        `Nodes: ${ready} of ${facts.nodes.length} ready`,
        ...table(nodeRows),
        "",
        ...appSection,
        "",
        ...proxySection,
        ...forwarderSection,
        "",
        `Health through the proxy: ${facts.health.samples} checks of ${facts.url}api/health, ${facts.health.answers.filter((a) => a.status === 200).length} answered 200 by ${answersBy.size} replica${answersBy.size === 1 ? "" : "s"}`,
        "(Swarm's task API has no health, and each task's metrics and health are on the swarm's overlay network, which status does not read: a task that answers /api/health through the proxy is healthy.)",
        `Certificate: ${certificate.line}`,
        `Images: app ${facts.images.app ?? "?"}; proxy ${facts.images.proxy ?? "?"}`,
        ...(models.length ? [`Models: ${models.join(", ")}`] : []),
        "",
        attention.length
            ? `ATTENTION: ${attention.join("; ")}`
            : `OK: ${runningCount(facts.app.tasks)} of ${facts.app.desired} app tasks running and answering through the proxy, ${runningCount(facts.proxy.tasks)} of ${facts.proxy.desired} proxy tasks running, ` +
              (facts.forwarder ? `${runningCount(facts.forwarder.tasks)} of ${facts.forwarder.desired} forwarder tasks running, ` : "") +
              `${ready} of ${facts.nodes.length} nodes ready, certificate valid and outside its renewal window`,
    ];
    return { text: lines.join("\n"), attention };
}
