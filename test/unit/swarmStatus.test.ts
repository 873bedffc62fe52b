// The swarm status report's logic (scripts/lib/swarmStatus.ts) on given
// facts: which tasks are listed, and the verdict needs attention exactly
// when something is wrong, naming it.
import { assessSwarm, imageDigest, runningCount, selectTasks, SwarmFacts, SwarmTaskFacts } from "../../scripts/lib/swarmStatus";

const NOW = Date.parse("2026-12-01T16:00:00Z");
const APP_DIGEST = `sha256:${"a".repeat(64)}`;
const PROXY_DIGEST = `sha256:${"b".repeat(64)}`;
const OLD_DIGEST = `sha256:${"c".repeat(64)}`;
const APP_IMAGE = `registry.internal:5000/mlapi-dev-models@${APP_DIGEST}`;
const PROXY_IMAGE = `registry.internal:5000/mlapi-dev-proxy@${PROXY_DIGEST}`;
const MODELS = { "decision-tree-classifier": "1.0.0+1090980fbb79", "decision-tree-regressor": "1.0.0+0e921100ac21" };

// Node IDs are 25 characters; the test swarm's nodes share a hostname.
const MANAGER = "m1anager0000000000000000a";
const WORKER_1 = "w1orker00000000000000000b";
const WORKER_2 = "w2orker00000000000000000c";

const task = (fields: Partial<SwarmTaskFacts> & Pick<SwarmTaskFacts, "id">): SwarmTaskFacts => ({
    slot: 1,
    nodeId: MANAGER,
    state: "running",
    desiredState: "running",
    since: "2026-12-01T15:00:00.000Z",
    image: APP_IMAGE,
    ...fields,
});

/** The container ID of task n: its first 12 characters are the task's hostname, which /api/health names. */
const container = (n: number) => `${String(n).repeat(12)}${"0".repeat(52)}`;

function healthyFacts(): SwarmFacts {
    const appTasks = [
        task({ id: "apptask1xxxxxxxxxxxxxxxxx", slot: 1, nodeId: WORKER_1, containerId: container(1) }),
        task({ id: "apptask2xxxxxxxxxxxxxxxxx", slot: 2, nodeId: WORKER_2, containerId: container(2) }),
    ];
    const proxyTasks = [task({ id: "proxytask1xxxxxxxxxxxxxxx", slot: 1, nodeId: MANAGER, image: PROXY_IMAGE, containerId: container(9) })];
    return {
        stack: "dev",
        url: "https://10.0.0.10/",
        nowMs: NOW,
        manager: "ssh://admin@10.0.0.10",
        nodes: [
            { id: MANAGER, hostname: "swarm-node", status: "Ready", availability: "Active", managerStatus: "Leader" },
            { id: WORKER_1, hostname: "swarm-node", status: "Ready", availability: "Active", managerStatus: "" },
            { id: WORKER_2, hostname: "swarm-node", status: "Ready", availability: "Active", managerStatus: "" },
        ],
        app: { name: "mlapi-dev-app", desired: 2, update: { state: "completed", message: "update completed" }, tasks: appTasks },
        proxy: { name: "mlapi-dev-proxy", desired: 1, tasks: proxyTasks },
        health: {
            samples: 12,
            answers: Array.from({ length: 12 }, (_, i) => ({ replica: container(1 + (i % 2)).slice(0, 12), status: 200, models: MODELS })),
            failures: [],
        },
        certificate: { served: { notAfter: "2027-03-01T15:00:00.000Z", fingerprintSha256: "AB:CD", subject: "C=KE\nCN=localhost" }, expectedFingerprintSha256: "AB:CD", renewalDays: 30 },
        images: { app: `registry.internal:5000/mlapi-dev-models:latest (${APP_IMAGE})`, proxy: `registry.internal:5000/mlapi-dev-proxy:latest (${PROXY_IMAGE})` },
    };
}

/** After a release whose new task failed: Swarm rolled the app back, its tasks run the previous image. */
function rolledBack(): SwarmFacts {
    const facts = healthyFacts();
    facts.app.update = { state: "rollback_completed", message: "rollback completed" };
    for (const t of facts.app.tasks) t.image = `registry.internal:5000/mlapi-dev-models@${OLD_DIGEST}`;
    facts.app.tasks.push(task({ id: "apptask0xxxxxxxxxxxxxxxxx", slot: 1, nodeId: WORKER_1, state: "failed", desiredState: "shutdown", since: "2026-12-01T15:59:00.000Z", error: "task: non-zero exit (3)" }));
    return facts;
}

describe("the tasks listed", () => {
    test("the current tasks by slot, then the last failed ones since the window began, newest first, at most 3", () => {
        const tasks = [
            task({ id: "t2", slot: 2 }),
            task({ id: "t1", slot: 1 }),
            task({ id: "old-shutdown", slot: 1, state: "shutdown", desiredState: "shutdown" }),
            ...[10, 20, 30, 40].map((minutes) => task({ id: `failed-${minutes}`, slot: 2, state: "failed", desiredState: "shutdown", since: new Date(NOW - minutes * 60_000).toISOString(), error: "task: non-zero exit (1)" })),
            task({ id: "failed-long-ago", state: "failed", desiredState: "shutdown", since: "2026-11-30T00:00:00.000Z" }),
            task({ id: "t3-starting", slot: 3, state: "starting" }),
        ];
        expect(selectTasks(tasks, NOW - 3600_000).map((t) => t.id)).toEqual(["t1", "t2", "t3-starting", "failed-10", "failed-20", "failed-30"]);
        expect(runningCount(tasks)).toBe(2);
    });

    test("an image's digest, from a reference or from the outputs' 'name (reference)'", () => {
        expect(imageDigest(APP_IMAGE)).toBe(APP_DIGEST);
        expect(imageDigest(`mlapi-dev-models:latest (${APP_IMAGE})`)).toBe(APP_DIGEST);
        expect(imageDigest("mlapi-dev-models:latest")).toBeUndefined();
    });
});

describe("the verdict", () => {
    test("a healthy swarm stack: OK, naming the counts, with its nodes, tasks and models", () => {
        const report = assessSwarm(healthyFacts());
        expect(report.attention).toEqual([]);
        expect(report.text).toMatch(/^OK: 2 of 2 app tasks running and answering through the proxy, 1 of 1 proxy tasks running, 3 of 3 nodes ready, certificate valid/m);
        expect(report.text).toMatch(/^Swarm stack dev at https:\/\/10\.0\.0\.10\/ {2}\(manager ssh:\/\/admin@10\.0\.0\.10; 2026-12-01T16:00:00Z\)$/m);
        expect(report.text).toMatch(/^ {2}swarm-node\s+w1orker00000\s+Ready\s+Active\s+worker$/m);
        expect(report.text).toMatch(/^ {2}2\s+apptask2xxxx\s+swarm-node \(w2orker00000\)\s+running\s+2026-12-01T15:00:00Z\s+222222222222\s+yes \(6\)\s+aaaaaaaaaaaa$/m);
        expect(report.text).toMatch(/^ {2}1\s+proxytask1xx\s+swarm-node \(m1anager0000\)\s+running\s+2026-12-01T15:00:00Z\s+999999999999\s+bbbbbbbbbbbb$/m);
        expect(report.text).toContain("Certificate: localhost, 89 days left");
        expect(report.text).toContain("Models: decision-tree-classifier 1.0.0+1090980fbb79, decision-tree-regressor 1.0.0+0e921100ac21");
        // Said once: what status does not read on a swarm.
        expect(report.text.match(/overlay network/g)).toHaveLength(1);
    });

    test.each<[string, (f: SwarmFacts) => void, RegExp]>([
        [
            "an app task missing (one pending, no node fits)",
            (f) => {
                f.app.tasks[1] = task({ id: "apptask3xxxxxxxxxxxxxxxxx", slot: 2, nodeId: "", state: "pending", error: "no suitable node (insufficient resources on 3 nodes)" });
                f.health.answers = f.health.answers.filter((a) => a.replica === "111111111111");
            },
            /the app service mlapi-dev-app runs 1 of 2 tasks \(task 2 pending: no suitable node \(insufficient resources on 3 nodes\)\)/,
        ],
        [
            "the last update rolled back",
            (f) => (f.app.update = { state: "rollback_completed", message: "rollback completed" }),
            /the app service mlapi-dev-app: update rollback_completed \(rollback completed\): Swarm rolled back the last update .* run `pulumi up` with a fixed release/,
        ],
        ["an update paused", (f) => (f.proxy.update = { state: "paused", message: "update paused due to failure or early termination of task x" }), /the proxy service mlapi-dev-proxy: update paused \(update paused due to failure/],
        ["a node down", (f) => (f.nodes[2].status = "Down"), /node swarm-node \(w2orker00000\) is Down/],
        ["a manager unreachable", (f) => (f.nodes[0].managerStatus = "Unreachable"), /manager swarm-node \(m1anager0000\) is unreachable/],
        [
            "a running app task not answering through the proxy",
            (f) => (f.health.answers = f.health.answers.filter((a) => a.replica === "111111111111")),
            /app task 2 \(container 222222222222 on swarm-node \(w2orker00000\)\) did not answer any of 12 health checks through the proxy/,
        ],
        [
            "an app task answering 503 (its models not loaded)",
            (f) => f.health.answers.filter((a) => a.replica === "222222222222").forEach((a) => (a.status = 503)),
            /app task 2 \(container 222222222222 .*\) answered its health checks through the proxy with 503 only/,
        ],
        [
            "answers from a replica that is no running task",
            (f) => f.health.answers.push({ replica: "deadbeef0000", status: 200, models: MODELS }),
            /replica deadbeef0000 answered 1 of the 12 health checks through the proxy but is not a running task of mlapi-dev-app/,
        ],
        [
            "no answer through the proxy at all",
            (f) => (f.health = { samples: 12, answers: [], failures: Array(12).fill("connect ECONNREFUSED 10.0.0.10:443") }),
            /no task answered any of 12 health checks through the proxy at https:\/\/10\.0\.0\.10\/: connect ECONNREFUSED/,
        ],
        ["some checks answered by the proxy alone", (f) => (f.health.failures = ["HTTP 502 bad_gateway without a replica's answer"]), /1 of 12 health checks through the proxy got no task's answer: HTTP 502/],
        ["an app task on another image", (f) => (f.app.tasks[0].image = `registry.internal:5000/mlapi-dev-models@${OLD_DIGEST}`), /app task 1 \(apptask1xxxx\) on swarm-node \(w1orker00000\) runs image cccccccccccc, not the stack's aaaaaaaaaaaa/],
        ["a proxy task on another image", (f) => (f.proxy.tasks[0].image = `mlapi-dev-proxy:latest@${OLD_DIGEST}`), /proxy task 1 \(proxytask1xx\) .* runs image cccccccccccc, not the stack's bbbbbbbbbbbb/],
        ["a service gone", (f) => (f.proxy = { name: "mlapi-dev-proxy", missing: true, desired: 0, tasks: [] }), /the proxy service mlapi-dev-proxy does not exist: run `pulumi up`/],
        ["the certificate in its renewal window", (f) => (f.nowMs = Date.parse("2027-02-01T16:00:00Z")), /the certificate has 27 days left, inside its 30-day renewal window: run `pulumi up`/],
        ["the certificate expired", (f) => (f.nowMs = Date.parse("2027-03-02T00:00:00Z")), /the certificate expired on 2027-03-01/],
        ["another certificate served", (f) => (f.certificate.expectedFingerprintSha256 = "EF:01"), /a certificate other than the stack's/],
    ])("%s: ATTENTION, naming it", (_, breakIt, message) => {
        const facts = healthyFacts();
        breakIt(facts);
        const report = assessSwarm(facts);
        expect(report.attention.join("\n")).toMatch(message);
        expect(report.text).toMatch(/^ATTENTION: /m);
        expect(report.text).not.toMatch(/^OK: /m);
    });

    test("a recently failed task shows with its error, and alone needs no attention", () => {
        const facts = healthyFacts();
        facts.app.tasks.push(task({ id: "apptask0xxxxxxxxxxxxxxxxx", slot: 2, nodeId: WORKER_2, state: "failed", desiredState: "shutdown", since: "2026-12-01T15:59:00.000Z", error: "task: non-zero exit (3)" }));
        const report = assessSwarm(facts);
        expect(report.attention).toEqual([]);
        expect(report.text).toMatch(/^ {2}2\s+apptask0xxxx\s+swarm-node \(w2orker00000\)\s+failed \(shutdown\)\s+2026-12-01T15:59:00Z\s+-\s+-\s+aaaaaaaaaaaa\s+task: non-zero exit \(3\)$/m);
        expect(report.text).toMatch(/^OK: /m);
    });

    test("a release rolled back (docs/metrics.md's example): the update and each task on the old image", () => {
        const facts = rolledBack();
        const report = assessSwarm(facts);
        expect(report.attention).toEqual([
            "the app service mlapi-dev-app: update rollback_completed (rollback completed): Swarm rolled back the last update (a new task failed): it runs the previous release, not the stack's; run `pulumi up` with a fixed release",
            "app task 1 (apptask1xxxx) on swarm-node (w1orker00000) runs image cccccccccccc, not the stack's aaaaaaaaaaaa",
            "app task 2 (apptask2xxxx) on swarm-node (w2orker00000) runs image cccccccccccc, not the stack's aaaaaaaaaaaa",
        ]);
        expect(report.text).toMatch(/^ {2}1\s+apptask0xxxx\s+swarm-node \(w1orker00000\)\s+failed \(shutdown\)\s+2026-12-01T15:59:00Z\s+-\s+-\s+aaaaaaaaaaaa\s+task: non-zero exit \(3\)$/m);
    });

    test("a worker down, its task orphaned: the node and the missing task, each named once", () => {
        const facts = healthyFacts();
        facts.nodes[2].status = "Down";
        facts.app.tasks[1].state = "orphaned";
        facts.health.answers = facts.health.answers.filter((a) => a.replica === "111111111111");
        const { attention } = assessSwarm(facts);
        expect(attention).toEqual([
            "node swarm-node (w2orker00000) is Down: Swarm runs no task there and moves its tasks to the other nodes",
            "the app service mlapi-dev-app runs 1 of 2 tasks (task 2 orphaned)",
        ]);
    });
});
