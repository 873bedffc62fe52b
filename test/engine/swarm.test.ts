// The real-engine suite of swarm mode: `pulumi up` with platform "swarm",
// through the real docker provider, against a real 3-node test swarm
// (test/support/swarm.ts): the images built by this machine's engine and
// pushed to the swarm's registry with its login, the services created on
// the manager's socket. Then the checks of the replayed suite
// (test/swarm/stack.test.ts) the engine itself must pass: no warning, no
// change right after `up`, no drift on refresh, TLS and both models, tasks
// on two nodes; scaling and a new app image under load without a failed
// request; a proxy setting that rolls the proxy start-first behind the
// port forwarder (no failed request, no gap, clients' own addresses in its
// log); a broken app image that Swarm rolls back by itself while the old
// tasks serve and `pulumi up` fails saying so; a worker dropping off the
// network under load; the edge node's engine restarted, crashed and
// rebooted, and a worker rebooted, under load (serving again by itself, and
// nothing for `pulumi up` to change afterwards); and `pulumi destroy`
// leaving nothing on any node.
//
// Runs where the real-engine suite runs (a `pulumi` CLI with the plugins)
// and a swarm can be made; otherwise it is skipped, with the reason.
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Stack } from "@pulumi/pulumi/automation";
import { DEFAULTS } from "../../components/config";
import { assessSwarm } from "../../scripts/lib/swarmStatus";
import { formatReport, runSmoke } from "../../scripts/smoke";
import { gatherSwarmFacts } from "../../scripts/status";
import { EngineEvent } from "../support/engineRestart";
import { PROJECT, refreshDrift, scratchStack, ScratchStack, upReporting, whyNoEngine } from "../support/engineStack";
import { ENGINE_CLIENTS, formatTraffic, servingLost, startPacedLoad, TrafficReport } from "../support/pacedLoad";
import { waitFor } from "../support/processes";
import { createSwarm, Swarm, swarmProblems } from "../support/swarm";
import { answeringReplicas, busiestWorker, expectClientAddress, expectBoundedLoss, expectServingAgain, expectWorkerBack, LONE_MANAGER_RECOVERY_SECONDS, loseWorkerUnderLoad, restartNodeUnderLoad, runningTasks, servedCertificate } from "../support/swarmChecks";
import { engineApi } from "../support/swarmReplay";

const skipReason = whyNoEngine() ?? swarmProblems();
const describeEngine = skipReason ? describe.skip : describe;
if (skipReason) console.log(`real-engine swarm suite skipped: ${skipReason}`);

jest.setTimeout(20 * 60_000);

describeEngine(`a real Pulumi engine deploys swarm mode onto a 3-node swarm${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
    const stackName = `swarm-${crypto.randomBytes(3).toString("hex")}`;
    const prefix = `mlapi-${stackName}`;
    let swarm: Swarm;
    let project: ScratchStack;
    let stack: Stack;
    let api: ReturnType<typeof engineApi>;
    let destroyed = false;
    const measured: string[] = [];

    const outputs = async () => Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value]));
    const tasks = () => runningTasks(api, `${prefix}-app`, `${prefix}-app`);

    /**
     * `pulumi up` under a paced load (the four kinds of client, 2 connections,
     * 20 predictions/s each, Python's http.client and requests, which never
     * resend, among them); the up's error, if it failed.
     */
    async function upUnderLoad(change: string): Promise<{ reports: TrafficReport[]; error?: string }> {
        const out = await outputs();
        const loads = ENGINE_CLIENTS.map((client) =>
            startPacedLoad({ url: String(out.url), ca: String(out.certificatePem), connections: 2, ratePerSecond: 20, maxSeconds: 900, client }),
        );
        let seconds = 0;
        let error: string | undefined;
        let reports: TrafficReport[] = [];
        const started = Date.now();
        try {
            await new Promise((resolve) => setTimeout(resolve, 1000));
            await upReporting(stack).catch((e: unknown) => (error = String(e)));
            seconds = (Date.now() - started) / 1000;
            await new Promise((resolve) => setTimeout(resolve, 1000));
        } finally {
            reports = await Promise.all(loads.map((load) => load.stop()));
            for (const report of reports) {
                measured.push(formatTraffic(change, report, seconds));
            }
        }
        return { reports, error };
    }

    /** Every kind of client lost nothing (and, with `gapUnder`, never waited that long for an answer). */
    const noneFailed = (reports: TrafficReport[], gapUnder?: number) => expect(servingLost(reports, gapUnder)).toEqual([]);

    async function smoke(replicas: number): Promise<void> {
        const out = await outputs();
        const checks = await runSmoke({ url: String(out.url), trustPem: String(out.certificatePem), replicas });
        console.log(formatReport(String(out.url), checks));
        expect(checks.filter((c) => !c.ok)).toEqual([]);
    }

    beforeAll(async () => {
        swarm = await createSwarm({ nodes: 3, managers: 1, tmpfsSize: os.freemem() > 8 * 2 ** 30 ? "4g" : undefined });
        api = engineApi(swarm.manager.host.replace(/^unix:\/\//, ""));
        project = await scratchStack(
            stackName,
            {
                platform: "swarm",
                registryAddress: swarm.registry,
                registryUsername: swarm.registryAuth.username,
                swarmManagerHost: swarm.manager.host,
                edgeAddress: swarm.manager.address,
                appSubnet: "10.233.78.0/24",
            },
            { registryPassword: swarm.registryAuth.password },
        );
        stack = project.stack;
        await stack.setConfig(`${PROJECT}:certIpAddresses[0]`, { value: "127.0.0.1" }, true);
        await stack.setConfig(`${PROJECT}:certIpAddresses[1]`, { value: swarm.manager.address }, true);
    }, 300_000);

    afterAll(async () => {
        try {
            if (stack && !destroyed) await stack.destroy({ color: "never" }).catch((error) => console.error(`swarm engine suite: destroy failed: ${error}`));
            if (project) await project.remove();
        } finally {
            // docker.Image never deletes what it built (nor what it pushed): the suite removes the local images.
            if (swarm) spawnSync("docker", ["image", "rm", "--force", `${swarm.registry}/${prefix}-app:latest`, `${swarm.registry}/${prefix}-proxy:latest`], { stdio: "ignore" });
            if (swarm) await swarm.teardown();
            console.log([`real-engine swarm suite, stack ${stackName}:`, ...measured].join("\n  "));
        }
    }, 10 * 60_000);

    test("`pulumi up` from nothing builds, pushes and deploys onto the swarm, and prints no warning", async () => {
        const { seconds, warnings } = await upReporting(stack);
        measured.push(`first pulumi up: ${seconds.toFixed(1)} s`);
        expect(warnings).toEqual([]);
        const out = await outputs();
        expect(out).toMatchObject({ url: `https://${swarm.manager.address}/`, appServiceName: `${prefix}-app`, proxyServiceName: `${prefix}-proxy`, forwarderServiceName: `${prefix}-forwarder`, appReplicas: 2 });
        expect(String(out.appImage)).toContain(`${swarm.registry}/${prefix}-app@sha256:`);
        expect(await tasks()).toHaveLength(2);
    });

    test("`pulumi preview` expects no changes after `up`, nor after a `refresh` that finds no drift", async () => {
        await stack.preview({ expectNoChanges: true, color: "never" });
        expect(await refreshDrift(stack)).toEqual([]);
        await stack.preview({ expectNoChanges: true, color: "never" });
    });

    test("TLS with the stack's certificate, both models, the frontend, and tasks on two nodes answering", async () => {
        const out = await outputs();
        expect((await servedCertificate(swarm.manager.address, String(out.certificatePem))).fingerprint256).toBe(out.certificateFingerprintSha256);
        await smoke(2);
        const running = await tasks();
        expect(new Set(running.map((t) => t.node)).size).toBe(2);
        const seen = await answeringReplicas(String(out.url), String(out.certificatePem), 30);
        expect([...seen].sort()).toEqual(running.map((t) => t.container.slice(0, 12)).sort());
    });

    /** `npm run status` on the swarm, asking the manager: nothing needs attention. */
    async function statusOk(replicas: number): Promise<void> {
        const report = assessSwarm(await gatherSwarmFacts(await outputs(), { stack: stackName, host: swarm.manager.host }));
        console.log(report.text);
        expect(report.attention).toEqual([]);
        expect(report.text).toMatch(new RegExp(`^OK: ${replicas} of ${replicas} app tasks running and answering through the proxy, 1 of 1 proxy tasks running, 1 of 1 forwarder tasks running, 3 of 3 nodes ready`, "m"));
    }

    test("`npm run status` on the swarm: every node ready, every task running the stack's image and answering through the proxy", () => statusOk(2));

    test("`replicas` 2 -> 4 adds tasks the proxy finds, with no failed request", async () => {
        await stack.setConfig(`${PROJECT}:replicas`, { value: "4" });
        const { reports, error } = await upUnderLoad("replicas 2 -> 4");
        expect(error).toBeUndefined();
        noneFailed(reports);
        const out = await outputs();
        await waitFor("all 4 tasks to answer", async () => ((await answeringReplicas(String(out.url), String(out.certificatePem), 24)).size === 4 ? true : undefined), 60_000, 500);
        await smoke(4);
    });

    test("a new app image (a code change) rolls the tasks start-first, with no failed request", async () => {
        const before = await tasks();
        fs.appendFileSync(path.join(project.workDir, "app", "gunicorn.conf.py"), `\n# swarm engine suite: a code change (${crypto.randomBytes(4).toString("hex")})\n`);
        const { reports, error } = await upUnderLoad("new app image (4 tasks)");
        expect(error).toBeUndefined();
        noneFailed(reports);
        const after = await tasks();
        expect(after).toHaveLength(4);
        expect(after.filter((t) => before.some((b) => b.container === t.container))).toEqual([]);
        expect(new Set(after.map((t) => t.image)).size).toBe(1);
    });

    test("a proxy setting (rateLimitBurst) rolls the proxy start-first behind the forwarder, which never changes: no failed request, no gap", async () => {
        const forwarders = await runningTasks(api, `${prefix}-forwarder`, `${prefix}-front`);
        const proxies = await runningTasks(api, `${prefix}-proxy`, `${prefix}-front`);
        await stack.setConfig(`${PROJECT}:rateLimitBurst`, { value: "300" });
        const { reports, error } = await upUnderLoad("a proxy setting (proxy rolls start-first behind the forwarder)");
        expect(error).toBeUndefined();
        noneFailed(reports, 0.5);
        expect((await runningTasks(api, `${prefix}-forwarder`, `${prefix}-front`)).map((t) => t.container)).toEqual(forwarders.map((t) => t.container));
        const after = await runningTasks(api, `${prefix}-proxy`, `${prefix}-front`);
        expect(after).toHaveLength(1);
        expect(proxies.map((t) => t.container)).not.toContain(after[0].container);
        const out = await outputs();
        measured.push(`client address in the proxy's log: ${await expectClientAddress({ swarm, api, prefix, frontSubnet: DEFAULTS.frontSubnet, url: String(out.url), ca: String(out.certificatePem) })}`);
        await stack.preview({ expectNoChanges: true, color: "never" });
    });

    test("a broken app image: Swarm rolls the service back by itself, the old tasks keep serving, and `pulumi up` fails saying so", async () => {
        const good = (await tasks())[0].image;
        const conf = path.join(project.workDir, "app", "gunicorn.conf.py");
        const original = fs.readFileSync(conf, "utf8");
        // Gunicorn refuses to start: every new task fails its start, as a bad release would.
        fs.writeFileSync(conf, `${original}\nraise SystemExit("swarm engine suite: a broken release")\n`);
        try {
            const { reports, error } = await upUnderLoad("broken app image (rolled back)");
            expect(error).toMatch(/rollback/i);
            noneFailed(reports);
        } finally {
            fs.writeFileSync(conf, original);
        }
        const after = await tasks();
        expect(after).toHaveLength(4);
        expect(after.every((t) => t.image === good)).toBe(true);
        // The provider fails `up` once the rollback is under way; Swarm finishes it.
        await waitFor(
            "Swarm to finish the rollback",
            async () => ((await api("GET", `/services/${prefix}-app`)).UpdateStatus.State === "rollback_completed" ? true : undefined),
            120_000,
            500,
        );
        // With the release fixed, the next `up` converges again.
        expect((await upReporting(stack)).warnings).toEqual([]);
        await stack.preview({ expectNoChanges: true, color: "never" });
    });

    test("a worker dropping off the network: requests failing meanwhile are few, and none once Swarm has rescheduled its tasks", async () => {
        const out = await outputs();
        const result = await loseWorkerUnderLoad({ swarm, api, service: `${prefix}-app`, network: `${prefix}-app`, url: String(out.url), ca: String(out.certificatePem), replicas: 4 });
        measured.push(...result.lines);
        expectBoundedLoss(result);
        // Swarm's own convergence is no change to the stack.
        await stack.preview({ expectNoChanges: true, color: "never" });
    });

    test.each<EngineEvent>(["graceful", "crash", "reboot"])(
        "the edge node's engine, %s: the stack serves again by itself once the overlay rejoins, and `pulumi up` afterwards changes nothing",
        async (event) => {
            const out = await outputs();
            const result = await restartNodeUnderLoad({ swarm, api, node: swarm.manager, event, service: `${prefix}-app`, network: `${prefix}-app`, url: String(out.url), ca: String(out.certificatePem), replicas: 4 });
            measured.push(...result.lines);
            expectServingAgain(result, LONE_MANAGER_RECOVERY_SECONDS);
            await stack.preview({ expectNoChanges: true, color: "never" });
        },
    );

    test("a worker rebooted: few requests fail, it runs tasks again, and the stack needs no change", async () => {
        const out = await outputs();
        const worker = await busiestWorker(swarm, api, `${prefix}-app`, `${prefix}-app`);
        const result = await restartNodeUnderLoad({ swarm, api, node: worker, event: "reboot", service: `${prefix}-app`, network: `${prefix}-app`, url: String(out.url), ca: String(out.certificatePem), replicas: 4 });
        measured.push(...result.lines);
        expectWorkerBack(result);
        await stack.preview({ expectNoChanges: true, color: "never" });
        await waitFor("every node Ready again", async () => ((await api<any[]>("GET", "/nodes")).every((n) => n.Status.State === "ready") ? true : undefined), 60_000, 500);
        await statusOk(4);
    });

    test("`pulumi destroy` leaves nothing of the stack on any node", async () => {
        await stack.destroy({ color: "never" });
        destroyed = true;
        expect(await api("GET", "/services")).toEqual([]);
        expect(await api("GET", "/configs")).toEqual([]);
        expect(await api("GET", "/secrets")).toEqual([]);
        expect((await api<any[]>("GET", "/networks")).filter((n) => n.Name.startsWith(prefix))).toEqual([]);
        for (const node of swarm.nodes) {
            await waitFor(`${node.name} to have no container of the stack`, async () => (swarm.docker(node, ["ps", "-aq", "--filter", "label=com.docker.swarm.service.name"]) === "" ? true : undefined), 60_000, 500);
        }
    });
});
