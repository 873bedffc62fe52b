// What a host's life does to the deployed stack: the Docker engine restarted
// gracefully, the engine crashed, the host rebooted (every process killed).
// The default stack is replayed on the real engine in the order `pulumi up`
// makes it (as changes.test.ts does), a paced load runs through each event,
// and the stack must serve again by itself, within 30 s of the engine
// answering, with every one of its containers running. Each event runs
// twice: the engine starts containers in no fixed order, so one lucky
// restart proves nothing. The engine hands out the replicas' addresses
// anew at each start, so every replica must answer through Nginx again.
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import { buildTestImages, docker as dockerCli, dockerSuite, freeSubnet, inspect, TEST_IMAGES } from "../support/docker";
import { EngineEvent, restartEngine, whyNoRestart } from "../support/engineRestart";
import { enginePlan } from "../support/enginePlan";
import { request, servingAgain as serveAgain } from "../support/http";
import { formatTraffic, startPacedLoad } from "../support/pacedLoad";
import { replayer, Replayer } from "../support/replay";
import { ProgramRun, RESOURCE_TYPES, runProgram } from "../unit/program";
import { DEFAULTS } from "../../components/config";
import { freePort } from "./harness";

jest.setTimeout(15 * 60_000);

const RECOVERY_LIMIT_SECONDS = 30;
const withDocker = dockerSuite("the engine restarts");
const noRestart = whyNoRestart();
const describeRestarts = noRestart ? withDocker.describe.skip : withDocker.describe;
if (noRestart) console.log(`Skipped: the engine-restart suite (${noRestart})`);

describeRestarts("the stack serves again by itself after each event of a host's life", () => {
    const stack = `rs${crypto.randomBytes(3).toString("hex")}`;
    const images = new Map<string, string>();
    const measured: string[] = [];
    let run: ProgramRun;
    let docker: Replayer;

    const url = () => String(run.outputs.url.value);
    const trust = () => String(run.outputs.certificatePem.value);
    /** The stack's containers that must be running (the one-shot steps excepted). */
    const serving = () =>
        run.ofType(RESOURCE_TYPES.container).filter((c) => !c.inputs.attach).map((c) => String(c.inputs.name));
    const states = (names: string[]) =>
        names.map((name) => `${name}=${spawnSync("docker", ["inspect", "--format", "{{.State.Status}}", name], { encoding: "utf8" }).stdout.trim()}`);
    const replicaNames = () => run.ofType(RESOURCE_TYPES.container).filter((c) => c.inputs.labels?.some((l: { label: string; value: string }) => l.label === "mlapi.role" && l.value === "app")).map((c) => String(c.inputs.name));
    /** Each replica's address on the app network, as the engine gave it. */
    const addresses = () =>
        replicaNames().map((name) => Object.values<{ IPAddress: string }>(inspect("container", name).NetworkSettings.Networks).map((n) => n.IPAddress).join(""));

    /** The replicas that answer /api/health through Nginx, over 20 requests, once every replica does (or after 30 s). */
    async function answeringReplicas(): Promise<string[]> {
        const deadline = Date.now() + 30_000;
        let seen = new Set<string>();
        while (Date.now() < deadline) {
            seen = new Set<string>();
            for (let i = 0; i < 20; i++) {
                const response = await request(`${url()}api/health`, { ca: trust(), timeoutMs: 2000 }).catch(() => undefined);
                if (response?.status === 200) seen.add(response.json().replica);
            }
            if (seen.size === replicaNames().length) break;
            await new Promise((r) => setTimeout(r, 500));
        }
        return [...seen].sort();
    }

    const servingAgain = (from: number) => serveAgain(url(), trust(), from, () => `containers: ${states(serving()).join(" ")}`);

    beforeAll(async () => {
        withDocker.ensured();
        await buildTestImages();
        const config = { httpsPort: String(await freePort()), httpPort: String(await freePort()), operatorPort: String(await freePort()), appSubnet: freeSubnet() };
        run = await runProgram(config, { stack });
        const real: Record<string, string> = { "images-app": TEST_IMAGES.runtime, "images-models": TEST_IMAGES.app, "images-proxy": TEST_IMAGES.proxy };
        for (const image of run.ofType(RESOURCE_TYPES.image)) images.set(image.state.repoDigest, real[image.name]);
        docker = replayer(images);
        await docker.apply(enginePlan([], run.resources));
        await servingAgain(Date.now());
    }, 20 * 60_000);

    afterAll(() => {
        for (const { kind, name } of docker?.live().sort((a, b) => Number(b.kind === "container") - Number(a.kind === "container")) ?? []) {
            spawnSync("docker", kind === "container" ? ["rm", "--force", "--volumes", name] : [kind, "rm", name], { stdio: "ignore" });
        }
        console.log(["what each engine event did to traffic (replayed stack; per client kind: 2 kept-alive HTTPS connections, 20 predictions/s):", ...measured].join("\n  "));
    });

    test("a replica the engine starts again at a new address is reached again: the keeper reloads Nginx", async () => {
        const [replica] = replicaNames();
        const network = run.ofType(RESOURCE_TYPES.network).find((n) => n.inputs.internal)!.inputs.name as string;
        const placeholder = `${stack}-placeholder`;
        const [before] = addresses();
        try {
            dockerCli(["stop", "--time", "35", replica]);
            // Something else takes the replica's address while it is down, as after an engine restart.
            dockerCli(["run", "--detach", "--name", placeholder, `--network=${network}`, `--ip=${before}`, DEFAULTS.baseImage, "sleep", "600"]);
            dockerCli(["start", replica]);
            const [after] = addresses();
            expect(after).not.toBe(before);
            expect(await answeringReplicas()).toEqual(replicaNames().sort());
            measured.push(`replica at a new address (${before} -> ${after}): every replica answers again`);
        } finally {
            spawnSync("docker", ["rm", "--force", placeholder], { stdio: "ignore" });
        }
    });

    test.each<[EngineEvent, number]>([
        ["graceful", 1],
        ["graceful", 2],
        ["crash", 1],
        ["crash", 2],
        ["reboot", 1],
        ["reboot", 2],
    ])("engine %s (%i): serving again within 30 s of the engine answering, every container running", async (event, round) => {
        const loads = (["http1-resend", "http2"] as const).map((client) =>
            startPacedLoad({ url: url(), ca: trust(), connections: 2, ratePerSecond: 20, maxSeconds: 240, client }),
        );
        let recoverySeconds = Number.NaN;
        let answering: string[] = [];
        try {
            await new Promise((r) => setTimeout(r, 1000));
            const before = addresses();
            const restart = await restartEngine(event);
            const backAt = await servingAgain(restart.answeringAt);
            recoverySeconds = (backAt - restart.answeringAt) / 1000;
            answering = await answeringReplicas();
            // A little steady traffic after the recovery, in the reports too.
            await new Promise((r) => setTimeout(r, 2000));
            const label = `engine ${event} (${round})`;
            const after = addresses();
            const moved = before.filter((address, i) => address !== after[i]).length;
            measured.push(
                `${label}: engine down ${((restart.answeringAt - restart.stoppedAt) / 1000).toFixed(1)} s, serving again ${recoverySeconds.toFixed(1)} s after it answered; ` +
                    `${moved} of ${before.length} replicas at a new address (${before.join(", ")} -> ${after.join(", ")}), ${answering.length} answering (${restart.killed})`,
            );
        } finally {
            for (const report of await Promise.all(loads.map((l) => l.stop()))) measured.push(`  ${formatTraffic(`engine ${event} (${round})`, report, undefined, "the engine was down")}`);
        }
        expect(recoverySeconds).toBeLessThan(RECOVERY_LIMIT_SECONDS);
        // Nginx reaches every replica, wherever the engine put it.
        expect(answering).toEqual(replicaNames().sort());
        // Everything the stack runs is back, not only enough of it to answer.
        const names = serving();
        expect(states(names)).toEqual(names.map((name) => `${name}=running`));
    });
});
