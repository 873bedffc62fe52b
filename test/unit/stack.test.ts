// The resource graph of index.ts under Pulumi mocks.
import * as crypto from "crypto";
import { isSecretInput, plain, runProgram, ProgramRun, RESOURCE_TYPES as T } from "./program";
import { PROXY_FILES } from "../../components/layout";
import * as fs from "fs";
import { deployFilesDigest, frontendFiles } from "../../components/proxyConfig";

const appContainers = (run: ProgramRun) => run.ofType(T.container).filter((c) => c.inputs.labels.some((l: any) => l.value === "app"));
const withRole = (run: ProgramRun, role: string) => run.ofType(T.container).find((c) => c.inputs.labels.some((l: any) => l.label === "mlapi.role" && l.value === role))!;
const proxyContainer = (run: ProgramRun) => withRole(run, "proxy");
/** The never-started container that receives the proxy's files into their volume. */
/** The one-shot container that receives the proxy's files, checks them and installs them into their volume. */
const filesLoader = (run: ProgramRun) => withRole(run, "proxy-install");
const uploadedFile = (run: ProgramRun, file: string): string => plain(filesLoader(run).inputs.uploads).find((u: any) => u.file === file).content;
const portHolder = (run: ProgramRun) => withRole(run, "proxy-ports");
const exporter = (run: ProgramRun) => withRole(run, "proxy-exporter");
const keeper = (run: ProgramRun) => withRole(run, "proxy-keeper");
/** The containers that serve: the replicas and Nginx (not the one-shot steps, the sleeping port holder, the exporter or the keeper). */
const runningContainers = (run: ProgramRun) => run.ofType(T.container).filter((c) => !c.inputs.attach && ![portHolder(run), exporter(run), keeper(run)].includes(c));

jest.setTimeout(60_000);

describe.each([1, 2, 5])("with %i replica(s)", (replicas) => {
    let run: ProgramRun;
    beforeAll(async () => {
        run = await runProgram({ replicas: String(replicas) });
    });

    test("creates exactly the expected resources", () => {
        expect(run.ofType(T.key)).toHaveLength(1);
        expect(run.ofType(T.selfSigned)).toHaveLength(1);
        expect(run.ofType(T.image)).toHaveLength(3);
        expect(run.ofType(T.network)).toHaveLength(2);
        expect(run.ofType(T.volume)).toHaveLength(1);
        expect(appContainers(run)).toHaveLength(replicas);
        expect(run.ofType(T.container)).toHaveLength(replicas + 6);
        const custom = run.resources.filter((r) => !r.type.startsWith("mlapi:"));
        expect(custom).toHaveLength(1 + 1 + 3 + 2 + 1 + replicas + 6);
    });

    test("replicas are named by number and settings, share an alias, and take Docker's addresses on the internal network", () => {
        const apps = appContainers(run);
        const names = apps.map((c) => c.inputs.name);
        names.forEach((name, i) => expect(name).toMatch(new RegExp(`^mlapi-dev-app-${i + 1}-[0-9a-f]{8}$`)));
        for (const c of apps) expect(c.inputs.hostname).toBe(c.inputs.name);
        // All replicas run the same settings: only their number (and its label) tells them apart.
        expect(new Set(names.map((n: string) => n.slice(n.lastIndexOf("-")))).size).toBe(replicas > 1 ? replicas : 1);
        const appNet = run.ofType(T.network).find((n) => n.inputs.internal)!;
        expect(appNet.inputs.name).toBe("mlapi-dev-app");
        // No fixed addresses: a replica's successor runs beside it, so Docker hands out every address.
        expect(appNet.inputs.ipamConfigs).toEqual([{ subnet: "10.213.77.0/24" }]);
        for (const c of apps) {
            expect(c.inputs.networksAdvanced).toEqual([{ name: "mlapi-dev-app", aliases: ["app"] }]);
            expect(c.inputs.ports ?? []).toEqual([]);
        }
    });

    test("replicas are replaced by create-then-delete, one after the other", () => {
        const apps = appContainers(run);
        apps.forEach((c, i) => {
            expect(c.options.deleteBeforeReplace).toBe(false);
            if (i > 0) expect(c.options.dependencies).toContain(apps[i - 1].name);
        });
    });

    test("the rendered Nginx config lists every replica by its container name, never by an address the engine may change", () => {
        const config = uploadedFile(run, PROXY_FILES.config);
        const servers = config.match(/^\s+server (\S+):8000 /gm)!.map((line) => line.trim().split(/\s+/)[1]);
        expect(servers.sort()).toEqual(appContainers(run).map((c) => `${c.inputs.name}:8000`).sort());
        for (const c of appContainers(run)) {
            for (const data of c.state.networkDatas) expect(config).not.toContain(data.ipAddress);
        }
    });

    test("the install step checks the config on the app network, where the replicas' names resolve", () => {
        expect(filesLoader(run).inputs.networkMode).toBe(run.ofType(T.network).find((n) => n.inputs.internal)!.inputs.name);
    });

    test("each replica knows how many share the host's CPUs, so they size their workers together", () => {
        for (const c of appContainers(run)) {
            expect(c.inputs.envs).toContain(`GUNICORN_REPLICAS=${replicas}`);
            expect(c.inputs.envs.some((e: string) => e.startsWith("GUNICORN_WORKERS="))).toBe(false);
        }
    });

    test("outputs name every replica", () => {
        expect(run.outputs.replicaNames.value).toEqual(appContainers(run).map((c) => c.inputs.name));
    });
});

describe("default stack", () => {
    let run: ProgramRun;
    beforeAll(async () => {
        run = await runProgram();
    });

    test("the key and certificate reproduce the tutorial's", () => {
        const key = run.ofType(T.key)[0];
        expect(key.inputs).toMatchObject({ algorithm: "RSA", rsaBits: 2048 });
        const cert = run.ofType(T.selfSigned)[0];
        expect(cert.inputs.subject).toEqual({
            country: "KE", province: "Nairobi", locality: "Nairobi", organization: "Teaching Lab", organizationalUnit: "IT Department", commonName: "localhost",
        });
        expect(cert.inputs.dnsNames).toEqual(["localhost", "customized-ubuntu-server-smm"]);
        expect(cert.inputs.ipAddresses).toEqual(["127.0.0.1"]);
        expect(cert.inputs.validityPeriodHours).toBe(90 * 24);
        expect(cert.inputs.earlyRenewalHours).toBe(30 * 24);
        expect(cert.inputs.allowedUses).toEqual(["server_auth", "digital_signature", "key_encipherment"]);
    });

    test("outputs: url, API url, certificate facts, images; never the key", () => {
        expect(run.outputs.url.value).toBe("https://127.0.0.1/");
        expect(run.outputs.apiUrl.value).toBe("https://127.0.0.1/api/v1/");
        const certPem = run.outputs.certificatePem.value as string;
        const x509 = new crypto.X509Certificate(certPem);
        expect(run.outputs.certificateFingerprintSha256.value).toBe(x509.fingerprint256);
        expect(run.outputs.certificateNotAfter.value).toBe(new Date(x509.validTo).toISOString());
        expect(run.outputs.certificateDaysLeft.value).toBeGreaterThanOrEqual(89);
        expect(String(run.outputs.appImage.value)).toMatch(/^mlapi-dev-app:latest \(sha256:[0-9a-f]{64}\)$/);
        expect(String(run.outputs.proxyImage.value)).toMatch(/^mlapi-dev-proxy:latest \(sha256:[0-9a-f]{64}\)$/);
        for (const [name, output] of Object.entries(run.outputs)) {
            expect([name, JSON.stringify(output.value ?? "")]).not.toEqual([name, expect.stringMatching(/PRIVATE KEY/)]);
        }
    });

    test("no output is undefined (Pulumi would warn on every `pulumi up`); the CA and CSR outputs exist only in their modes", () => {
        for (const [name, output] of Object.entries(run.outputs)) expect([name, output.value]).not.toEqual([name, undefined]);
        expect(Object.keys(run.outputs)).not.toEqual(expect.arrayContaining(["caCertificatePem"]));
        expect(Object.keys(run.outputs)).not.toEqual(expect.arrayContaining(["certificateSigningRequestPem"]));
    });

    test("images are built for this machine's platform, given explicitly (the provider warns when it is left out)", () => {
        const platform = `linux/${process.arch === "x64" ? "amd64" : process.arch}`;
        for (const image of run.ofType(T.image)) expect(image.inputs.build.platform).toBe(platform);
    });

    test("the private key reaches only the proxy's files, only as a secret upload (0640 root:root, read by Nginx's group)", () => {
        const keyPem: string = plain(run.ofType(T.key)[0].state.privateKeyPem);
        expect(keyPem).toMatch(/PRIVATE KEY/);
        const keyBody = keyPem.split("\n")[1];
        const loader = filesLoader(run);
        expect(isSecretInput(loader.inputs.uploads)).toBe(true);
        const keyUpload = plain(loader.inputs.uploads).find((u: any) => u.file === PROXY_FILES.certificateKey);
        // Root-owned (no owner or group: Docker 20.10 refuses them), read by Nginx through group 0.
        expect(keyUpload).toEqual({ file: PROXY_FILES.certificateKey, content: keyPem, permissions: "0640" });
        expect(proxyContainer(run).inputs.groupAdds).toEqual(["0"]);
        for (const r of run.resources) {
            if (r === loader || r.type.startsWith("tls:")) continue;
            expect([r.type, r.name, JSON.stringify(r.inputs)]).not.toEqual([r.type, r.name, expect.stringContaining(keyBody)]);
        }
        // Nor in the loader's other inputs: env, labels, command.
        const { uploads, ...rest } = loader.inputs;
        expect(JSON.stringify(rest)).not.toContain(keyBody);
        expect(uploads).toBeDefined();
    });

    test("the proxy's files reach Nginx through a volume it mounts read-only, installed and reloaded by one-shot steps", () => {
        const install = filesLoader(run);
        const reload = withRole(run, "proxy-reload");
        const proxy = proxyContainer(run);
        const oneShot = { start: true, attach: true, logs: true, mustRun: false, restart: "no", image: proxy.inputs.image, capabilities: { drops: ["ALL"] } };
        expect(install.inputs).toMatchObject({ ...oneShot, user: "0:0", networkMode: "mlapi-dev-app", capabilities: { drops: ["ALL"], adds: ["CAP_CHOWN"] } });
        expect(reload.inputs).toMatchObject({ ...oneShot, networkMode: "none", user: "33:33", readOnly: true, pidMode: `container:${proxy.name}-id` });
        for (const step of [install, reload]) expect(step.inputs.ports ?? []).toEqual([]);
        const volume = run.ofType(T.volume)[0].inputs.name;
        expect(install.inputs.mounts).toEqual([{ type: "volume", source: volume, target: "/srv/deploy" }]);
        expect(reload.inputs.mounts).toBeUndefined();
        expect(proxy.inputs.mounts).toEqual([{ type: "volume", source: volume, target: "/etc/nginx/deploy", readOnly: true }]);
        expect(proxy.inputs.uploads).toBeUndefined();
        // Both steps name the set of files; the proxy's own inputs do not follow them.
        const digest = deployFilesDigest(uploadedFile(run, PROXY_FILES.config), uploadedFile(run, PROXY_FILES.front), uploadedFile(run, PROXY_FILES.certificate), frontendFiles());
        expect(install.inputs.command).toEqual(["mlapi-install-files", digest]);
        expect(reload.inputs.command).toEqual(["mlapi-reload", digest]);
        expect(run.outputs.proxyFilesDigest.value).toBe(digest);
        expect(JSON.stringify(proxy.inputs)).not.toContain(digest);
    });

    test("the frontend is uploaded with the files, so a frontend change never makes a new proxy image", () => {
        const uploads = plain(filesLoader(run).inputs.uploads);
        for (const file of frontendFiles()) {
            expect(uploads).toContainEqual({ file: `/etc/nginx/deploy/html/${file.path}`, content: file.content, permissions: "0644" });
        }
        expect(frontendFiles().map((f) => f.path)).toEqual(expect.arrayContaining(["index.html", "assets/app.js"]));
        expect(fs.readFileSync("nginx/.dockerignore", "utf8")).toMatch(/^html\/$/m);
        expect(fs.readFileSync("nginx/Dockerfile", "utf8")).not.toMatch(/COPY[^\n]*html/);
    });

    test("images are local builds from app/ and nginx/, and the served image the model repository on top of the app's, never pushed, with no secret build args", () => {
        const images = run.ofType(T.image);
        expect(images.map((i) => [i.inputs.build.context, i.inputs.build.dockerfile, i.inputs.skipPush]).sort()).toEqual([
            ["app", "app/Dockerfile", true],
            ["models", "app/models.Dockerfile", true],
            ["nginx", "nginx/Dockerfile", true],
        ]);
        const byContext = (context: string) => images.find((i) => i.inputs.build.context === context)!;
        for (const context of ["app", "nginx"]) expect(byContext(context).inputs.build.args).toEqual({ BASE_IMAGE: "debian:trixie-slim" });
        // FROM the app image, by name; its ID as a label: a new app image rebuilds the served one.
        expect(byContext("models").inputs.build.args).toEqual({ APP_IMAGE: byContext("app").inputs.imageName, APP_IMAGE_ID: byContext("app").state.repoDigest });
    });

    test("containers run the images by ID, hardened, with healthchecks, limits and log rotation", () => {
        const digestOf = (context: string) => run.ofType(T.image).find((i) => i.inputs.build.context === context)!.state.repoDigest;
        // Replicas run the served image (the app with the models).
        const [appImage, proxyImage] = [digestOf("models"), digestOf("nginx")];
        for (const c of runningContainers(run)) {
            const isProxy = c === proxyContainer(run);
            expect(c.inputs.image).toBe(isProxy ? proxyImage : appImage);
            expect(c.inputs).toMatchObject({
                readOnly: true,
                securityOpts: ["no-new-privileges=true"],
                capabilities: { drops: ["ALL"] },
                restart: "always",
                logDriver: "json-file",
                logOpts: { "max-size": "10m", "max-file": "3" },
                user: isProxy ? "33:33" : "10001:10001",
                wait: true,
            });
            expect(c.inputs.memory).toBeGreaterThan(0);
            expect(c.inputs.memorySwap).toBe(c.inputs.memory);
            expect(c.inputs.ulimits).toEqual(expect.arrayContaining([expect.objectContaining({ name: "nproc" })]));
            expect(c.inputs.healthcheck.tests[0]).toBe("CMD");
            expect(Object.keys(c.inputs.tmpfs)).toEqual(["/tmp"]);
            expect(c.inputs.privileged ?? false).toBe(false);
            expect(c.inputs.groupAdds).toEqual(isProxy ? ["0"] : undefined);
        }
    });

    test("only the port holder publishes ports (HTTPS, HTTP and the operator listener, on 127.0.0.1); Nginx serves them from its network namespace", () => {
        const holder = portHolder(run);
        expect(holder.inputs.ports).toEqual([
            { internal: 8443, external: 443, ip: "127.0.0.1", protocol: "tcp" },
            { internal: 8080, external: 80, ip: "127.0.0.1", protocol: "tcp" },
            { internal: 9180, external: 9180, ip: "127.0.0.1", protocol: "tcp" },
        ]);
        expect(run.outputs.operatorUrl.value).toBe("http://127.0.0.1:9180/");
        expect(holder.inputs.networksAdvanced.map((n: any) => n.name)).toEqual(["mlapi-dev-edge", "mlapi-dev-app"]);
        const proxy = proxyContainer(run);
        expect(proxy.inputs.networkMode).toBe(`container:${holder.name}-id`);
        expect(proxy.inputs.ports).toBeUndefined();
        for (const app of appContainers(run)) expect(app.inputs.ports ?? []).toEqual([]);
    });

    test("the Nginx exporter reads stub_status from the operator listener and serves only the namespace's loopback, as nobody, hardened", () => {
        const proxyImage = run.ofType(T.image).find((i) => i.inputs.build.context === "nginx")!.state.repoDigest;
        expect(exporter(run).inputs).toMatchObject({
            name: "mlapi-dev-proxy-exporter",
            image: proxyImage,
            command: ["prometheus-nginx-exporter", "--nginx.scrape-uri=http://127.0.0.1:9180/nginx/status", "--web.listen-address=127.0.0.1:9113", "--nginx.timeout=2s"],
            networkMode: `container:${portHolder(run).name}-id`,
            user: "65534:65534",
            readOnly: true,
            capabilities: { drops: ["ALL"] },
            securityOpts: ["no-new-privileges=true"],
            restart: "always",
        });
        expect(exporter(run).inputs.ports).toBeUndefined();
        expect(exporter(run).options.deleteBeforeReplace).toBe(true);
        // The operator listener serves what it exports.
        expect(uploadedFile(run, PROXY_FILES.config)).toMatch(/location = \/nginx\/metrics \{\n\s+proxy_pass http:\/\/127\.0\.0\.1:9113\/metrics;/);
    });

    test("the keeper watches the holder's namespace through the engine's socket alone: no network, no capability, read-only, no healthcheck", () => {
        const appImage = run.ofType(T.image).find((i) => i.inputs.build.context === "app")!.state.repoDigest;
        expect(keeper(run).inputs).toMatchObject({
            name: "mlapi-dev-proxy-keeper",
            image: appImage,
            command: ["python3", "-m", "mlapi.keeper", portHolder(run).inputs.name, "/run/docker.sock"],
            networkMode: "none",
            mounts: [{ type: "bind", source: "/var/run/docker.sock", target: "/run/docker.sock" }],
            healthcheck: { tests: ["NONE"], interval: "30s", timeout: "5s", startPeriod: "5s", retries: 1 },
            user: "0:0",
            readOnly: true,
            capabilities: { drops: ["ALL"] },
            securityOpts: ["no-new-privileges=true"],
            restart: "always",
        });
        expect(keeper(run).inputs.ports).toBeUndefined();
        expect(keeper(run).options.dependencies).toContain(portHolder(run).name);
    });

    test("the port holder only sleeps, as nobody, hardened, from the base image (a new proxy image leaves it alone)", () => {
        const holder = portHolder(run);
        expect(holder.inputs).toMatchObject({
            image: "debian:trixie-slim",
            command: ["sleep", "infinity"],
            user: "65534:65534",
            readOnly: true,
            capabilities: { drops: ["ALL"] },
            securityOpts: ["no-new-privileges=true"],
        });
        expect(holder.options.deleteBeforeReplace).toBe(true);
        expect(holder.inputs.mounts ?? []).toEqual([]);
        expect(holder.inputs.uploads).toBeUndefined();
    });

    test("the Nginx container is named by its settings and replaced create-then-delete", () => {
        const proxy = proxyContainer(run);
        expect(proxy.inputs.name).toMatch(/^mlapi-dev-proxy-[0-9a-f]{8}$/);
        expect(proxy.options.deleteBeforeReplace).toBe(false);
        expect(run.outputs.proxyContainerName.value).toBe(proxy.inputs.name);
    });
});

describe("configuration reaches the resources", () => {
    test("a build CA reaches only the app image's build args", async () => {
        const fs = await import("fs");
        const os = await import("os");
        const path = await import("path");
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-ca-")), "ca.pem");
        const caPem = (await runProgram()).outputs.certificatePem.value as string;
        fs.writeFileSync(file, caPem);
        const run = await runProgram({ buildCaCertFile: file });
        const image = (context: string) => run.ofType(T.image).find((i) => i.inputs.build.context === context)!;
        const [app, proxy] = [image("app"), image("nginx")];
        expect(app.inputs.build.args).toEqual({ BASE_IMAGE: "debian:trixie-slim", BUILD_CA_CERT: caPem });
        expect(proxy.inputs.build.args).toEqual({ BASE_IMAGE: "debian:trixie-slim" });
    });

    test("operatorPort 0 publishes no operator listener and has no output for it", async () => {
        const run = await runProgram({ operatorPort: "0" });
        expect(portHolder(run).inputs.ports.map((p: any) => p.internal)).toEqual([8443, 8080]);
        expect(run.outputs).not.toHaveProperty("operatorUrl");
        // Nginx still runs the listener inside its namespace: the config does not depend on the host port.
        expect(uploadedFile(run, PROXY_FILES.config)).toContain("stub_status;");
    });

    test("ports, bind address, key algorithm, names and validity", async () => {
        const run = await runProgram({
            httpsPort: "8443", httpPort: "8080", bindAddress: "0.0.0.0", keyAlgorithm: "ECDSA-P384",
            certDnsNames: '["api.example.test"]', certIpAddresses: "127.0.0.1,10.0.0.5", certValidityDays: "30", certRenewalDays: "10",
        });
        expect(run.outputs.url.value).toBe("https://127.0.0.1:8443/");
        // The operator listener stays on loopback whatever bindAddress is.
        expect(portHolder(run).inputs.ports.map((p: any) => [p.external, p.ip])).toEqual([[8443, "0.0.0.0"], [8080, "0.0.0.0"], [9180, "127.0.0.1"]]);
        expect(run.ofType(T.key)[0].inputs).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P384" });
        const cert = run.ofType(T.selfSigned)[0];
        expect(cert.inputs).toMatchObject({ dnsNames: ["api.example.test"], ipAddresses: ["127.0.0.1", "10.0.0.5"], validityPeriodHours: 720, earlyRenewalHours: 240 });
        expect(cert.inputs.allowedUses).toEqual(["server_auth", "digital_signature"]);
        const config = uploadedFile(run, PROXY_FILES.config);
        expect(config).toContain("server_name api.example.test 127.0.0.1 10.0.0.5;");
        expect(config).toContain("return 308 https://$host:8443$request_uri;");
    });

    test("worker counts of the app and the proxy", async () => {
        expect(uploadedFile(await runProgram(), PROXY_FILES.config)).toMatch(/^worker_processes 1;$/m);
        const run = await runProgram({ appWorkers: "3", proxyWorkers: "0" });
        expect(uploadedFile(run, PROXY_FILES.config)).toMatch(/^worker_processes auto;$/m);
        for (const c of appContainers(run)) expect(c.inputs.envs).toContain("GUNICORN_WORKERS=3");
    });

    test("a bad value stops the program before any resource is created", async () => {
        const resources: unknown[] = [];
        await expect(
            runProgram({ replicas: "two" }).then((run) => resources.push(...run.resources)),
        ).rejects.toThrow(/https-ml-api:replicas is "two": expected a whole number from 1 to 32/);
        expect(resources).toHaveLength(0);
    });
});

test("a typo in a key stops the program", async () => {
    await expect(runProgram({ replica: "3" })).rejects.toThrow(/https-ml-api:replica is not a setting of this stack/);
});
