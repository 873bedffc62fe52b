// Runs the topology the stack computes, with the stack's own code, as local
// processes on loopback: N Gunicorn replicas of the real app, and Debian's
// Nginx with the config rendered by components/nginxConfig.ts (only paths,
// ports and upstream addresses differ from the container's), serving a
// certificate issued from the same settings (subject, SANs, key type,
// validity, usages) the stack config gives. Everything it starts is stopped
// on stop(), on process exit and on Ctrl-C.
import { ChildProcess } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { CA_CERT_USES, CA_VALIDITY_DAYS, serverCertUses, validityHours } from "../../components/certificate";
import { parseSettings, StackSettings } from "../../components/config";
import { renderNginxConfig } from "../../components/nginxConfig";
import { appEnvironment, replicaSettings } from "../../components/appSpec";
import { certRequest, generateKey, selfSignedCert, signCert } from "../support/openssl";
import { hostNginxVersion } from "../support/nginx";
import { request } from "../support/http";
import { startGroup, stopGroup, waitFor } from "../support/processes";

export { waitFor };

export const PROJECT_ROOT = path.resolve(__dirname, "../..");
export const VENV = process.env.MLAPI_VENV ?? path.join(PROJECT_ROOT, ".venv");
export const MODEL_DIR = path.join(PROJECT_ROOT, "models");

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}


/** The built-in model repository (models/, made by app/training and checked byte for byte by its tests). */
export function ensureModels(): string {
    if (!fs.existsSync(path.join(MODEL_DIR, "decision-tree-classifier", "model.json"))) throw new Error(`no model repository at ${MODEL_DIR}`);
    return MODEL_DIR;
}

export interface TlsFiles {
    certPem: string;
    keyPem: string;
    /** What a client must trust: the certificate itself, or the local CA. */
    trustPem: string;
}

/** Issues the server certificate from the stack settings, as the TLS component does. */
export function issueCertificate(settings: StackSettings): TlsFiles {
    const keyPem = generateKey(settings.keyAlgorithm);
    const request = { keyPem, subject: settings.certSubject, dnsNames: settings.certDnsNames, ipAddresses: settings.certIpAddresses };
    const lifetime = { validityHours: validityHours(settings), allowedUses: serverCertUses(settings.keyAlgorithm) };
    if (settings.tlsMode === "local-ca") {
        const caKeyPem = generateKey("ECDSA-P256");
        const caCertPem = selfSignedCert({
            keyPem: caKeyPem,
            subject: { ...settings.certSubject, commonName: `${settings.certSubject.organization} local CA` },
            validityHours: CA_VALIDITY_DAYS * 24,
            allowedUses: CA_CERT_USES,
            isCa: true,
        });
        const certPem = signCert({ csrPem: certRequest(request), caCertPem, caKeyPem, ...lifetime });
        return { certPem, keyPem, trustPem: caCertPem };
    }
    const certPem = selfSignedCert({ ...request, ...lifetime });
    return { certPem, keyPem, trustPem: certPem };
}

/**
 * The environment of a replica run on this machine: the one the stack sets
 * (appEnvironment), then this machine's bind address, models and Python path,
 * and a metrics port and directory of its own (replicas in containers each
 * have theirs; without `metrics`, none: MLAPI_METRICS_PORT 0).
 */
export function hostReplicaEnv(
    settings: StackSettings,
    replica: { port: number; name: string; modelDir: string; pythonPath: string[]; metrics?: { port: number; dir: string } },
): NodeJS.ProcessEnv {
    return {
        ...process.env,
        PATH: `${path.join(VENV, "bin")}:${process.env.PATH}`,
        PYTHONPATH: replica.pythonPath.join(":"),
        PYTHONDONTWRITEBYTECODE: "1",
        ...Object.fromEntries(appEnvironment(replicaSettings(settings)).map((e) => e.split(/=(.*)/s).slice(0, 2))),
        GUNICORN_BIND: `127.0.0.1:${replica.port}`,
        MLAPI_MODEL_DIR: replica.modelDir,
        MLAPI_REPLICA_NAME: replica.name,
        MLAPI_METRICS_PORT: String(replica.metrics?.port ?? 0),
        ...(replica.metrics ? { MLAPI_METRICS_DIR: replica.metrics.dir } : {}),
    };
}

export interface Replica {
    name: string;
    port: number;
    url: string;
    /** The replica's Prometheus metrics (its Gunicorn master's own port). */
    metricsUrl: string;
    logFile: string;
    process: ChildProcess;
    /** Kills the replica's whole process group (SIGKILL: a crash, not a shutdown). */
    kill(): Promise<void>;
    /** Starts it again on the same port and waits until it is healthy. */
    start(): Promise<void>;
}

export interface TopologyOptions {
    replicas?: number;
    /** Stack config values (as `pulumi config set` would give them), validated by the stack's own parser. */
    config?: Record<string, unknown>;
    /** WSGI app to serve; test hooks wrap the real one from test/e2e/hooks (never part of an image). */
    wsgiApp?: string;
    /** Extra environment for the replicas, per replica index. */
    replicaEnv?: (index: number) => Record<string, string>;
}

export interface Topology {
    settings: StackSettings;
    dir: string;
    httpsPort: number;
    httpPort: number;
    httpsUrl: string;
    httpUrl: string;
    tls: TlsFiles;
    /** The trust anchor as a file, for curl --cacert and friends. */
    trustFile: string;
    replicas: Replica[];
    nginxConfig: string;
    nginxConfigFile: string;
    nginxAccessLog: string;
    nginxErrorLog: string;
    stop(): Promise<void>;
}

export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
    const config = { ...(options.config ?? {}) };
    if (options.replicas !== undefined) config.replicas = String(options.replicas);
    const settings = parseSettings((key) => config[key]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-e2e-"));
    // Nginx's workers (nobody, when the master runs as root) create their temp dirs here.
    fs.chmodSync(dir, 0o755);
    const modelDir = ensureModels();

    const tls = issueCertificate(settings);

    const replicas: Replica[] = [];
    for (let index = 0; index < settings.replicas; index++) {
        const [port, metricsPort] = [await freePort(), await freePort()];
        const name = `e2e-app-${index + 1}`;
        const logFile = path.join(dir, `${name}.log`);
        const metrics = { port: metricsPort, dir: path.join(dir, `${name}-metrics`) };
        const env = {
            ...hostReplicaEnv(settings, { port, name, modelDir, pythonPath: [path.join(PROJECT_ROOT, "app"), path.join(__dirname, "hooks")], metrics }),
            ...(options.replicaEnv?.(index) ?? {}),
        };
        const replica: Replica = {
            name,
            port,
            url: `http://127.0.0.1:${port}`,
            metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
            logFile,
            process: undefined as unknown as ChildProcess,
            kill: async () => stopGroup(replica.process, "SIGKILL"),
            start: async () => {
                replica.process = startGroup(
                    path.join(VENV, "bin", "gunicorn"),
                    ["-c", path.join(PROJECT_ROOT, "app", "gunicorn.conf.py"), options.wsgiApp ?? "mlapi.wsgi:app"],
                    { cwd: dir, env, logFile },
                );
                const started = replica.process;
                await waitFor(`${name} to be healthy`, async () => {
                    if (started.exitCode !== null) throw new Error(`${name} exited:\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
                    return (await request(`${replica.url}/api/health`, { timeoutMs: 1000 })).status === 200 ? true : undefined;
                }, 60_000);
            },
        };
        replicas.push(replica);
    }
    await Promise.all(replicas.map((r) => r.start()));

    const front = await startNginx(settings, dir, tls, replicas.map((r) => `127.0.0.1:${r.port}`));
    const { httpsPort, httpPort, httpsUrl, trustFile, nginxConfig, nginxConfigFile, nginxAccessLog, nginxErrorLog } = front;
    await waitFor("the replicas to answer through Nginx", async () =>
        (await request(`${httpsUrl}api/health`, { ca: tls.trustPem, timeoutMs: 1000 })).status === 200 ? true : undefined);

    return {
        settings,
        dir,
        httpsPort,
        httpPort,
        httpsUrl,
        httpUrl: front.httpUrl,
        tls,
        trustFile,
        replicas,
        nginxConfig,
        nginxConfigFile,
        nginxAccessLog,
        nginxErrorLog,
        stop: async () => {
            await front.stop();
            await Promise.all(replicas.map((r) => stopGroup(r.process, "SIGTERM")));
            if (!process.env.MLAPI_KEEP_E2E_DIR) fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

export interface NginxFront {
    httpsPort: number;
    httpPort: number;
    httpsUrl: string;
    httpUrl: string;
    /** The trust anchor as a file, for curl --cacert and friends. */
    trustFile: string;
    nginxConfig: string;
    nginxConfigFile: string;
    nginxAccessLog: string;
    nginxErrorLog: string;
    stop(): Promise<void>;
}

/**
 * The stack's Nginx on this machine, in dir: the config the stack renders for
 * settings, the certificate written to dir (server.crt, server.key, and what
 * clients trust in trust.pem) and the given upstreams (host:port). Resolves
 * once it serves the frontend over HTTPS (the replicas need not be up).
 */
export async function startNginx(settings: StackSettings, dir: string, tls: TlsFiles, upstreams: string[]): Promise<NginxFront> {
    fs.writeFileSync(path.join(dir, "server.crt"), tls.certPem, { mode: 0o644 });
    fs.writeFileSync(path.join(dir, "server.key"), tls.keyPem, { mode: 0o600 });
    const trustFile = path.join(dir, "trust.pem");
    fs.writeFileSync(trustFile, tls.trustPem);
    const httpsPort = await freePort();
    const httpPort = await freePort();
    const nginxAccessLog = path.join(dir, "nginx-access.log");
    const nginxErrorLog = path.join(dir, "nginx-error.log");
    const nginxConfig = renderNginxConfig({
        serverNames: [...settings.certDnsNames, ...settings.certIpAddresses],
        upstreams,
        listenHttpsPort: httpsPort,
        listenHttpPort: httpPort,
        listenAddress: "127.0.0.1",
        publicHttpsPort: httpsPort,
        nginxVersion: hostNginxVersion(),
        limits: settings,
        paths: {
            certificate: path.join(dir, "server.crt"),
            certificateKey: path.join(dir, "server.key"),
            staticRoot: path.join(PROJECT_ROOT, "nginx", "html"),
            runtimeDir: dir,
            mimeTypes: "/etc/nginx/mime.types",
            accessLog: nginxAccessLog,
            errorLog: nginxErrorLog,
        },
    });
    const nginxConfigFile = path.join(dir, "nginx.conf");
    fs.writeFileSync(nginxConfigFile, nginxConfig);
    const nginx = startGroup("nginx", ["-c", nginxConfigFile, "-e", nginxErrorLog, "-g", "daemon off;"], { logFile: path.join(dir, "nginx-stdout.log") });
    const httpsUrl = `https://127.0.0.1:${httpsPort}/`;
    try {
        await waitFor("Nginx to serve HTTPS", async () => {
            if (nginx.exitCode !== null) throw new Error(`nginx exited: ${fs.readFileSync(nginxErrorLog, "utf8")}`);
            return (await request(httpsUrl, { ca: tls.trustPem, timeoutMs: 1000 })).status === 200 ? true : undefined;
        });
    } catch (error) {
        await stopGroup(nginx, "SIGKILL");
        throw error;
    }

    return {
        httpsPort,
        httpPort,
        httpsUrl,
        httpUrl: `http://127.0.0.1:${httpPort}/`,
        trustFile,
        nginxConfig,
        nginxConfigFile,
        nginxAccessLog,
        nginxErrorLog,
        stop: () => stopGroup(nginx, "SIGQUIT"),
    };
}
