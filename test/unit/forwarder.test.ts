// Swarm mode's port forwarder and the proxy task behind it (its supervisor,
// nginx/bin/mlapi-proxy: a front that takes the forwarder's PROXY protocol
// headers, the site in a slot behind it), with Debian's Nginx on this
// machine (the stream module: libnginx-mod-stream): the rendered configs
// pass `nginx -t`, a client's connection through the forwarder reaches the
// site with the client's own address, a PROXY header from anywhere but the
// forwarder's network is not believed, and the health check's modes
// (nginx/bin/mlapi-healthcheck) tell each apart.
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { DEFAULTS } from "../../components/config";
import { renderForwarderConfig } from "../../components/forwarderConfig";
import { renderNginxConfig } from "../../components/nginxConfig";
import { PROXY_SLOT_SOCKETS } from "../../components/layout";
import { SLOT_SITE, STREAM_MODULE, proxyFrontConfig, swarmForwarderConfig } from "../../components/proxyConfig";
import { hostNginxVersion, nginxConfigTest } from "../support/nginx";
import { generateKey, selfSignedCert } from "../support/openssl";
import { waitFor } from "../support/processes";

const PORTS = { proxyHttp: 28080, proxyHttps: 28443, forwarder: 28081 };
const HEALTHCHECK = path.resolve(__dirname, "../../nginx/bin/mlapi-healthcheck");
const SUPERVISOR = path.resolve(__dirname, "../../nginx/bin/mlapi-proxy");
const DISCOVERY_LOOP = path.resolve(__dirname, "../../nginx/bin/mlapi-swarm-proxy");

let dir: string;
const running: ChildProcess[] = [];
let proxyTask: ChildProcess;
let proxyTaskLog = "";

function write(name: string, text: string): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
}

/** The proxy task's site, as a slot runs it (SLOT_SITE). */
function proxyConfig(): string {
    return renderNginxConfig({
        serverNames: ["localhost"],
        upstreams: ["127.0.0.1:28999"],
        listenHttpsPort: PORTS.proxyHttps,
        listenHttpPort: PORTS.proxyHttp,
        ...SLOT_SITE,
        publicHttpsPort: PORTS.proxyHttps,
        nginxVersion: hostNginxVersion(),
        limits: { rateLimitPerSecond: 100, rateLimitBurst: 200, maxBodyKb: 64, proxyWorkers: 1 },
        paths: {
            certificate: path.join(dir, "server.crt"),
            certificateKey: path.join(dir, "server.key"),
            staticRoot: path.resolve(__dirname, "../../nginx/html"),
            runtimeDir: ".",
            mimeTypes: "/etc/nginx/mime.types",
            accessLog: path.join(dir, "access.log"),
            errorLog: path.join(dir, "proxy-error.log"),
        },
    });
}

/** The proxy task's front on loopback ports, believing PROXY headers from 127.0.0.1 only (the "forwarder's network" here). */
function frontConfig(): string {
    return renderForwarderConfig({
        ports: [
            { name: "https", listenPort: PORTS.proxyHttps, socket: path.join(dir, "slots", "active", PROXY_SLOT_SOCKETS.https) },
            { name: "http", listenPort: PORTS.proxyHttp, socket: path.join(dir, "slots", "active", PROXY_SLOT_SOCKETS.http) },
        ],
        workers: 1,
        streamModule: STREAM_MODULE,
        runtimeDir: path.join(dir, "slots", "front"),
        errorLog: path.join(dir, "front-error.log"),
        reuseport: false,
        acceptProxyProtocolFrom: ["127.0.0.1/32"],
    });
}

function forwarderConfig(): string {
    const runtime = path.join(dir, "forwarder");
    fs.mkdirSync(runtime, { recursive: true });
    write("forward-http.conf", `server 127.0.0.1:${PORTS.proxyHttp} max_fails=2 fail_timeout=5s;\n`);
    return renderForwarderConfig({
        ports: [{ name: "http", listenPort: PORTS.forwarder, upstreamFile: path.join(dir, "forward-http.conf") }],
        workers: 1,
        streamModule: STREAM_MODULE,
        runtimeDir: runtime,
        errorLog: path.join(dir, "forwarder-error.log"),
        reuseport: false,
    });
}

/** Sends raw bytes from a local address; resolves with what came back before the server closed (or 2 s passed). */
function exchange(port: number, localAddress: string, bytes: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const socket = net.connect({ host: "127.0.0.1", port, localAddress });
        let received = "";
        socket.setTimeout(2000, () => socket.destroy());
        socket.on("connect", () => socket.write(bytes));
        socket.on("data", (chunk) => (received += chunk.toString("latin1")));
        socket.on("close", () => resolve(received));
        socket.on("error", (error: NodeJS.ErrnoException) => (error.code === "ECONNRESET" ? resolve(received) : reject(error)));
    });
}

/** The access log's remote address of the request with this URI, once Nginx has flushed it. */
function loggedAddress(uri: string): Promise<string> {
    return waitFor(`the access log to show ${uri}`, () => {
        const lines = fs.existsSync(path.join(dir, "access.log")) ? fs.readFileSync(path.join(dir, "access.log"), "utf8").split("\n") : [];
        const line = lines.find((l) => l.includes(`"uri":"${uri}"`));
        return line ? String(JSON.parse(line).remote_addr) : undefined;
    }, 5000, 100);
}

function healthcheck(args: string[]): number | null {
    return spawnSync(HEALTHCHECK, args, { encoding: "utf8", timeout: 10_000 }).status;
}

/** The proxy's masters: its front and its active slot. */
const PROXY_PID_FILES = () => [path.join(dir, "slots", "front", "nginx.pid"), path.join(dir, "slots", "active", "nginx.pid")];

const request = (uri: string) => `GET ${uri} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`;

beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-forwarder-unit-"));
    fs.chmodSync(dir, 0o755);
    const keyPem = generateKey("RSA-2048");
    write("server.key", keyPem);
    write("server.crt", selfSignedCert({ keyPem, subject: DEFAULTS.certSubject, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityHours: 24, allowedUses: ["server_auth"] }));
    // As the proxy task runs it: the supervisor under the discovery loop (of a service no DNS knows here).
    proxyTask = spawn(DISCOVERY_LOOP, ["mlapi-nowhere", `8000:${path.join(dir, "upstreams.conf")}`, "--", SUPERVISOR, write("front.conf", frontConfig()), write("proxy.conf", proxyConfig())], {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, PATH: `${path.dirname(SUPERVISOR)}:${process.env.PATH}`, MLAPI_SLOTS_DIR: path.join(dir, "slots"), MLAPI_DRAIN_SECONDS: "1" },
    });
    proxyTask.stderr!.on("data", (chunk: Buffer) => (proxyTaskLog += chunk.toString()));
    running.push(proxyTask);
    const forwarder = write("forwarder.conf", forwarderConfig());
    running.push(spawn("nginx", ["-c", forwarder, "-e", path.join(dir, "forwarder.conf.stderr"), "-g", "daemon off;"], { stdio: "ignore" }));
    await waitFor("the forwarder and the proxy's front and slot to listen", async () => ((await exchange(PORTS.forwarder, "127.0.0.1", "").catch(() => undefined)) !== undefined && PROXY_PID_FILES().every((f) => fs.existsSync(f)) ? true : undefined), 10_000, 100);
}, 30_000);

afterAll(async () => {
    for (const child of running) child.kill("SIGQUIT");
    await Promise.all(running.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.on("exit", resolve)))));
    fs.rmSync(dir, { recursive: true, force: true });
});

test("the forwarder's config, as deployed and as run here, passes nginx -t with the stream module", () => {
    expect(fs.existsSync(STREAM_MODULE)).toBe(true);
    for (const list of ["proxy-https.conf", "proxy-http.conf"]) write(list, "server 10.213.78.5:8443;\n");
    fs.mkdirSync(path.join(dir, "mlapi", "front"), { recursive: true });
    const fronts = [proxyFrontConfig({ workers: 1 }), proxyFrontConfig({ workers: 1, frontSubnet: "10.213.78.0/24" })].map((text) => text.replaceAll("/tmp/", `${dir}/`));
    for (const text of [forwarderConfig(), frontConfig(), swarmForwarderConfig(1).replaceAll("/tmp/", `${dir}/`), ...fronts]) {
        const result = nginxConfigTest(text, dir, "check.conf");
        expect(result.output).toContain("test is successful");
        expect(result.output).not.toMatch(/\[warn\]/);
    }
    // The check can fail: an upstream the config does not define.
    expect(nginxConfigTest(forwarderConfig().replace("proxy_pass mlapi_http;", "proxy_pass nowhere;"), dir, "broken.conf").ok).toBe(false);
});

test("a client's connection through the forwarder and the proxy's front reaches the site under the client's own address", async () => {
    const answer = await exchange(PORTS.forwarder, "127.0.0.2", request("/through-forwarder"));
    expect(answer).toMatch(/^HTTP\/1\.1 308 /);
    expect(await loggedAddress("/through-forwarder")).toBe("127.0.0.2");
});

test("a PROXY header from outside the forwarder's network is not believed by the front; a connection without one gets no answer", async () => {
    const forged = await exchange(PORTS.proxyHttp, "127.0.0.3", `PROXY TCP4 203.0.113.9 127.0.0.1 5555 ${PORTS.proxyHttp}\r\n${request("/forged")}`);
    expect(forged).toMatch(/^HTTP\/1\.1 308 /);
    expect(await loggedAddress("/forged")).toBe("127.0.0.3");
    expect(await exchange(PORTS.proxyHttp, "127.0.0.1", request("/no-header"))).toBe("");
});

test("the health check's modes: proxy-protocol for the proxy, connect for the forwarder, and plain HTTP fails behind PROXY protocol", () => {
    const proxyPids = PROXY_PID_FILES();
    const forwarderPid = path.join(dir, "forwarder", "nginx.pid");
    expect(healthcheck(["proxy-protocol", String(PORTS.proxyHttp), ...proxyPids])).toBe(0);
    expect(healthcheck(["http", String(PORTS.proxyHttp), ...proxyPids])).not.toBe(0);
    expect(healthcheck(["connect", String(PORTS.forwarder), forwarderPid])).toBe(0);
    // A pid file of no running master, or no pid file at all.
    expect(healthcheck(["connect", String(PORTS.forwarder), path.join(dir, "nowhere", "nginx.pid")])).not.toBe(0);
    expect(healthcheck(["connect", String(PORTS.forwarder), forwarderPid, path.join(dir, "front-error.log")])).not.toBe(0);
    expect(healthcheck(["sideways", String(PORTS.proxyHttp), ...proxyPids])).toBe(2);
    expect(healthcheck(["http", String(PORTS.proxyHttp)])).toBe(2);
});

test("SIGQUIT to the proxy task's discovery loop reaches the supervisor, which drains its slot and exits, and the loop with it", async () => {
    const started = Date.now();
    proxyTask.kill("SIGQUIT");
    const code = await new Promise<number | null>((resolve) => (proxyTask.exitCode !== null ? resolve(proxyTask.exitCode) : proxyTask.once("exit", resolve)));
    expect(code).toBe(0);
    expect(proxyTaskLog).toContain("mlapi-proxy: stopping");
    expect(proxyTaskLog).toContain("mlapi-proxy: stopped");
    // The drain (MLAPI_DRAIN_SECONDS 1 here), not a kill after a timeout.
    expect(Date.now() - started).toBeLessThan(10_000);
}, 20_000);
