// The real-engine suite: the program deployed by a real Pulumi engine (the
// CLI, its Node.js language host and the real tls and docker providers)
// onto the Docker engine, driven through Pulumi's Automation API as a user
// drives it. Mocks only agree with what the program assumes; this suite is
// the proof that it deploys.
//
// It runs when a `pulumi` CLI on PATH has the tls and docker plugins of
// package.json's versions and a Docker engine answers; otherwise every test
// is reported skipped, with the reason. It uses its own stack (`engine-<id>`),
// its own state directory, its own free high loopback ports and subnet, a
// scratch copy of the project, and removes all of it, even when a step fails.
import { execFileSync, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Stack } from "@pulumi/pulumi/automation";
import { assess } from "../../scripts/lib/statusReport";
import { formatReport, runSmoke, trustAnchor } from "../../scripts/smoke";
import { gatherFacts } from "../../scripts/status";
import { freePort, PROJECT_ROOT } from "../e2e/harness";
import { EngineEvent, restartEngine } from "../support/engineRestart";
import { freeSubnet } from "../support/docker";
import { PROJECT, refreshDrift, scratchStack, ScratchStack, upReporting, whyNoEngine } from "../support/engineStack";
import { postJson, request } from "../support/http";
import { ENGINE_CLIENTS, formatTraffic, servingLost, startPacedLoad, TrafficReport } from "../support/pacedLoad";

const skipReason = whyNoEngine();
const describeEngine = skipReason ? describe.skip : describe;
if (skipReason) console.log(`real-engine suite skipped: ${skipReason}`);

/** The names of what Docker holds of the stack: containers, networks, volumes and images. */
function leftovers(prefix: string): string[] {
    const list = (args: string[]) => execFileSync("docker", args, { encoding: "utf8" }).split("\n").filter((l) => l.startsWith(prefix));
    return [
        ...list(["ps", "-a", "--format", "{{.Names}}"]).map((n) => `container ${n}`),
        ...list(["network", "ls", "--format", "{{.Name}}"]).map((n) => `network ${n}`),
        ...list(["volume", "ls", "--format", "{{.Name}}"]).map((n) => `volume ${n}`),
        ...list(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).map((n) => `image ${n}`),
    ];
}

jest.setTimeout(20 * 60_000);

describeEngine(`a real Pulumi engine deploys the stack${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
    const stackName = `engine-${crypto.randomBytes(3).toString("hex")}`;
    const prefix = `mlapi-${stackName}-`;
    let scratchProject: ScratchStack;
    let workDir: string;
    const traffic: string[] = [];
    const timings: string[] = [];
    let stack: Stack;
    let httpsPort: number;
    let destroyed = false;

    /** A replica's name pattern: its number, then the digest of its settings. */
    const replicaNamed = (n: number) => expect.stringMatching(new RegExp(`^${prefix}app-${n}-[0-9a-f]{8}$`));
    const outputs = async () => Object.fromEntries(Object.entries(await stack.outputs()).map(([k, v]) => [k, v.value]));

    const up = () => upReporting(stack);

    /**
     * `pulumi up` under a paced load: what the change did to traffic, for
     * each kind of client, each 2 connections at 20 predictions/s (80/s in all,
     * under the default per-client rate limit of 100/s): HTTP/1.1
     * that resends once on a closed idle connection, HTTP/2, and Python's
     * http.client and requests, which never resend. Every one must lose
     * nothing: the proxy never closes a connection a client still uses.
     */
    async function upUnderLoad(change: string): Promise<TrafficReport[]> {
        const out = await outputs();
        const loads = ENGINE_CLIENTS.map((client) =>
            startPacedLoad({ url: String(out.url), ca: trustAnchor(out), connections: 2, ratePerSecond: 20, maxSeconds: 900, client }),
        );
        let seconds = 0;
        let reports: TrafficReport[] = [];
        try {
            // A second of steady traffic before and after the change.
            await new Promise((resolve) => setTimeout(resolve, 1000));
            seconds = (await up()).seconds;
            await new Promise((resolve) => setTimeout(resolve, 1000));
        } finally {
            reports = await Promise.all(loads.map((load) => load.stop()));
            for (const report of reports) {
                traffic.push(formatTraffic(change, report, seconds));
                console.log(traffic[traffic.length - 1]);
            }
        }
        return reports;
    }

    /** Zero failed requests and a short longest gap, for every kind of client. */
    const keptServing = (reports: TrafficReport[]) => expect(servingLost(reports, 0.5)).toEqual([]);

    /** The proxy container's ID: a change that keeps it keeps every connection's server. */
    const proxyId = async () => execFileSync("docker", ["inspect", "--format", "{{.Id}}", String((await outputs()).proxyContainerName)], { encoding: "utf8" }).trim();
    /** What the running Nginx serves as its config. */
    const servedConfig = async () => execFileSync("docker", ["exec", String((await outputs()).proxyContainerName), "cat", "/etc/nginx/deploy/nginx.conf"], { encoding: "utf8" });

    async function smoke(): Promise<void> {
        const out = await outputs();
        const checks = await runSmoke({ url: String(out.url), trustPem: trustAnchor(out), replicas: out.replicaNames as string[] });
        const report = formatReport(String(out.url), checks);
        console.log(report);
        expect(checks.filter((c) => !c.ok)).toEqual([]);
        // npm run status, on the same outputs: nothing needs attention.
        const status = assess(await gatherFacts(out, { stack: stackName, windowSeconds: 60 }));
        console.log(status.text);
        expect(status.attention).toEqual([]);
    }

    beforeAll(async () => {
        httpsPort = await freePort();
        // The defaults, except what must not collide with other stacks on this engine.
        scratchProject = await scratchStack(stackName, {
            httpsPort: String(httpsPort),
            httpPort: String(await freePort()),
            operatorPort: String(await freePort()),
            appSubnet: freeSubnet(),
        });
        ({ stack, workDir } = scratchProject);
    }, 120_000);

    afterAll(async () => {
        try {
            if (stack && !destroyed) await stack.destroy({ color: "never" }).catch((error) => console.error(`engine suite: destroy failed: ${error}`));
            if (scratchProject) await scratchProject.remove();
        } finally {
            // docker.Image never deletes what it built: the suite removes the stack's images (as `npm run destroy` does).
            spawnSync("docker", ["image", "rm", "--force", `${prefix}app:latest`, `${prefix}proxy:latest`], { stdio: "ignore" });
            for (const leftover of leftovers(prefix)) {
                const [kind, name] = leftover.split(" ");
                spawnSync("docker", [kind === "container" ? "rm" : kind, ...(kind === "container" ? ["-f"] : ["rm", "-f"]), name], { stdio: "ignore" });
            }
            console.log([`real-engine suite, stack ${stackName}:`, ...timings, "what each update did to traffic (per client kind: 2 kept-alive HTTPS connections, 20 predictions/s):", ...traffic].join("\n  "));
        }
    }, 10 * 60_000);

    test("a bad value stops `pulumi preview` with the key, what is allowed, and no stack trace", async () => {
        await stack.setConfig(`${PROJECT}:replicas`, { value: "two" });
        try {
            const failure = await stack.preview({ color: "never" }).then(
                () => undefined,
                (error: Error) => String(error),
            );
            expect(failure).toMatch(/https-ml-api:replicas is "two": expected a whole number from 1 to 32/);
            expect(failure).not.toMatch(/unhandled exception|\n\s+at .*\(.*\.ts:\d+:\d+\)/);
        } finally {
            await stack.removeConfig(`${PROJECT}:replicas`);
        }
        expect(leftovers(prefix)).toEqual([]);
    });

    test("a bad model repository stops `pulumi preview` naming the model, the file and the problem, before anything exists", async () => {
        const repository = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-bad-repo-"));
        try {
            fs.cpSync(path.join(PROJECT_ROOT, "models"), repository, { recursive: true });
            const card = path.join(repository, "decision-tree-classifier", "model.json");
            fs.writeFileSync(card, JSON.stringify({ ...JSON.parse(fs.readFileSync(card, "utf8")), version: "1 beta" }));
            fs.appendFileSync(path.join(repository, "decision-tree-regressor", "model.onnx"), "x");
            await stack.setConfig(`${PROJECT}:modelRepository`, { value: repository });
            const failure = await stack.preview({ color: "never" }).then(
                () => undefined,
                (error: Error) => String(error),
            );
            expect(failure).toMatch(/decision-tree-classifier\/model\.json: version/);
            expect(failure).toMatch(/decision-tree-regressor\/model\.onnx: .*SHA-256|decision-tree-regressor\/model\.onnx: .*sha256/i);
            expect(failure).not.toMatch(/unhandled exception|\n\s+at .*\(.*\.ts:\d+:\d+\)/);
        } finally {
            await stack.removeConfig(`${PROJECT}:modelRepository`);
            fs.rmSync(repository, { recursive: true, force: true });
        }
        expect(leftovers(prefix)).toEqual([]);
    });

    test("`pulumi up` from nothing deploys the default stack and prints no warning", async () => {
        const { seconds, warnings } = await up();
        timings.push(`up from nothing: ${seconds.toFixed(1)} s`);
        expect(warnings).toEqual([]);
        const out = await outputs();
        expect(out.url).toBe(`https://127.0.0.1:${httpsPort}/`);
        expect(out.replicaNames).toEqual([replicaNamed(1), replicaNamed(2)]);
        expect(Object.keys(out)).not.toContain("caCertificatePem");
    });

    test("the smoke command passes against the stack's url output", smoke);

    test("the state holds the private key only as a secret, encrypted on disk", async () => {
        // Where a private key appears in plain text: resource, then property path.
        const plainKeys = (state: any) => {
            const found: string[] = [];
            const walk = (value: unknown, at: string) => {
                if (typeof value === "string" && /PRIVATE KEY-----/.test(value)) found.push(at);
                else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) walk(v, `${at}.${k}`);
            };
            for (const resource of state.deployment.resources ?? []) walk({ inputs: resource.inputs, outputs: resource.outputs }, resource.urn.split("::").pop());
            return found;
        };
        // The export decrypts secrets: every place the key is must be a secret's plaintext.
        const exported = plainKeys(await stack.exportStack());
        expect(exported.length).toBeGreaterThan(0);
        expect(exported.filter((at) => !at.endsWith(".plaintext"))).toEqual([]);
        // The state file itself (the backend's checkpoint) holds none of them.
        const stateFiles = fs.readdirSync(scratchProject.stateDir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(`${stackName}.json`));
        expect(stateFiles).toHaveLength(1);
        const checkpoint = JSON.parse(fs.readFileSync(path.join(scratchProject.stateDir, stateFiles[0]), "utf8"));
        expect(checkpoint.checkpoint.latest.resources.length).toBeGreaterThan(10);
        expect(plainKeys({ deployment: checkpoint.checkpoint.latest })).toEqual([]);
        expect(JSON.stringify(checkpoint)).toMatch(/"ciphertext":/);
    });

    test("`pulumi preview` expects no changes right after `up`", async () => {
        const preview = await stack.preview({ expectNoChanges: true, color: "never" });
        expect(Object.keys(preview.changeSummary).filter((op) => op !== "same")).toEqual([]);
    });

    test("`pulumi refresh` finds no drift, and `preview` still expects no changes after it", async () => {
        expect(await refreshDrift(stack)).toEqual([]);
        await stack.preview({ expectNoChanges: true, color: "never" });
    });

    test("`replicas` 2 -> 3 adds a replica that serves, keeping the proxy and every request", async () => {
        const proxy = await proxyId();
        await stack.setConfig(`${PROJECT}:replicas`, { value: "3" });
        keptServing(await upUnderLoad("replicas 2 -> 3"));
        expect((await outputs()).replicaNames).toEqual([1, 2, 3].map(replicaNamed));
        expect(await proxyId()).toBe(proxy);
        await smoke();
    });

    test("a new app image (a code change) rolls the replicas onto it, keeping every request", async () => {
        // The replicas run the served image (the app image with the models), rebuilt on the new app image.
        const before = String((await outputs()).servedImage);
        fs.appendFileSync(path.join(workDir, "app", "gunicorn.conf.py"), `\n# engine suite: a code change (${crypto.randomBytes(4).toString("hex")})\n`);
        keptServing(await upUnderLoad("new app image (3 replicas)"));
        const after = String((await outputs()).servedImage);
        expect(after).not.toBe(before);
        const names = (await outputs()).replicaNames as string[];
        const running = execFileSync("docker", ["inspect", "--format", "{{.Image}}", ...names], { encoding: "utf8" }).trim().split("\n");
        expect(running).toHaveLength(3);
        for (const image of running) expect(after).toContain(image);
        await smoke();
    });

    test("a changed Nginx setting (maxBodyKb 64 -> 96) is reloaded into the same proxy, keeping every request", async () => {
        const proxy = await proxyId();
        await stack.setConfig(`${PROJECT}:maxBodyKb`, { value: "96" });
        keptServing(await upUnderLoad("maxBodyKb 64 -> 96 (an Nginx setting)"));
        expect(await servedConfig()).toMatch(/client_max_body_size 96k;/);
        expect(await proxyId()).toBe(proxy);
        await smoke();
        await stack.preview({ expectNoChanges: true, color: "never" });
    });

    test("a frontend change is served by the same proxy, keeping every request", async () => {
        const proxy = await proxyId();
        const marker = `engine-${crypto.randomBytes(4).toString("hex")}`;
        const index = path.join(workDir, "nginx", "html", "index.html");
        fs.writeFileSync(index, fs.readFileSync(index, "utf8").replace("</body>", `<!-- ${marker} --></body>`));
        keptServing(await upUnderLoad("frontend file changed"));
        const { url, certificatePem } = await outputs();
        expect((await request(String(url), { ca: String(certificatePem) })).body).toContain(marker);
        expect(await proxyId()).toBe(proxy);
    });

    test("a switch to tlsMode local-ca serves the CA-signed certificate from the same proxy", async () => {
        const proxy = await proxyId();
        await stack.setConfig(`${PROJECT}:tlsMode`, { value: "local-ca" });
        await up();
        expect(String((await outputs()).caCertificatePem)).toMatch(/BEGIN CERTIFICATE/);
        expect(await proxyId()).toBe(proxy);
        await smoke();
    });

    test("a renewed certificate (a new renewal window) is served by the same proxy, keeping every request", async () => {
        // Clients trust the local CA, which is not renewed with the server certificate.
        const proxy = await proxyId();
        const before = (await outputs()).certificateFingerprintSha256;
        // A new window gives a new renewal generation: a new key and certificate, as at renewal time.
        await stack.setConfig(`${PROJECT}:certRenewalDays`, { value: "45" });
        keptServing(await upUnderLoad("certificate renewed"));
        const out = await outputs();
        expect(out.certificateFingerprintSha256).not.toBe(before);
        expect(await proxyId()).toBe(proxy);
        await smoke();
    });

    test("a config Nginx refuses fails `pulumi up` with Nginx's message, and the proxy keeps its files and serves", async () => {
        const renderer = path.join(workDir, "components", "nginxConfig.ts");
        const original = fs.readFileSync(renderer, "utf8");
        const before = await servedConfig();
        fs.writeFileSync(renderer, original.replace('"worker_rlimit_nofile 8192;"', '"worker_rlimit_nofile many;"'));
        try {
            const failure = await up().then(() => "", (error: Error) => String(error));
            expect(failure).toMatch(/Installing the proxy's new files failed[\s\S]*"worker_rlimit_nofile" directive invalid number/);
            expect(await servedConfig()).toBe(before);
            await smoke();
        } finally {
            fs.writeFileSync(renderer, original);
        }
        await up();
        await stack.preview({ expectNoChanges: true, color: "never" });
    });

    test("`replicas` 3 -> 1 takes replicas out of Nginx before they stop, keeping every request", async () => {
        const proxy = await proxyId();
        await stack.setConfig(`${PROJECT}:replicas`, { value: "1" });
        keptServing(await upUnderLoad("replicas 3 -> 1"));
        expect((await outputs()).replicaNames).toEqual([replicaNamed(1)]);
        expect(await proxyId()).toBe(proxy);
        await smoke();
    });

    test("a new app image with `replicas` 1 starts the new replica before the old one stops, keeping every request", async () => {
        const [before] = (await outputs()).replicaNames as string[];
        fs.appendFileSync(path.join(workDir, "app", "gunicorn.conf.py"), `\n# engine suite: another code change (${crypto.randomBytes(4).toString("hex")})\n`);
        keptServing(await upUnderLoad("new app image (1 replica)"));
        const [after] = (await outputs()).replicaNames as string[];
        expect(after).toEqual(replicaNamed(1));
        expect(after).not.toBe(before);
        expect(leftovers(prefix).filter((l) => l.includes(before))).toEqual([]);
        await smoke();
    });

    test("a new proxy image starts the new Nginx beside the old one on the same ports, keeping every request", async () => {
        const proxy = await proxyId();
        const holder = () => execFileSync("docker", ["inspect", "--format", "{{.Id}}", `${prefix}proxy-ports`], { encoding: "utf8" }).trim();
        const holderBefore = holder();
        const dockerfile = path.join(workDir, "nginx", "Dockerfile");
        fs.appendFileSync(dockerfile, `\nLABEL mlapi.engine-suite=${crypto.randomBytes(4).toString("hex")}\n`);
        keptServing(await upUnderLoad("new proxy image"));
        expect(await proxyId()).not.toBe(proxy);
        expect(holder()).toBe(holderBefore);
        await smoke();
        await stack.preview({ expectNoChanges: true, color: "never" });
    });

    test("a user's model repository (a Pipeline, a forest, XGBoost, LightGBM, the tutorial's trees) replaces the built-in one, keeping every request; each model answers on /api/v1 and through a real Open Inference Protocol client", async () => {
        const repository = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-examples-"));
        try {
            const made = spawnSync(path.join(PROJECT_ROOT, ".venv", "bin", "python"), ["-m", "training.examples", "--out", repository], { cwd: path.join(PROJECT_ROOT, "app"), encoding: "utf8" });
            expect([made.status, made.stderr]).toEqual([0, expect.any(String)]);
            await stack.setConfig(`${PROJECT}:modelRepository`, { value: repository });
            keptServing(await upUnderLoad("a user's model repository"));
            const out = await outputs();
            const cards = fs.readdirSync(repository).sort().map((name) => JSON.parse(fs.readFileSync(path.join(repository, name, "model.json"), "utf8")));
            expect(out.models).toEqual(cards.map((card) => `${card.name} ${card.version}`));
            for (const card of cards) {
                const record = Object.fromEntries(card.inputs.map((f: any) => [f.name, f.example]));
                const answer = await postJson(`${out.url}api/v1/models/${card.name}/predictions`, record, { ca: trustAnchor(out) });
                expect([card.name, answer.status]).toEqual([card.name, 200]);
                expect(answer.json()).toMatchObject({ model: card.name, model_version: card.version });
            }
            const ca = path.join(repository, "..", `${path.basename(repository)}-ca.pem`);
            fs.writeFileSync(ca, trustAnchor(out) ?? String(out.certificatePem));
            const client = spawnSync(path.join(PROJECT_ROOT, ".venv", "bin", "python"), [path.join(PROJECT_ROOT, "test", "clients", "oip_client.py"), `127.0.0.1:${httpsPort}`, ca, repository], { encoding: "utf8" });
            fs.rmSync(ca, { force: true });
            console.log(`tritonclient over HTTPS:\n${client.stdout}${client.stderr}`);
            expect([client.status, client.stderr]).toEqual([0, ""]);
            expect(client.stdout.trim().split("\n").map((line) => JSON.parse(line).model)).toEqual(cards.map((card) => card.name));
            await stack.preview({ expectNoChanges: true, color: "never" });
        } finally {
            // Back to the built-in repository before this one goes.
            await stack.removeConfig(`${PROJECT}:modelRepository`);
            keptServing(await upUnderLoad("back to the built-in models"));
            fs.rmSync(repository, { recursive: true, force: true });
        }
    });

    // Every container comes back by itself (restart policy and keeper), but
    // Docker may give the replicas other addresses than before (IPAM hands
    // them out again in the order the containers restart) while Nginx's
    // config names addresses: then only the next `pulumi up` (which refreshes
    // first) serves again. Serving again by itself is measured, and asserted
    // in CI's replay, where the addresses are pinned.
    test.each<[EngineEvent]>([["graceful"], ["crash"], ["reboot"]])("the Docker engine %s: the stack serves again by itself within 30 s, every container runs, and `pulumi up` then serves", async (event) => {
        const out = await outputs();
        const loads = (["http1-resend", "http2"] as const).map((client) =>
            startPacedLoad({ url: String(out.url), ca: trustAnchor(out), connections: 2, ratePerSecond: 20, maxSeconds: 300, client }),
        );
        let recovery = Number.NaN;
        try {
            await new Promise((resolve) => setTimeout(resolve, 1000));
            const restart = await restartEngine(event);
            const deadline = restart.answeringAt + 120_000;
            for (let streak = 0, first = 0; streak < 5 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
                const at = Date.now();
                const ok = await postJson(`${out.url}api/v1/models/decision-tree-classifier/predictions`, { monthly_fee: 60, customer_age: 30, support_calls: 1 }, { ca: trustAnchor(out), timeoutMs: 2000 })
                    .then((r) => r.status === 200)
                    .catch(() => false);
                streak = ok ? streak + 1 : 0;
                if (streak === 1) first = at;
                if (streak === 5) recovery = (first - restart.answeringAt) / 1000;
            }
            timings.push(`engine ${event}: down ${((restart.answeringAt - restart.stoppedAt) / 1000).toFixed(1)} s, serving again ${recovery.toFixed(1)} s after it answered`);
        } finally {
            for (const report of await Promise.all(loads.map((load) => load.stop()))) traffic.push(formatTraffic(`engine ${event}`, report, undefined, "the engine was down"));
        }
        expect(recovery).toBeLessThan(30);
        const states = execFileSync("docker", ["ps", "-a", "--filter", `name=^${prefix}`, "--format", "{{.Names}} {{.State}}"], { encoding: "utf8" }).trim().split("\n");
        expect(states.filter((line) => !/-proxy-(install|reload) /.test(line) && !line.endsWith(" running"))).toEqual([]);
        // What a refreshing `pulumi up` (Pulumi.yaml) finds and does after the event.
        const { seconds, warnings } = await up();
        timings.push(`up after engine ${event}: ${seconds.toFixed(1)} s`);
        expect(warnings).toEqual([]);
        await smoke();
    });

    test("`pulumi destroy` leaves nothing of the stack (with the images `npm run destroy` removes)", async () => {
        const started = Date.now();
        await stack.destroy({ color: "never" });
        destroyed = true;
        timings.push(`destroy: ${((Date.now() - started) / 1000).toFixed(1)} s`);
        // docker.Image never deletes what it built (provider behaviour), so
        // these two are all that is left, and `npm run destroy` removes them.
        expect(leftovers(prefix).sort()).toEqual([`image ${prefix}app:latest`, `image ${prefix}models:latest`, `image ${prefix}proxy:latest`]);
        execFileSync("docker", ["image", "rm", "--force", `${prefix}models:latest`, `${prefix}app:latest`, `${prefix}proxy:latest`], { stdio: "ignore" });
        expect(leftovers(prefix)).toEqual([]);
    });
});
