// The operator listener and `npm run status` on the stack's real topology:
// the program runs under mocks, the replayer makes its containers with the
// real images (as test/e2e/changes.test.ts does), and the status command
// reads it as an operator would: healthy, then with a replica killed.
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parsePrometheus, Sample } from "../../scripts/lib/statusReport";
import { buildTestImages, docker, dockerSuite, freeSubnet, inspect, TEST_IMAGES } from "../support/docker";
import { enginePlan } from "../support/enginePlan";
import { MODEL_PATHS, postJson, request, SEED_PAYLOADS } from "../support/http";
import { replayer, Replayer } from "../support/replay";
import { plainDeep, ProgramRun, RESOURCE_TYPES, runProgram } from "../unit/program";
import { freePort, PROJECT_ROOT } from "./harness";

jest.setTimeout(5 * 60_000);

const { app: APP_IMAGE, proxy: PROXY_IMAGE } = TEST_IMAGES;
const withDocker = dockerSuite("the status tests");

/** `npm run status -- --outputs FILE`, as an operator runs it. */
function status(outputsFile: string): { code: number | null; out: string } {
    const result = spawnSync(path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), ["scripts/status.ts", "--outputs", outputsFile], { cwd: PROJECT_ROOT, encoding: "utf8", timeout: 60_000 });
    console.log(`npm run status (exit ${result.status}):\n${result.stdout}${result.stderr}`);
    return { code: result.status, out: result.stdout };
}

withDocker.describe("the operator listener and `npm run status` on the deployed topology", () => {
    const stack = `st${crypto.randomBytes(3).toString("hex")}`;
    const images = new Map<string, string>();
    let run: ProgramRun;
    let replay: Replayer;
    let outputs: Record<string, any>;
    let outputsFile: string;
    let dir: string;
    const operator = (p: string) => `${outputs.operatorUrl}${p}`;
    const trust = () => String(outputs.certificatePem);

    /** Every replica's metrics, read through the operator listener by name. */
    async function replicaMetrics(): Promise<Sample[]> {
        const answers = await Promise.all((outputs.replicaNames as string[]).map((name) => request(operator(`replicas/${name}/metrics`))));
        for (const answer of answers) expect(answer.status).toBe(200);
        return answers.flatMap((a) => parsePrometheus(a.body));
    }
    const total = (samples: Sample[], name: string, labels: Record<string, string>) =>
        samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);

    beforeAll(async () => {
        withDocker.ensured();
        await buildTestImages();
        const config = { httpsPort: String(await freePort()), httpPort: String(await freePort()), operatorPort: String(await freePort()), appSubnet: freeSubnet() };
        run = await runProgram(config, { stack });
        const real: Record<string, string> = { "images-app": TEST_IMAGES.runtime, "images-models": APP_IMAGE, "images-proxy": PROXY_IMAGE };
        for (const image of run.ofType(RESOURCE_TYPES.image)) images.set(image.state.repoDigest, real[image.name]);
        replay = replayer(images);
        await replay.apply(enginePlan([], run.resources));
        // The outputs a real engine prints: the images' real IDs where the mocks made some up.
        outputs = Object.fromEntries(Object.entries(run.outputs).map(([key, { value }]) => [key, plainDeep(value)]));
        for (const [mocked, image] of images) {
            for (const key of ["appImage", "servedImage", "proxyImage"]) outputs[key] = String(outputs[key]).replace(mocked, inspect("image", image).Id);
        }
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-status-"));
        outputsFile = path.join(dir, "outputs.json");
        fs.writeFileSync(outputsFile, JSON.stringify(outputs, null, 2));
    }, 15 * 60_000);

    afterAll(() => {
        for (const { kind, name } of replay?.live().sort((a, b) => Number(b.kind === "container") - Number(a.kind === "container")) ?? []) {
            spawnSync("docker", kind === "container" ? ["rm", "--force", "--volumes", name] : [kind, "rm", name], { stdio: "ignore" });
        }
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test("the operator listener names the stack's replicas and serves Nginx's stub_status", async () => {
        const index = await request(operator(""));
        expect(index.status).toBe(200);
        expect(index.json().replicas.map((r: { name: string }) => r.name)).toEqual(outputs.replicaNames);
        const stub = await request(operator("nginx/status"));
        expect(stub.body).toMatch(/^Active connections: \d+/);
        // The same figures for Prometheus, from the exporter beside Nginx.
        const exported = parsePrometheus((await request(operator("nginx/metrics"))).body);
        expect(exported.find((m) => m.name === "nginx_up")?.value).toBe(1);
        expect(exported.find((m) => m.name === "nginx_http_requests_total")?.value).toBeGreaterThan(0);
        expect(exported.map((m) => m.name)).toEqual(expect.arrayContaining(["nginx_connections_active", "nginx_connections_accepted", "nginx_connections_handled"]));
        for (const name of outputs.replicaNames as string[]) expect((await request(operator(`replicas/${name}/health`))).json().status).toBe("ok");
        expect((await request(operator("replicas/nobody/metrics"))).status).toBe(404);
        // Prometheus's HTTP service discovery: every target answers with metrics.
        const targets: { targets: string[]; labels: Record<string, string> }[] = (await request(operator("prometheus/targets"))).json();
        expect(targets.map((t) => t.labels.replica ?? t.labels.component)).toEqual(["proxy", ...outputs.replicaNames]);
        for (const t of targets) {
            expect(t.targets).toEqual([new URL(String(outputs.operatorUrl)).host]);
            const scraped = await request(`http://${t.targets[0]}${t.labels.__metrics_path__}`);
            expect([t.labels.__metrics_path__, scraped.status]).toEqual([t.labels.__metrics_path__, 200]);
            expect(parsePrometheus(scraped.body).length).toBeGreaterThan(5);
        }
    });

    test("the metrics count what happens: N good and M bad predictions, summed over the replicas", async () => {
        const before = await replicaMetrics();
        const [good, bad] = [12, 5];
        const url = `${outputs.url}${MODEL_PATHS.classifier}`;
        for (let i = 0; i < good; i++) expect((await postJson(url, SEED_PAYLOADS.classifier, { ca: trust() })).status).toBe(200);
        for (let i = 0; i < bad; i++) expect((await postJson(url, { ...SEED_PAYLOADS.classifier, monthly_fee: -5 }, { ca: trust() })).status).toBe(400);
        const after = await replicaMetrics();
        const delta = (name: string, labels: Record<string, string>) => total(after, name, labels) - total(before, name, labels);
        const model = "decision-tree-classifier";
        expect(delta("mlapi_prediction_requests_total", { model, outcome: "ok" })).toBe(good);
        expect(delta("mlapi_prediction_requests_total", { model, outcome: "invalid_input" })).toBe(bad);
        expect(delta("mlapi_prediction_validation_errors_total", { model, field: "monthly_fee" })).toBe(bad);
    });

    test("the public ports serve none of it, and the app network is refused", async () => {
        for (const p of ["nginx/status", `replicas/${outputs.replicaNames[0]}/metrics`, "metrics"]) {
            expect((await request(`${outputs.url}${p}`, { ca: trust() })).status).toBe(404);
        }
        // A replica (or anything on the app network) asking the proxy's address there.
        const appNetwork = `mlapi-${stack}-app`;
        const proxyAddress = inspect("container", String(outputs.portHolderName)).NetworkSettings.Networks[appNetwork].IPAddress;
        const probe = [
            "import urllib.request, urllib.error",
            "for path in ['/', '/nginx/status', '/replicas/x/metrics']:",
            "    try:",
            `        print(urllib.request.urlopen("http://${proxyAddress}:9180" + path, timeout=5).status)`,
            "    except urllib.error.HTTPError as e:",
            "        print(e.code)",
        ].join("\n");
        expect(docker(["run", "--rm", "--network", appNetwork, "--user", "10001:10001", "--entrypoint", "python3", APP_IMAGE, "-c", probe]).split("\n")).toEqual(["403", "403", "403"]);
    });

    test("healthy: every replica running and healthy, exit 0", async () => {
        const result = status(outputsFile);
        expect(result.code).toBe(0);
        for (const name of outputs.replicaNames as string[]) expect(result.out).toMatch(new RegExp(`${name}\\s+running\\s+healthy\\s+\\d`));
        expect(result.out).toMatch(/^OK: 2 of 2 replicas healthy/m);
        expect(result.out).toContain("Models: decision-tree-classifier");
    });

    test("a replica killed: ATTENTION naming it, exit 1", async () => {
        const victim = String(outputs.replicaNames[1]);
        docker(["kill", victim]);
        const result = status(outputsFile);
        expect(result.code).toBe(1);
        expect(result.out).toMatch(new RegExp(`^ATTENTION: replica ${victim} is exited`, "m"));
        expect(result.out).toMatch(new RegExp(`${outputs.replicaNames[0]}\\s+running\\s+healthy`));
    });
});
