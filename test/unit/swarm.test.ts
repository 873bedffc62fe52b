// Swarm mode's resource graph under Pulumi mocks: the same program with
// platform "swarm", and what a change of it does to the services.
import { deleteFirstByProvider, enginePlan, describeStep } from "../support/enginePlan";
import { isSecretInput, plain, plainDeep, runProgram, ProgramRun, RecordedResource, RESOURCE_TYPES as T } from "./program";
import { APP_PORT, PROXY_FILES, PROXY_HTTPS_PORT, PROXY_HTTP_PORT, PROXY_SLOT_DRAIN_SECONDS, PROXY_SLOT_KEEPALIVE_SECONDS } from "../../components/layout";
import { SWARM_FORWARDER_FILES, SWARM_UPSTREAMS_FILE, frontendFiles } from "../../components/proxyConfig";
import { tmpfsSizeBytes } from "../../components/swarm/hardening";
import { contentName } from "../../components/swarm/proxyService";

jest.setTimeout(120_000);

const SWARM = { platform: "swarm", registryAddress: "10.231.7.2:5000", appSubnet: "10.232.77.0/24" };
const WITH_LOGIN = { ...SWARM, registryUsername: "deploy", registryPassword: "s3cret-registry-password" };

const service = (run: ProgramRun, role: string) => run.ofType(T.service).find((s) => s.inputs.labels.some((l: any) => l.label === "mlapi.role" && l.value === role))!;
const decoded = (r: RecordedResource) => Buffer.from(plain(r.inputs.data), "base64").toString("utf8");
const configFor = (run: ProgramRun, file: string, role = "proxy") => {
    const ref = plainDeep(service(run, role).inputs.taskSpec).containerSpec.configs.find((c: any) => c.fileName === file);
    return run.ofType(T.serviceConfig).find((c) => `${c.name}-id` === ref.configId)!;
};

describe("platform swarm", () => {
    let run: ProgramRun;
    beforeAll(async () => {
        run = await runProgram(WITH_LOGIN);
    });

    test("creates services, configs, a secret and overlay networks, and no container", () => {
        expect(run.ofType(T.container)).toHaveLength(0);
        expect(run.ofType(T.volume)).toHaveLength(0);
        expect(run.ofType(T.service).map((s) => s.inputs.name).sort()).toEqual(["mlapi-dev-app", "mlapi-dev-forwarder", "mlapi-dev-proxy"]);
        expect(run.ofType(T.secret)).toHaveLength(1);
        // nginx.conf, the proxy's front config, the certificate, every frontend file and the forwarder's config.
        expect(run.ofType(T.serviceConfig)).toHaveLength(4 + frontendFiles().length);
        const network = (name: string) => run.ofType(T.network).find((n) => n.inputs.name === name)!;
        expect(run.ofType(T.network)).toHaveLength(3);
        expect(network("mlapi-dev-app").inputs).toMatchObject({ driver: "overlay", internal: true, ipamConfigs: [{ subnet: "10.232.77.0/24", gateway: "10.232.77.1" }] });
        // The forwarders' own, with outside access: host-mode ports are forwarded through it.
        expect(network("mlapi-dev-edge").inputs).toEqual({ name: "mlapi-dev-edge", driver: "overlay" });
        // Forwarders to proxy tasks: internal, on the subnet the proxy believes PROXY headers from.
        expect(network("mlapi-dev-front").inputs).toEqual({ name: "mlapi-dev-front", driver: "overlay", internal: true, ipamConfigs: [{ subnet: "10.213.78.0/24", gateway: "10.213.78.1" }] });
        expect(plainDeep(service(run, "proxy").inputs.taskSpec).networksAdvanceds).toEqual([{ id: "app-net-id" }, { id: "proxy-front-id" }]);
        expect(plainDeep(service(run, "forwarder").inputs.taskSpec).networksAdvanceds).toEqual([{ id: "proxy-edge-id" }, { id: "proxy-front-id" }]);
    });

    test("everything on the swarm goes through the manager's provider; the images are built and pushed by the local engine", () => {
        const onSwarm = [...run.ofType(T.service), ...run.ofType(T.secret), ...run.ofType(T.serviceConfig), ...run.ofType(T.network)];
        for (const r of onSwarm) expect(r.options.provider).toBe("swarm-manager");
        for (const image of run.ofType(T.image)) expect(image.options.provider).toBeUndefined();
        const [provider] = run.ofType(T.dockerProvider);
        const auth = plainDeep(provider.inputs.registryAuth);
        expect(JSON.parse(typeof auth === "string" ? auth : JSON.stringify(auth))).toEqual([{ address: "10.231.7.2:5000", username: "deploy", password: "s3cret-registry-password" }]);
    });

    test("the images are pushed to the registry with its login, the password a secret, and run by digest", () => {
        for (const image of run.ofType(T.image)) {
            expect(image.inputs.imageName).toMatch(/^10\.231\.7\.2:5000\/mlapi-dev-(app|models|proxy):latest$/);
            expect(image.inputs.skipPush).toBe(false);
            expect(plain(image.inputs.registry)).toMatchObject({ server: "10.231.7.2:5000", username: "deploy" });
            expect(isSecretInput(image.inputs.registry.password) || isSecretInput(image.inputs.registry)).toBe(true);
        }
        const app = plainDeep(service(run, "app").inputs.taskSpec).containerSpec;
        expect(app.image).toMatch(/^10\.231\.7\.2:5000\/mlapi-dev-models@sha256:[0-9a-f]{64}$/);
        expect(plainDeep(service(run, "proxy").inputs.taskSpec).containerSpec.image).toMatch(/^10\.231\.7\.2:5000\/mlapi-dev-proxy@sha256:/);
    });

    test("the app is one replicated, health-checked dnsrr service that rolls start-first and rolls back on failure", () => {
        const app = plainDeep(service(run, "app").inputs);
        expect(app.name).toBe("mlapi-dev-app");
        expect(app.mode).toEqual({ replicated: { replicas: 2 } });
        expect(app.endpointSpec).toEqual({ mode: "dnsrr" });
        expect(app.updateConfig).toMatchObject({ parallelism: 1, order: "start-first", failureAction: "rollback" });
        expect(app.rollbackConfig).toMatchObject({ order: "start-first" });
        expect(app.convergeConfig).toBeDefined();
        expect(app.taskSpec.networksAdvanceds).toEqual([{ id: "app-net-id" }]);
        const spec = app.taskSpec.containerSpec;
        expect(spec.healthcheck.tests).toEqual(["CMD", "python3", "-m", "mlapi.healthcheck"]);
        expect(spec.env).toMatchObject({ GUNICORN_BIND: `0.0.0.0:${APP_PORT}`, MLAPI_MAX_BODY_BYTES: "65536" });
        // Swarm decides how many tasks share a node: each task sizes itself to its node.
        expect(spec.env.GUNICORN_REPLICAS).toBeUndefined();
    });

    test("every task gets the containers' hardening that Swarm can carry", () => {
        for (const role of ["app", "proxy"]) {
            const { containerSpec, resources, restartPolicy, logDriver } = plainDeep(service(run, role).inputs.taskSpec);
            expect(containerSpec.readOnly).toBe(true);
            expect(containerSpec.capDrops).toEqual(["ALL"]);
            expect(containerSpec.user).toMatch(/^(10001:10001|33:33)$/);
            expect(containerSpec.mounts).toEqual([{ type: "tmpfs", target: "/tmp", readOnly: false, tmpfsOptions: { sizeBytes: expect.any(Number), mode: 0o777 } }]);
            expect(resources.limits.memoryBytes).toBe((role === "app" ? 256 : 128) * 2 ** 20);
            expect(restartPolicy.condition).toBe("any");
            expect(logDriver).toEqual({ name: "json-file", options: { "max-size": "10m", "max-file": "3" } });
        }
        expect(tmpfsSizeBytes("rw,noexec,nosuid,size=16m")).toBe(16 * 2 ** 20);
        expect(() => tmpfsSizeBytes("rw")).toThrow("have no size");
    });

    test("the forwarder publishes HTTPS and HTTP in host mode, one task per edge node, rolls stop-first and forwards to the proxy's tasks", () => {
        const forwarder = service(run, "forwarder");
        expect(forwarder.inputs.name).toBe("mlapi-dev-forwarder");
        expect(plainDeep(forwarder.inputs.endpointSpec)).toEqual({
            mode: "dnsrr",
            ports: [
                { targetPort: PROXY_HTTPS_PORT, publishedPort: 443, publishMode: "host", protocol: "tcp" },
                { targetPort: PROXY_HTTP_PORT, publishedPort: 80, publishMode: "host", protocol: "tcp" },
            ],
        });
        const architecture = process.arch === "arm64" ? "arm64" : "amd64";
        const spec = plainDeep(forwarder.inputs);
        expect(spec.taskSpec.placement).toEqual({ constraints: ["node.role==manager"], maxReplicas: 1, platforms: [{ os: "linux", architecture }] });
        expect(spec.updateConfig).toMatchObject({ order: "stop-first", failureAction: "rollback" });
        expect(spec.mode).toEqual({ replicated: { replicas: 1 } });
        // The discovery loop runs Nginx's stream module for the proxy service's tasks, one list per port.
        expect(spec.taskSpec.containerSpec.commands).toEqual([
            "mlapi-swarm-proxy",
            "mlapi-dev-proxy",
            `${PROXY_HTTPS_PORT}:${SWARM_FORWARDER_FILES.httpsUpstreams}`,
            `${PROXY_HTTP_PORT}:${SWARM_FORWARDER_FILES.httpUpstreams}`,
            "--",
            ...["nginx", "-e", "stderr", "-c", SWARM_FORWARDER_FILES.config, "-g", "daemon off;"],
        ]);
        expect(spec.taskSpec.containerSpec.healthcheck.tests).toEqual(["CMD", "mlapi-healthcheck", "connect", String(PROXY_HTTP_PORT), "/tmp/nginx.pid"]);
        // Nothing of the key: no secret, and not the key's group.
        expect(spec.taskSpec.containerSpec.secrets).toBeUndefined();
        expect(spec.taskSpec.containerSpec.groups).toBeUndefined();
        expect(plainDeep(service(run, "proxy").inputs.taskSpec).containerSpec.groups).toEqual(["0"]);
        // Made after the proxy service, whose update frees the ports of a stack deployed before forwarders existed.
        expect(forwarder.options.dependencies).toContain("proxy");
        const text = decoded(configFor(run, SWARM_FORWARDER_FILES.config, "forwarder"));
        expect(text).toContain("proxy_protocol on;");
        expect(text).toContain(`include ${SWARM_FORWARDER_FILES.httpsUpstreams};`);
        // Nothing of the site: a new certificate or proxy config leaves it as it is.
        expect(text).not.toMatch(/ssl|server_name|BEGIN CERTIFICATE/);
    });

    test("the proxy publishes nothing, runs beside a new task of itself on an edge node (start-first), its front takes PROXY protocol from the front network only and its site behind it", () => {
        const proxy = plainDeep(service(run, "proxy").inputs);
        expect(proxy.name).toBe("mlapi-dev-proxy");
        expect(proxy.endpointSpec).toEqual({ mode: "dnsrr" });
        expect(proxy.taskSpec.placement).toEqual({ constraints: ["node.role==manager"], maxReplicas: 2, platforms: [{ os: "linux", architecture: process.arch === "arm64" ? "arm64" : "amd64" }] });
        expect(proxy.updateConfig).toMatchObject({ order: "start-first", failureAction: "rollback" });
        expect(proxy.rollbackConfig).toMatchObject({ order: "start-first" });
        // The discovery loop runs the proxy's supervisor (front and slots) for the app service's tasks.
        expect(proxy.taskSpec.containerSpec.commands).toEqual(["mlapi-swarm-proxy", "mlapi-dev-app", `${APP_PORT}:${SWARM_UPSTREAMS_FILE}`, "--", "mlapi-proxy", PROXY_FILES.front, PROXY_FILES.config]);
        expect(proxy.taskSpec.containerSpec.healthcheck.tests).toEqual(["CMD", "mlapi-healthcheck", "proxy-protocol", String(PROXY_HTTP_PORT), "/tmp/mlapi/front/nginx.pid", "/tmp/mlapi/active/nginx.pid"]);
        // The slots drain before the task stops.
        expect(proxy.taskSpec.containerSpec.stopGracePeriod).toBe(`${PROXY_SLOT_DRAIN_SECONDS + 10}s`);
        const front = decoded(configFor(run, PROXY_FILES.front));
        expect(front.match(/^\s*(listen|proxy_pass|set_real_ip_from|proxy_protocol) .*$/gm)?.map((l) => l.trim())).toEqual([
            "proxy_protocol on;",
            "set_real_ip_from 10.213.78.0/24;",
            "listen 8443 proxy_protocol;",
            "proxy_pass unix:/tmp/mlapi/active/https.sock;",
            "listen 8080 proxy_protocol;",
            "proxy_pass unix:/tmp/mlapi/active/http.sock;",
        ]);
        const text = decoded(configFor(run, PROXY_FILES.config));
        expect(text.match(/^\s*listen .*$/gm)?.map((l) => l.trim())).toEqual([
            "listen unix:https.sock ssl proxy_protocol default_server;",
            "listen unix:http.sock proxy_protocol default_server;",
            "listen unix:http.sock proxy_protocol;",
            "listen unix:https.sock ssl proxy_protocol;",
        ]);
        expect(text).toContain("set_real_ip_from unix:;\n    real_ip_header proxy_protocol;");
        expect(text).toContain(`keepalive_time ${PROXY_SLOT_KEEPALIVE_SECONDS}s;`);
    });

    test("the key is a Swarm secret (its data a Pulumi secret), mounted 0440 root:root where Nginx reads it", () => {
        const [secret] = run.ofType(T.secret);
        expect(isSecretInput(secret.inputs.data)).toBe(true);
        expect(decoded(secret)).toContain("PRIVATE KEY-----");
        const mounts = plainDeep(service(run, "proxy").inputs.taskSpec).containerSpec.secrets;
        expect(mounts).toEqual([{ secretId: `${secret.name}-id`, secretName: secret.inputs.name, fileName: PROXY_FILES.certificateKey, fileUid: "0", fileGid: "0", fileMode: 0o440 }]);
        // Named by a digest, not by anything secret.
        expect(isSecretInput(secret.inputs.name)).toBe(false);
        expect(secret.inputs.name).toMatch(/^mlapi-dev-proxy-key-[0-9a-f]{16}$/);
    });

    test("config, certificate and frontend are Swarm configs named by their content, mounted read-only", () => {
        const names = run.ofType(T.serviceConfig).map((c) => c.inputs.name);
        expect(new Set(names).size).toBe(names.length);
        for (const c of run.ofType(T.serviceConfig)) expect(c.inputs.name).toMatch(/^mlapi-dev-proxy-(conf|front|cert|html|fwd)-[0-9a-f]{16}$/);
        const mounts = plainDeep(service(run, "proxy").inputs.taskSpec).containerSpec.configs;
        expect(mounts.map((m: any) => m.fileMode)).toEqual(mounts.map(() => 0o444));
        expect(decoded(configFor(run, PROXY_FILES.certificate))).toContain("BEGIN CERTIFICATE");
        const index = frontendFiles().find((f) => f.path === "index.html")!;
        expect(decoded(configFor(run, `${PROXY_FILES.config.replace("nginx.conf", "html")}/index.html`))).toBe(index.content);
        expect(contentName("mlapi-dev", PROXY_FILES.config, "a")).not.toBe(contentName("mlapi-dev", PROXY_FILES.config, "b"));
        expect(() => contentName(`mlapi-${"x".repeat(40)}`, PROXY_FILES.config, "a")).toThrow("longer than 64 characters");
    });

    test("the rendered config takes its servers from the discovery file (the swarm suite runs it in the image's Nginx)", () => {
        const text = decoded(configFor(run, PROXY_FILES.config));
        expect(text).toMatch(new RegExp(`upstream mlapi_replicas \\{\\n\\s+least_conn;\\n\\s+include ${SWARM_UPSTREAMS_FILE};`));
        expect(text).not.toMatch(/server \d+\.\d+\.\d+\.\d+:\d+/);
        // The most tries, whatever the replicas: scaling leaves the config as it is.
        expect(text).toContain("proxy_next_upstream_tries 4;");
        // No operator listener: Swarm cannot publish a port on loopback only.
        expect(text).not.toContain("9180");
    });

    test("outputs: the url on the edge address, the services' names, nothing secret in plain text", () => {
        expect(run.outputs.url.value).toBe("https://127.0.0.1/");
        expect(run.outputs.appServiceName.value).toBe("mlapi-dev-app");
        expect(run.outputs.proxyServiceName.value).toBe("mlapi-dev-proxy");
        expect(run.outputs.forwarderServiceName.value).toBe("mlapi-dev-forwarder");
        expect(run.outputs.replicaNames).toBeUndefined();
        expect(run.outputs.operatorUrl).toBeUndefined();
        const plainText = JSON.stringify(Object.values(run.outputs).filter((o) => !o.secret).map((o) => o.value));
        expect(plainText).not.toContain("PRIVATE KEY");
        expect(plainText).not.toContain("s3cret-registry-password");
    });
});

describe("changes in swarm mode", () => {
    test("scaling changes only the app service, in place", async () => {
        const before = await runProgram(SWARM);
        const after = await runProgram({ ...SWARM, replicas: "4" });
        const steps = enginePlan(before.resources, after.resources).map(describeStep);
        // The proxy's config names no replica, so nothing of the proxy changes.
        expect(steps).toEqual(["update app"]);
        expect(plainDeep(service(after, "app").inputs).mode).toEqual({ replicated: { replicas: 4 } });
    });

    test("a new certificate makes new content-named configs and a new secret; the old ones go at the end, after the proxy moved on", async () => {
        const before = await runProgram(SWARM);
        const after = await runProgram({ ...SWARM, certValidityDays: "120" });
        const steps = enginePlan(before.resources, after.resources);
        const created = steps.filter((s) => s.op === "create").map((s) => (s as any).resource);
        const deleted = steps.filter((s) => s.op === "delete").map((s) => (s as any).old as RecordedResource);
        expect(created.filter((r) => r.type === T.secret)).toHaveLength(1);
        // nginx.conf names the certificate's path, not its content: it stays.
        expect(created.filter((r) => r.type === T.serviceConfig).map((r) => r.name)).toEqual(["proxy-server.crt"]);
        // A new certificate comes with a new key (TlsCertificate rotates both).
        expect(deleted.map((r) => r.type).sort()).toEqual([T.serviceConfig, T.secret, T.key, T.selfSigned].sort());
        expect(steps.filter((s) => s.op === "update").map(describeStep)).toEqual(["update proxy"]);
        // Deletes only after every create: the proxy service points at the new ones first.
        const lastCreate = Math.max(...steps.map((s, i) => (s.op !== "delete" ? i : -1)));
        expect(steps.findIndex((s) => s.op === "delete")).toBeGreaterThan(lastCreate);
        // The provider would delete a named resource first (deleteFirstByProvider), which Swarm refuses for a config in use: the program says otherwise.
        for (const old of deleted.filter((r) => r.type.startsWith("docker:"))) {
            expect(deleteFirstByProvider(old)).toBe(true);
            expect(old.options).toMatchObject({ deleteBeforeReplace: false, deleteBeforeReplaceSet: true });
        }
    });

    test("the plan follows the docker provider: a named resource or a container is replaced delete-first unless the program says otherwise", async () => {
        const run = await runProgram(SWARM);
        for (const network of run.ofType(T.network)) expect(deleteFirstByProvider(network)).toBe(true);
        for (const image of run.ofType(T.image)) expect(deleteFirstByProvider(image)).toBe(false);
        for (const tls of run.resources.filter((r) => r.type.startsWith("tls:"))) expect(deleteFirstByProvider(tls)).toBe(false);
    });
});
