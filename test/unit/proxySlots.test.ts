// The proxy container's supervisor (nginx/bin/mlapi-proxy), run here with
// Debian's Nginx as the proxy image runs it: the front holds the ports, the
// site runs in slots behind it, and a reload starts a new slot. Through
// reloads under a paced load of every client kind the suites use, Python's
// http.client and requests (which never resend) included, no request fails;
// the client's own address reaches the site's log; a config the site's
// Nginx refuses leaves the running slot serving; SIGQUIT drains and exits.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { DEFAULTS } from "../../components/config";
import { renderForwarderConfig } from "../../components/forwarderConfig";
import { renderNginxConfig } from "../../components/nginxConfig";
import { SLOT_SITE, STREAM_MODULE } from "../../components/proxyConfig";
import { PROXY_SLOT_DRAIN_SECONDS as DRAIN_SECONDS, PROXY_SLOT_KEEPALIVE_SECONDS, PROXY_SLOT_SOCKETS } from "../../components/layout";
import { hostNginxVersion } from "../support/nginx";
import { generateKey, selfSignedCert } from "../support/openssl";
import { ENGINE_CLIENTS, startPacedLoad } from "../support/pacedLoad";
import { waitFor } from "../support/processes";

const SUPERVISOR = path.resolve(__dirname, "../../nginx/bin/mlapi-proxy");
const PORTS = { https: 29443, http: 29080, operator: 29180 };

let dir: string;
let slots: string;
let certPem: string;
let upstream: http.Server;
let upstreamPort: number;
let supervisor: ChildProcess;
let supervisorLog = "";

function siteConfig(): string {
    return renderNginxConfig({
        serverNames: ["localhost", "127.0.0.1"],
        upstreams: [`127.0.0.1:${upstreamPort}`],
        listenHttpsPort: PORTS.https,
        listenHttpPort: PORTS.http,
        ...SLOT_SITE,
        publicHttpsPort: PORTS.https,
        nginxVersion: hostNginxVersion(),
        // Far above the load: the per-client limit must not answer 429 here.
        limits: { rateLimitPerSecond: 1000, rateLimitBurst: 1000, maxBodyKb: 64, proxyWorkers: 1 },
        operator: { port: PORTS.operator, deniedNetworks: ["10.213.77.0/24"], replicas: [] },
        paths: {
            certificate: path.join(dir, "server.crt"),
            certificateKey: path.join(dir, "server.key"),
            staticRoot: path.resolve(__dirname, "../../nginx/html"),
            runtimeDir: ".",
            mimeTypes: "/etc/nginx/mime.types",
            accessLog: path.join(dir, "access.log"),
            errorLog: "stderr",
        },
    });
}

function frontConfig(): string {
    return renderForwarderConfig({
        ports: (["https", "http", "operator"] as const).map((name) => ({ name, listenPort: PORTS[name], socket: path.join(slots, "active", PROXY_SLOT_SOCKETS[name]) })),
        workers: 1,
        streamModule: STREAM_MODULE,
        runtimeDir: path.join(slots, "front"),
        errorLog: "stderr",
        reuseport: true,
    });
}

/** The slots' Nginx masters, by the supervisor's log lines. */
const activations = () => supervisorLog.match(/slot \d+ takes new connections/g)?.length ?? 0;

function reload(): Promise<number> {
    const before = activations();
    supervisor.kill("SIGHUP");
    return waitFor("the supervisor to swap slots", () => (activations() > before ? activations() : undefined), 15_000, 50);
}

const get = (pathname: string) =>
    new Promise<{ status: number; body: string; connection?: string }>((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port: PORTS.http, path: pathname, headers: { Host: "localhost" }, localAddress: "127.0.0.3" }, (res) => {
            let body = "";
            res.on("data", (chunk) => (body += chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
        });
        req.on("error", reject);
    });

beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-slots-unit-"));
    fs.chmodSync(dir, 0o755);
    slots = path.join(dir, "slots");
    const keyPem = generateKey("RSA-2048");
    fs.writeFileSync(path.join(dir, "server.key"), keyPem, { mode: 0o600 });
    certPem = selfSignedCert({ keyPem, subject: DEFAULTS.certSubject, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityHours: 24, allowedUses: ["server_auth"] });
    fs.writeFileSync(path.join(dir, "server.crt"), certPem);
    // The app replica: answers every request at once.
    upstream = http.createServer((req, res) => {
        req.resume();
        req.on("end", () => {
            res.writeHead(200, { "Content-Type": "application/json" });
            res.end('{"Predicted Class = ":1}');
        });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamPort = (upstream.address() as { port: number }).port;
    fs.writeFileSync(path.join(dir, "nginx.conf"), siteConfig());
    fs.writeFileSync(path.join(dir, "front.conf"), frontConfig());
    supervisor = spawn(SUPERVISOR, [path.join(dir, "front.conf"), path.join(dir, "nginx.conf")], {
        env: { ...process.env, MLAPI_SLOTS_DIR: slots, MLAPI_DRAIN_SECONDS: String(DRAIN_SECONDS) },
        stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [supervisor.stdout!, supervisor.stderr!]) stream.on("data", (chunk: Buffer) => (supervisorLog += chunk.toString()));
    await waitFor("the front to answer", async () => ((await get("/").catch(() => undefined))?.status === 308 ? true : undefined), 15_000, 100);
}, 30_000);

afterAll(async () => {
    if (supervisor.exitCode === null) {
        supervisor.kill("SIGTERM");
        await new Promise((resolve) => supervisor.once("exit", resolve));
    }
    upstream.close();
    fs.rmSync(dir, { recursive: true, force: true });
});

test("the client's own address reaches the site through the front (PROXY protocol over the slot's socket)", async () => {
    await get("/through-front");
    const line = await waitFor("the access log to show the request", () => {
        const text = fs.existsSync(path.join(dir, "access.log")) ? fs.readFileSync(path.join(dir, "access.log"), "utf8") : "";
        return text.split("\n").find((l) => l.includes('"uri":"/through-front"'));
    }, 5000, 100);
    expect(JSON.parse(line).remote_addr).toBe("127.0.0.3");
});

test("every client kind loses no request through three reloads, Python's http.client and requests included", async () => {
    const loads = ENGINE_CLIENTS.map((client) => startPacedLoad({ url: `https://127.0.0.1:${PORTS.https}/`, ca: certPem, client, connections: 2, ratePerSecond: 20, maxSeconds: 120 }));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    for (let change = 0; change < 3; change++) {
        await reload();
        // Longer than the drain: each reload retires a slot with the load's connections on it.
        await new Promise((resolve) => setTimeout(resolve, (DRAIN_SECONDS + 1) * 1000));
    }
    const reports = await Promise.all(loads.map((load) => load.stop()));
    for (const report of reports) {
        expect(report.requests).toBeGreaterThan(100);
        expect({ client: report.client, failed: report.failed, failures: report.failures }).toEqual({ client: report.client, failed: 0, failures: {} });
    }
    // The retired slots quit and their directories are gone: only the active one is left.
    await waitFor("the retired slots to quit", () => (fs.readdirSync(slots).filter((name) => name.startsWith("slot-")).length === 1 ? true : undefined), 10_000, 100);
}, 120_000);

test("a kept-alive connection is closed after a response once it is keepalive_time old, never while idle", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ask = () =>
        new Promise<string | undefined>((resolve, reject) => {
            http.get({ host: "127.0.0.1", port: PORTS.http, path: "/", headers: { Host: "localhost" }, agent }, (res) => {
                res.resume();
                res.on("end", () => resolve(res.headers.connection));
            }).on("error", reject);
        });
    expect(await ask()).toBe("keep-alive");
    await new Promise((resolve) => setTimeout(resolve, (PROXY_SLOT_KEEPALIVE_SECONDS + 0.5) * 1000));
    expect(await ask()).toBe("close");
    agent.destroy();
}, 30_000);

test("a site config Nginx refuses leaves the running slot serving, and the next good one is taken", async () => {
    const good = fs.readFileSync(path.join(dir, "nginx.conf"), "utf8");
    fs.writeFileSync(path.join(dir, "nginx.conf"), good.replace("proxy_pass http://mlapi_replicas;", "proxy_pass http://nowhere_defined;"));
    const before = activations();
    supervisor.kill("SIGHUP");
    await waitFor("the supervisor to report the failed reload", () => (/reload failed/.test(supervisorLog) ? true : undefined), 15_000, 100);
    expect(activations()).toBe(before);
    expect((await get("/")).status).toBe(308);
    fs.writeFileSync(path.join(dir, "nginx.conf"), good);
    await reload();
    expect((await get("/")).status).toBe(308);
}, 60_000);

test("SIGQUIT stops the front taking connections, drains the slots and exits 0", async () => {
    const started = Date.now();
    supervisor.kill("SIGQUIT");
    const code = await new Promise<number | null>((resolve) => supervisor.once("exit", resolve));
    expect(code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual((DRAIN_SECONDS - 1) * 1000);
    await expect(get("/")).rejects.toThrow(/ECONNREFUSED/);
    expect(supervisorLog).toContain("mlapi-proxy: stopped");
}, 30_000);
