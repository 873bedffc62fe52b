// Every kind of change, replayed on a real Docker engine under a paced load:
// the program runs under mocks before and after the change, enginePlan
// derives the steps the Pulumi engine would take (from the two resource
// graphs, their dependencies and replacement options), and the replayer
// makes those very containers, networks and volumes with the real images,
// in that order. Both kinds of client (HTTP/1.1 that resends once, HTTP/2)
// must see no failed request and no gap of half a second or more, for every
// change, the new proxy image (the one that replaces Nginx) included.
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import { DEFAULTS } from "../../components/config";
import { renewalGeneration } from "../../components/certificate";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildServedImage, buildTestImages, dockerSuite, freeSubnet, imageVariant, inspect, TEST_IMAGES, TEST_MODEL_REPOSITORY } from "../support/docker";
import { MODEL_PATHS, SEED_PAYLOADS, postJson } from "../support/http";
import { describeStep, enginePlan } from "../support/enginePlan";
import { ENGINE_CLIENTS, formatTraffic, servingLost, startPacedLoad, TrafficReport } from "../support/pacedLoad";
import { replayer, Replayer } from "../support/replay";
import { ProgramRun, RESOURCE_TYPES, runProgram } from "../unit/program";
import { freePort } from "./harness";

jest.setTimeout(10 * 60_000);

const { app: APP_IMAGE, proxy: PROXY_IMAGE } = TEST_IMAGES;
const withDocker = dockerSuite("the change replays");

const DAY = 24 * 3600 * 1000;
const periodDays = DEFAULTS.certValidityDays - DEFAULTS.certRenewalDays;
/** The start of a renewal generation, so the whole file runs in one. */
const NOW = (renewalGeneration(Date.now(), DEFAULTS) + 1) * periodDays * DAY;

withDocker.describe("each change, replayed in the engine's order on the real images, keeps serving", () => {
    const stack = `e2e${crypto.randomBytes(3).toString("hex")}`;
    const variants = { app2: `mlapi-test-app:${stack}-v2`, app3: `mlapi-test-app:${stack}-v3`, proxy2: `mlapi-test-proxy:${stack}-v2`, models2: `mlapi-test-app:${stack}-models2` };
    /** The classifier's version in the second model repository (the built-in one with a new version of it). */
    const NEW_CLASSIFIER_VERSION = `2.0.0-${stack}`;
    /** Real images by mocked image ID. */
    const images = new Map<string, string>();
    const measured: string[] = [];
    let config: Record<string, string>;
    let current: ProgramRun;
    let docker: Replayer;

    /** Runs the program under mocks and maps its image IDs to the real images for that build. */
    async function program(change: Record<string, string>, options: { now?: number; app?: "v2" | "v3"; proxy?: "v2"; models?: "v2" } = {}): Promise<ProgramRun> {
        const builds = {
            ...(options.app ? { "images-app": options.app } : {}),
            ...(options.proxy ? { "images-proxy": options.proxy } : {}),
            ...(options.models ? { "images-models": options.models } : {}),
        };
        const run = await runProgram({ ...config, ...change }, { stack, now: options.now ?? NOW, images: builds });
        const real: Record<string, string> = {
            "images-app": TEST_IMAGES.runtime,
            // The served image: what the replicas run (the keeper runs the app image alone).
            "images-models": options.models ? variants.models2 : options.app ? variants[options.app === "v2" ? "app2" : "app3"] : APP_IMAGE,
            "images-proxy": options.proxy ? variants.proxy2 : PROXY_IMAGE,
        };
        for (const image of run.ofType(RESOURCE_TYPES.image)) images.set(image.state.repoDigest, real[image.name]);
        return run;
    }

    /** What clients trust: the local CA where there is one, else the self-signed certificate itself. */
    const trust = (...runs: ProgramRun[]) => [...new Set(runs.map((r) => String((r.outputs.caCertificatePem ?? r.outputs.certificatePem).value)))].join("\n");
    const url = (run: ProgramRun) => String(run.outputs.url.value);

    /**
     * Replays the steps from the current state to `next` under every kind of
     * client (2 connections at 20 predictions/s each, 80/s in all, under the
     * per-client rate limit), Python's http.client and requests, which never
     * resend, among them; returns their reports.
     */
    async function changeUnderLoad(change: string, next: ProgramRun): Promise<TrafficReport[]> {
        const steps = enginePlan(current.resources, next.resources);
        const loads = ENGINE_CLIENTS.map((client) =>
            startPacedLoad({ url: url(current), ca: trust(current, next), connections: 2, ratePerSecond: 20, maxSeconds: 300, client }),
        );
        let lines: string[] = [];
        let reports: TrafficReport[] = [];
        try {
            await new Promise((resolve) => setTimeout(resolve, 500));
            lines = await docker.apply(steps);
            current = next;
            await new Promise((resolve) => setTimeout(resolve, 1000));
        } finally {
            reports = await Promise.all(loads.map((load) => load.stop()));
            for (const report of reports) measured.push(formatTraffic(change, report));
            console.log([`${change}: the engine's steps`, ...lines, ...reports.map((r) => formatTraffic(change, r))].join("\n  "));
        }
        return reports;
    }

    const keptServing = (reports: TrafficReport[]) => expect(servingLost(reports, 0.5)).toEqual([]);

    /** The running Nginx container's ID: the same one means every client connection kept its server. */
    const proxyId = () => inspect("container", String(current.outputs.proxyContainerName.value)).Id;

    /** A served image of the built-in repository in which the classifier has a new version (what a user's new model version is). */
    async function servedImageWithNewVersion(): Promise<void> {
        const repository = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-repo-"));
        try {
            fs.cpSync(TEST_MODEL_REPOSITORY, repository, { recursive: true });
            const card = path.join(repository, "decision-tree-classifier", "model.json");
            fs.writeFileSync(card, JSON.stringify({ ...JSON.parse(fs.readFileSync(card, "utf8")), version: NEW_CLASSIFIER_VERSION }, null, 2));
            await buildServedImage(variants.models2, TEST_IMAGES.runtime, repository);
        } finally {
            fs.rmSync(repository, { recursive: true, force: true });
        }
    }

    beforeAll(async () => {
        withDocker.ensured();
        await buildTestImages();
        await Promise.all([imageVariant(APP_IMAGE, variants.app2), imageVariant(APP_IMAGE, variants.app3), imageVariant(PROXY_IMAGE, variants.proxy2), servedImageWithNewVersion()]);
        config = { httpsPort: String(await freePort()), httpPort: String(await freePort()), operatorPort: String(await freePort()), appSubnet: freeSubnet() };
        docker = replayer(images);
        const first = await program({});
        const lines = await docker.apply(enginePlan([], first.resources));
        console.log(["first `pulumi up`, replayed:", ...lines].join("\n  "));
        current = first;
    }, 20 * 60_000);

    afterAll(() => {
        // The changed frontend stays for the later changes of this file; resetModules would keep the factory.
        jest.dontMock("../../components/proxyConfig");
        // Whatever is left after a failure, containers first.
        for (const { kind, name } of docker?.live().sort((a, b) => Number(b.kind === "container") - Number(a.kind === "container")) ?? []) {
            spawnSync("docker", kind === "container" ? ["rm", "--force", "--volumes", name] : [kind, "rm", name], { stdio: "ignore" });
        }
        spawnSync("docker", ["image", "rm", ...Object.values(variants)], { stdio: "ignore" });
        console.log(["what each change did to traffic (replayed; per client kind: 2 kept-alive HTTPS connections, 30 predictions/s):", ...measured].join("\n  "));
    });

    test("the first deployment serves the API over HTTPS", async () => {
        const load = startPacedLoad({ url: url(current), ca: trust(current), connections: 1, ratePerSecond: 10, maxSeconds: 5, client: "http1" });
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const report = await load.stop();
        expect([report.failed, report.requests]).toEqual([0, expect.any(Number)]);
        expect(report.requests).toBeGreaterThan(3);
    });

    test("replicas 2 -> 3", async () => {
        const proxy = proxyId();
        keptServing(await changeUnderLoad("replicas 2 -> 3", await program({ replicas: "3" })));
        expect(proxyId()).toBe(proxy);
    });

    test("a new app image (3 replicas)", async () => {
        keptServing(await changeUnderLoad("new app image (3 replicas)", await program({ replicas: "3" }, { app: "v2" })));
        for (const name of current.outputs.replicaNames.value as string[]) expect(inspect("container", name).Config.Labels["mlapi.variant"]).toBe(variants.app2);
    });

    test("a changed limit (maxBodyKb 64 -> 96)", async () => {
        const proxy = proxyId();
        keptServing(await changeUnderLoad("maxBodyKb 64 -> 96", await program({ replicas: "3", maxBodyKb: "96" }, { app: "v2" })));
        expect(proxyId()).toBe(proxy);
    });

    test("a changed frontend file", async () => {
        // From here on, every run of the program has the changed file.
        jest.doMock("../../components/proxyConfig", () => {
            const actual = jest.requireActual("../../components/proxyConfig");
            return { ...actual, frontendFiles: () => actual.frontendFiles().map((f: any) => (f.path === "index.html" ? { ...f, content: `${f.content}<!-- ${stack} -->` } : f)) };
        });
        const proxy = proxyId();
        keptServing(await changeUnderLoad("frontend file changed", await program({ replicas: "3", maxBodyKb: "96" }, { app: "v2" })));
        expect(proxyId()).toBe(proxy);
    });

    test("a switch to tlsMode local-ca", async () => {
        // Clients that trusted the self-signed certificate now trust the CA (both, during the switch).
        const proxy = proxyId();
        keptServing(await changeUnderLoad("tlsMode self-signed -> local-ca", await program({ replicas: "3", maxBodyKb: "96", tlsMode: "local-ca" }, { app: "v2" })));
        expect(proxyId()).toBe(proxy);
    });

    test("a renewed certificate", async () => {
        // A renewed self-signed certificate is a new trust anchor (clients pinned to the old one must fail); the local CA stays.
        const proxy = proxyId();
        const before = current.outputs.certificateFingerprintSha256.value;
        keptServing(await changeUnderLoad("certificate renewed", await program({ replicas: "3", maxBodyKb: "96", tlsMode: "local-ca" }, { app: "v2", now: NOW + periodDays * DAY })));
        expect(current.outputs.certificateFingerprintSha256.value).not.toBe(before);
        expect(proxyId()).toBe(proxy);
    });

    test("replicas 3 -> 1", async () => {
        const proxy = proxyId();
        keptServing(await changeUnderLoad("replicas 3 -> 1", await program({ replicas: "1", maxBodyKb: "96", tlsMode: "local-ca" }, { app: "v2", now: NOW + periodDays * DAY })));
        expect(proxyId()).toBe(proxy);
    });

    test("a new app image with replicas 1", async () => {
        const [before] = current.outputs.replicaNames.value as string[];
        keptServing(await changeUnderLoad("new app image (1 replica)", await program({ replicas: "1", maxBodyKb: "96", tlsMode: "local-ca" }, { app: "v3", now: NOW + periodDays * DAY })));
        const [after] = current.outputs.replicaNames.value as string[];
        expect(after).not.toBe(before);
        expect(spawnSync("docker", ["inspect", before]).status).not.toBe(0);
    });

    test("a new proxy image: the new Nginx starts beside the old one on the same ports, which stay open", async () => {
        const [proxy, holder] = [proxyId(), inspect("container", `mlapi-${stack}-proxy-ports`).Id];
        keptServing(await changeUnderLoad("new proxy image", await program({ replicas: "1", maxBodyKb: "96", tlsMode: "local-ca" }, { app: "v3", proxy: "v2", now: NOW + periodDays * DAY })));
        expect(proxyId()).not.toBe(proxy);
        expect(inspect("container", String(current.outputs.proxyContainerName.value)).Config.Labels["mlapi.variant"]).toBe(variants.proxy2);
        expect(inspect("container", `mlapi-${stack}-proxy-ports`).Id).toBe(holder);
    });

    test("a new model version: the replicas roll onto it, answers carry it", async () => {
        const proxy = proxyId();
        const next = await program({ replicas: "1", maxBodyKb: "96", tlsMode: "local-ca" }, { app: "v3", proxy: "v2", models: "v2", now: NOW + periodDays * DAY });
        expect(enginePlan(current.resources, next.resources).map(describeStep).filter((s) => /images|app-/.test(s))).toEqual(["update images-models", "create app-1", "delete app-1 (replaced)"]);
        keptServing(await changeUnderLoad("new model version (1 replica)", next));
        expect(proxyId()).toBe(proxy);
        const answer = await postJson(`${url(current)}${MODEL_PATHS.classifier}`, SEED_PAYLOADS.classifier, { ca: trust(current) });
        expect(answer.json()).toMatchObject({ model: "decision-tree-classifier", model_version: NEW_CLASSIFIER_VERSION });
    });

    test("`pulumi destroy`, replayed, leaves nothing", async () => {
        const steps = enginePlan(current.resources, []);
        expect(steps.every((s) => s.op === "delete")).toBe(true);
        console.log(steps.map(describeStep).join("\n"));
        await docker.apply(steps);
        expect(docker.live()).toEqual([]);
        const left = spawnSync("bash", ["-c", `docker ps -a --format '{{.Names}}'; docker network ls --format '{{.Name}}'; docker volume ls --format '{{.Name}}'`], { encoding: "utf8" }).stdout;
        expect(left.split("\n").filter((l) => l.startsWith(`mlapi-${stack}`))).toEqual([]);
    });
});
