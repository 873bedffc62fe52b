// The real images on a real Docker engine: built from the repository's
// Dockerfiles as the stack builds them, run with the stack's own hardening,
// healthchecks, environment, networks and uploads (the same component code
// turned into docker CLI calls), then probed over HTTPS, audited with
// `docker inspect`, and scanned layer by layer for private keys.
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { APP_HEALTHCHECK, appEnvironment, appHardening, replicaSettings } from "../../components/appSpec";
import { APP_ALIAS } from "../../components/docker/appTier";
import { DEFAULTS } from "../../components/config";
import { dockerRunFlags, Hardening, LOG_OPTIONS, RESTART_POLICY, SECURITY_OPTIONS } from "../../components/hardening";
import { PROXY_CONTEXT } from "../../components/images";
import { APP_PORT, FRONTEND_DIR, PROXY_DEPLOY_DIR, PROXY_FILES, PROXY_HTTP_PORT, PROXY_HTTPS_PORT, PROXY_UID } from "../../components/layout";
import { containerNginxConfig, deployFilesDigest, frontendFiles, proxyFrontConfig, proxyUploads } from "../../components/proxyConfig";
import { installStepArgs, reloadStepArgs } from "../../components/docker/reverseProxy";
import { PROXY_HEALTHCHECK, proxyHardening } from "../../components/proxySpec";
import { buildTestImages, docker, dockerCall, dockerSuite, findInImage, inspect, providerUploadArchive, TEST_IMAGES } from "../support/docker";
import { containerCommands, healthFlags } from "../support/replay";
import { MODEL_PATHS, SEED_KEYS, SEED_PAYLOADS, postJson, request } from "../support/http";
import { generateKey } from "../support/openssl";
import { freePort, issueCertificate, PROJECT_ROOT, TlsFiles, waitFor } from "./harness";

const { app: APP_IMAGE, proxy: PROXY_IMAGE } = TEST_IMAGES;
// A PEM private key block: its header, then base64. The bare header text also occurs in libraries
// that parse PEM (onnxruntime's bundled code), which is not key material.
const KEY_MARKER = /-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+\/=]{16}/;

jest.setTimeout(120_000);

const withDocker = dockerSuite("the image tests");

/** Creates the internal app network on a random free 10.213.x.0/24, as AppTier does with its configured subnet. */
function createAppNetwork(name: string): string {
    for (let attempt = 0; attempt < 10; attempt++) {
        const subnet = `10.213.${crypto.randomInt(0, 256)}.0/24`;
        const result = spawnSync("docker", ["network", "create", "--internal", "--subnet", subnet, name], { encoding: "utf8" });
        if (result.status === 0) return subnet;
        if (!/overlap/i.test(result.stderr)) throw new Error(`docker network create failed: ${result.stderr}`);
    }
    throw new Error("no free 10.213.x.0/24 subnet after 10 tries");
}

const keyBody = (pem: string) => pem.split("\n").filter((line) => line && !line.startsWith("-----")).join("\n");

interface RunningContainer {
    name: string;
    hardening: Hardening;
}

const appEnv = appEnvironment(replicaSettings(DEFAULTS));
const appHardeningOfStack = appHardening(replicaSettings(DEFAULTS));
const appFlags = dockerRunFlags(appHardeningOfStack);

withDocker.describe("the stack's images on a real Docker engine", () => {
    const run = `mlapi-e2e-${crypto.randomBytes(3).toString("hex")}`;
    const created = { containers: [] as string[], networks: [] as string[], volumes: [] as string[], images: [] as string[] };
    const replicas: RunningContainer[] = [];
    let proxy: RunningContainer;
    let standaloneName: string;
    let appNetwork: string;
    let appSubnet: string;
    let tls: TlsFiles;
    let httpsPort: number;
    let httpPort: number;
    let standalonePort: number;
    let proxyStartedAt: number;

    const httpsUrl = (p: string) => `https://127.0.0.1:${httpsPort}/${p}`;
    let edgeNetwork: string;
    let deployVolume: string;
    const frontend = frontendFiles(path.join(PROJECT_ROOT, FRONTEND_DIR));

    /** The proxy's config for these replicas and ports, with one limit set. */
    const proxyConfigFor = (maxBodyKb: number) =>
        containerNginxConfig({
            serverNames: [...DEFAULTS.certDnsNames, ...DEFAULTS.certIpAddresses],
            replicas: replicas.map((replica) => ({ name: replica.name })),
            appSubnet: DEFAULTS.appSubnet,
            publicHttpsPort: httpsPort,
            limits: { ...DEFAULTS, maxBodyKb },
        });

    /** Runs a one-shot step as the provider does: create, upload, start, wait for its exit, keep its output. Asynchronous, so a load keeps running meanwhile. */
    async function runOneShot(args: Record<string, any>, uploads?: Buffer): Promise<{ code: number; logs: string }> {
        const { create } = containerCommands(args);
        await dockerCall(["rm", "--force", args.name]);
        if (!created.containers.includes(args.name)) created.containers.push(args.name);
        for (const [step, input] of [[create], ...(uploads ? [[["cp", "-", `${args.name}:/`], uploads]] : [])] as [string[], Buffer?][]) {
            const result = await dockerCall(step, input);
            if (result.code !== 0) throw new Error(`docker ${step[0]} failed: ${result.logs}`);
        }
        return dockerCall(["start", "--attach", args.name]);
    }

    /** The install step for a config (with the stack's certificate, key and frontend). */
    async function installFiles(config: string): Promise<{ code: number; logs: string; digest: string }> {
        const front = proxyFrontConfig({ workers: DEFAULTS.proxyWorkers });
        const digest = deployFilesDigest(config, front, tls.certPem, frontend);
        const args = installStepArgs({ name: `${run}-proxy-install`, imageId: PROXY_IMAGE, volume: deployVolume, digest, appNetwork, memoryMb: 64 });
        return { ...(await runOneShot(args, providerUploadArchive(proxyUploads({ config, front, certPem: tls.certPem, privateKeyPem: tls.keyPem, frontend })))), digest };
    }

    const reloadProxy = (digest: string) =>
        runOneShot(reloadStepArgs({ name: `${run}-proxy-reload`, imageId: PROXY_IMAGE, proxy: `container:${proxy.name}`, digest }));

    beforeAll(async () => {
        withDocker.ensured();
        console.log(`built ${APP_IMAGE} and ${PROXY_IMAGE} in ${(await buildTestImages()).toFixed(1)} s`);

        tls = issueCertificate(DEFAULTS);
        [httpsPort, httpPort, standalonePort] = [await freePort(), await freePort(), await freePort()];

        // The app image alone, outside the stack's network, published only for this probe.
        standaloneName = `${run}-standalone`;
        created.containers.push(standaloneName);
        docker([
            "run", "--detach", `--name=${standaloneName}`, `--hostname=${standaloneName}`, ...appFlags,
            ...appEnv.map((e) => `--env=${e}`), `--publish=127.0.0.1:${standalonePort}:${APP_PORT}`, APP_IMAGE,
        ]);

        appNetwork = `${run}-app`;
        appSubnet = createAppNetwork(appNetwork);
        created.networks.push(appNetwork);
        for (let index = 0; index < DEFAULTS.replicas; index++) {
            const replica = { name: `${run}-app-${index + 1}`, hardening: appHardeningOfStack };
            created.containers.push(replica.name);
            docker([
                "run", "--detach", `--name=${replica.name}`, `--hostname=${replica.name}`, ...appFlags,
                ...appEnv.map((e) => `--env=${e}`), ...healthFlags(APP_HEALTHCHECK),
                `--network=${appNetwork}`, `--network-alias=${APP_ALIAS}`, APP_IMAGE,
            ]);
            replicas.push(replica);
        }

        edgeNetwork = `${run}-edge`;
        docker(["network", "create", edgeNetwork]);
        created.networks.push(edgeNetwork);
        deployVolume = `${run}-proxy-deploy`;
        docker(["volume", "create", deployVolume]);
        created.volumes.push(deployVolume);

        // What ReverseProxy does, in the engine's order: the install step
        // receives the uploads (the provider copies a tar of full paths to
        // "/"), checks them with nginx -t and installs them into the volume;
        // the proxy starts on them; the reload step makes it load them.
        const config = proxyConfigFor(DEFAULTS.maxBodyKb);
        const first = await installFiles(config);
        expect([first.code, first.logs]).toEqual([0, expect.stringMatching(/installed the proxy.s files/)]);

        proxy = { name: `${run}-proxy`, hardening: proxyHardening(DEFAULTS.proxyMemoryMb) };
        created.containers.push(proxy.name);
        docker([
            "create", `--name=${proxy.name}`, `--hostname=${proxy.name}`, ...dockerRunFlags(proxy.hardening), ...healthFlags(PROXY_HEALTHCHECK),
            `--network=${edgeNetwork}`, `--publish=127.0.0.1:${httpsPort}:${PROXY_HTTPS_PORT}`, `--publish=127.0.0.1:${httpPort}:${PROXY_HTTP_PORT}`,
            `--mount=type=volume,source=${deployVolume},target=${PROXY_DEPLOY_DIR},readonly`, PROXY_IMAGE,
        ]);
        docker(["network", "connect", appNetwork, proxy.name]);
        docker(["start", proxy.name]);
        proxyStartedAt = Date.now();
        await waitFor(
            "the proxy to reach a replica over HTTPS",
            async () => ((await request(httpsUrl("api/health"), { ca: tls.trustPem, timeoutMs: 2000 })).status === 200 ? true : undefined),
            30_000,
        );
        expect(await reloadProxy(first.digest)).toMatchObject({ code: 0 });
    }, 30 * 60_000);

    afterAll(() => {
        // Everything this run made, even after a failure; the built images stay as the next run's cache.
        const removals = [
            ...created.containers.map((name) => ["rm", "--force", "--volumes", name]),
            ...created.networks.map((name) => ["network", "rm", name]),
            ...created.volumes.map((name) => ["volume", "rm", name]),
            ...created.images.map((name) => ["image", "rm", "--force", name]),
        ];
        for (const args of removals) {
            const result = spawnSync("docker", args, { encoding: "utf8" });
            if (result.status !== 0) console.warn(`cleanup: docker ${args.join(" ")}: ${result.stderr}`);
        }
    });

    describe("the app image alone", () => {
        const standaloneUrl = (p: string) => `http://127.0.0.1:${standalonePort}/${p}`;

        test("names its host in /api/health", async () => {
            const health = await waitFor("the standalone app to answer", async () => {
                const response = await request(standaloneUrl("api/health"), { timeoutMs: 2000 });
                return response.status === 200 ? response.json() : undefined;
            });
            expect(health).toMatchObject({ status: "ok", replica: standaloneName });
        });

        test.each(Object.keys(SEED_PAYLOADS) as (keyof typeof SEED_PAYLOADS)[])("answers the seed's %s prediction", async (model) => {
            const response = await postJson(standaloneUrl(MODEL_PATHS[model]), SEED_PAYLOADS[model]);
            expect(response.status).toBe(200);
            expect(typeof response.json()[SEED_KEYS[model]]).toBe("number");
        });
    });

    describe("the stack through the proxy container's published HTTPS port", () => {
        test("GET / returns the frontend the install step put in the volume", async () => {
            const response = await request(httpsUrl(""), { ca: tls.trustPem });
            expect(response.status).toBe(200);
            expect(response.headers["content-type"]).toMatch(/^text\/html/);
            expect(response.body).toBe(fs.readFileSync(path.join(PROJECT_ROOT, PROXY_CONTEXT, "html", "index.html"), "utf8"));
        });

        test.each(Object.keys(SEED_PAYLOADS) as (keyof typeof SEED_PAYLOADS)[])("a proxied %s prediction works", async (model) => {
            const response = await postJson(httpsUrl(MODEL_PATHS[model]), SEED_PAYLOADS[model], { ca: tls.trustPem });
            expect(response.status).toBe(200);
            const value = response.json()[SEED_KEYS[model]];
            expect(typeof value).toBe("number");
            if (model === "classifier") expect([0, 1]).toContain(value);
        });

        test("/api/health over 20 requests is answered by every replica", async () => {
            const seen = new Set<string>();
            for (let i = 0; i < 20; i++) {
                const response = await request(httpsUrl("api/health"), { ca: tls.trustPem });
                expect(response.status).toBe(200);
                seen.add(response.json().replica);
            }
            expect([...seen].sort()).toEqual(replicas.map((r) => r.name).sort());
        });

        test("each replica serves its Prometheus metrics on port 9000 inside the container (never published)", () => {
            for (const replica of replicas) {
                const scrape = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9000/metrics', timeout=5).read().decode())";
                const metrics = docker(["exec", replica.name, "python3", "-c", scrape]);
                expect(metrics).toMatch(/^mlapi_workers [1-9]/m);
                expect(metrics).toMatch(/^mlapi_model_info\{/m);
            }
            // A scraper on the app network finds every replica under the shared alias (Prometheus: dns_sd_configs, type A).
            const addresses = docker(["exec", proxy.name, "getent", "ahostsv4", APP_ALIAS]).split("\n").map((l) => l.split(/\s+/)[0]);
            const expected = replicas.map((r) => inspect("container", r.name).NetworkSettings.Networks[appNetwork].IPAddress);
            expect([...new Set(addresses)].sort()).toEqual(expected.sort());
        });

        test("nginx -t passes inside the running proxy container, for the site (as a slot runs it) and the front", () => {
            const site = spawnSync("docker", ["exec", proxy.name, "sh", "-c", `d=$(mktemp -d) && cd "$d" && nginx -t -e stderr -p "$d/" -c ${PROXY_FILES.config}`], { encoding: "utf8" });
            expect(site.stderr).toMatch(/test is successful/);
            expect(site.status).toBe(0);
            const front = spawnSync("docker", ["exec", proxy.name, "nginx", "-t", "-e", "stderr", "-c", PROXY_FILES.front], { encoding: "utf8" });
            expect(front.stderr).toMatch(/test is successful/);
            expect(front.status).toBe(0);
        });

        test("the uploads land as the provider writes them: root-owned, the key 0640 and read through group 0", () => {
            const files = [PROXY_FILES.config, PROXY_FILES.certificate, PROXY_FILES.certificateKey];
            const listing = docker(["exec", proxy.name, "stat", "-c", "%a %u:%g %n", ...files]);
            expect(listing.split("\n")).toEqual([
                `644 0:0 ${PROXY_FILES.config}`,
                `644 0:0 ${PROXY_FILES.certificate}`,
                `640 0:0 ${PROXY_FILES.certificateKey}`,
            ]);
            // Nginx's user reads the key through its supplementary group, and nobody else can.
            expect(docker(["exec", proxy.name, "id"])).toMatch(new RegExp(`^uid=${PROXY_UID}\\b.*groups=.*\\b0\\(root\\)`));
        });
    });

    // Changes that reach the running proxy, under load, are replayed in changes.test.ts.
    describe("a change reaches the running proxy only once Nginx accepts it", () => {
        const servedConfig = () => docker(["exec", proxy.name, "cat", PROXY_FILES.config]);

        test("a config Nginx refuses is not installed: the step fails with Nginx's message and the proxy keeps serving", async () => {
            const before = servedConfig();
            const broken = await installFiles(proxyConfigFor(64).replace("worker_rlimit_nofile 8192;", "worker_rlimit_nofile many;"));
            expect(broken.code).toBe(1);
            expect(broken.logs).toMatch(/\[emerg\] .*"worker_rlimit_nofile" directive invalid number/);
            expect(broken.logs).toMatch(/the running proxy keeps its current files/);
            expect(servedConfig()).toBe(before);
            expect((await request(httpsUrl("api/health"), { ca: tls.trustPem })).status).toBe(200);
        });
    });

    describe("what docker inspect shows of each container", () => {
        const roles = ["app replica 1", "app replica 2", "proxy"] as const;
        const container = (role: (typeof roles)[number]) => (role === "proxy" ? proxy : replicas[Number(role.slice(-1)) - 1]);

        test.each(roles)("the %s runs with the stack's hardening", (role) => {
            const { name, hardening } = container(role);
            const { Config, HostConfig } = inspect("container", name);
            expect(Config.User).toBe(hardening.user);
            expect(docker(["exec", name, "id", "-u"])).toBe(hardening.user.split(":")[0]);
            expect(HostConfig.ReadonlyRootfs).toBe(true);
            expect(HostConfig.Tmpfs).toEqual(hardening.tmpfs);
            expect(HostConfig.CapDrop).toContain("ALL");
            expect(HostConfig.SecurityOpt).toEqual(expect.arrayContaining(SECURITY_OPTIONS));
            expect(HostConfig.Memory).toBe(hardening.memoryMb * 1024 * 1024);
            expect(HostConfig.Ulimits).toContainEqual({ Name: "nproc", Soft: hardening.maxProcesses, Hard: hardening.maxProcesses });
            expect(HostConfig.RestartPolicy.Name).toBe(RESTART_POLICY);
            expect(HostConfig.LogConfig).toEqual({ Type: "json-file", Config: LOG_OPTIONS });
        });

        test.each(roles)("the kernel enforces it on the %s's main process", (role) => {
            const { name, hardening } = container(role);
            const status = docker(["exec", name, "cat", "/proc/1/status"]);
            expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
            expect(status).toMatch(/^CapEff:\s+0+$/m);
            expect(docker(["exec", name, "cat", "/proc/1/limits"])).toMatch(new RegExp(`^Max processes\\s+${hardening.maxProcesses}\\s+${hardening.maxProcesses}\\s`, "m"));
        });

        test.each(roles)("even root cannot write to / in the %s", (role) => {
            const result = spawnSync("docker", ["exec", "--user=0", container(role).name, "touch", "/write-probe"], { encoding: "utf8" });
            expect(result.status).not.toBe(0);
            expect(result.stderr).toMatch(/Read-only file system/);
        });

        test("only the proxy publishes ports, and only on 127.0.0.1", () => {
            for (const replica of replicas) {
                const { HostConfig, NetworkSettings } = inspect("container", replica.name);
                expect(Object.keys(HostConfig.PortBindings ?? {})).toEqual([]);
                expect(Object.values(NetworkSettings.Ports ?? {}).filter(Boolean)).toEqual([]);
            }
            const { HostConfig } = inspect("container", proxy.name);
            expect(HostConfig.PortBindings).toEqual({
                [`${PROXY_HTTPS_PORT}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: String(httpsPort) }],
                [`${PROXY_HTTP_PORT}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: String(httpPort) }],
            });
        });

        test("Nginx mounts its deploy files read-only; the install step exited and kept no copy of the key", () => {
            const mounts = inspect("container", proxy.name).Mounts;
            expect(mounts).toEqual([expect.objectContaining({ Type: "volume", Destination: PROXY_DEPLOY_DIR, RW: false })]);
            const install = inspect("container", `${run}-proxy-install`);
            // Exited, having installed its files or refused them (the last test gives it a broken config): the key went either way.
            expect(install.State).toMatchObject({ Status: "exited" });
            const layer = spawnSync("docker", ["cp", `${run}-proxy-install:${PROXY_DEPLOY_DIR}/.`, "-"], { encoding: "latin1" });
            expect(layer.status).toBe(0);
            expect(layer.stdout).not.toMatch(/PRIVATE KEY/);
            expect(layer.stdout).not.toContain("server.key");
        });

        test("the app network is internal and the replicas have addresses in its subnet and the shared alias", () => {
            const network = inspect("network", appNetwork);
            expect(network.Internal).toBe(true);
            expect(network.IPAM.Config).toEqual([expect.objectContaining({ Subnet: appSubnet })]);
            const prefix = appSubnet.split(".").slice(0, 3).join(".");
            for (const replica of replicas) {
                const attachment = inspect("container", replica.name).NetworkSettings.Networks[appNetwork];
                expect(attachment.IPAddress).toMatch(new RegExp(`^${prefix.replace(/\./g, "\\.")}\\.\\d+$`));
                expect(attachment.Aliases).toContain(APP_ALIAS);
            }
        });
    });

    describe("no private key in any image", () => {
        const needles = () => [KEY_MARKER, keyBody(tls.keyPem)];

        test.each([APP_IMAGE, PROXY_IMAGE])("%s: no layer file and no config holds key material", (image) => {
            expect(findInImage(image, needles())).toEqual([]);
            const { Config } = inspect("image", image);
            expect(JSON.stringify([Config.Env, Config.Labels])).not.toMatch(/PRIVATE KEY/);
            expect(docker(["history", "--no-trunc", image])).not.toMatch(/PRIVATE KEY/);
        });

        test("the scan finds a key that was baked into an image", () => {
            const context = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-leak-"));
            const leakedKey = generateKey("ECDSA-P256");
            const image = `${run}-leak:e2e`;
            try {
                fs.writeFileSync(path.join(context, "leaked.key"), leakedKey);
                fs.writeFileSync(path.join(context, "Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY leaked.key /etc/leaked.key\n");
                created.images.push(image);
                docker(["build", "--tag", image, "--build-arg", `BASE_IMAGE=${DEFAULTS.baseImage}`, context]);
                const findings = findInImage(image, [KEY_MARKER, keyBody(leakedKey)]);
                expect(findings).toHaveLength(2);
                for (const finding of findings) expect(finding).toMatch(/\/etc\/leaked\.key contains/);
            } finally {
                fs.rmSync(context, { recursive: true, force: true });
            }
        });
    });

    test("every container becomes healthy", async () => {
        // A container's first probe runs one interval after its start: the proxy's is the longest.
        const firstProbeMs = Math.max(...[APP_HEALTHCHECK, PROXY_HEALTHCHECK].map((check) => parseInt(check.interval, 10) * 1000));
        const names = [...replicas, proxy].map((c) => c.name).concat(standaloneName);
        await waitFor(
            `${names.join(", ")} to be healthy`,
            async () => {
                const states = names.map((name) => inspect("container", name).State.Health);
                const unhealthy = states.find((health) => health.Status === "unhealthy");
                if (unhealthy) throw new Error(`unhealthy: ${JSON.stringify(unhealthy.Log)}`);
                return states.every((health) => health.Status === "healthy") ? true : undefined;
            },
            Math.max(1000, proxyStartedAt + firstProbeMs + 15_000 - Date.now()),
        );
    });

    test("image sizes (for the CI log)", () => {
        const sizes = [APP_IMAGE, PROXY_IMAGE].map((image) => [image, Number(docker(["image", "inspect", "--format", "{{.Size}}", image]))] as const);
        console.log(sizes.map(([image, bytes]) => `${image}: ${(bytes / 1e6).toFixed(1)} MB (${bytes} bytes)`).join("\n"));
        for (const [, bytes] of sizes) expect(bytes).toBeGreaterThan(0);
    });
});
