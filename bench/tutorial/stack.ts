// Runs the tutorial's stack on loopback as the benchmark's baseline: N
// replicas of `gunicorn -w 5 -b ... api:app` (bench/tutorial/api.py: a pandas
// DataFrame and scikit-learn's predict per request) behind Nginx with the
// tutorial's configuration (nginxConfig.ts) and a certificate like the
// tutorial's (RSA 2048, self-signed, same subject).
import { ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseSettings } from "../../components/config";
import { freePort, issueCertificate, PROJECT_ROOT, VENV, waitFor } from "../../test/e2e/harness";
import { postJson } from "../../test/support/http";
import { removeOnExit, startGroup, stopGroup } from "../../test/support/processes";
import { renderTutorialNginxConfig } from "./nginxConfig";

export const TUTORIAL_DIR = __dirname;
export const TUTORIAL_WORKERS = 5;
export const CLASSIFIER_PATH = "api/v1/models/decision-tree-classifier/predictions";
export const CLASSIFIER_BODY = JSON.stringify({ monthly_fee: 60, customer_age: 30, support_calls: 1 });

export interface TutorialReplica {
    port: number;
    url: string;
    process: ChildProcess;
}

export interface TutorialStack {
    dir: string;
    httpsUrl: string;
    replicas: TutorialReplica[];
    nginx: ChildProcess;
    stop(): Promise<void>;
}

/** The tutorial's app server command, on a loopback port: `gunicorn -w 5 -b HOST:PORT api:app`. */
export function startTutorialReplica(options: { port: number; modelDir: string; logFile: string; cwd: string; workers?: number }): ChildProcess {
    // cwd is a scratch directory: Gunicorn would read ./gunicorn.conf.py from it (the tutorial has none).
    const env: NodeJS.ProcessEnv = {
        ...process.env,
        PATH: `${path.join(VENV, "bin")}:${process.env.PATH}`,
        PYTHONPATH: TUTORIAL_DIR,
        PYTHONDONTWRITEBYTECODE: "1",
        TUTORIAL_MODEL_DIR: options.modelDir,
    };
    delete env.GUNICORN_CMD_ARGS;
    return startGroup(
        path.join(VENV, "bin", "gunicorn"),
        ["-w", String(options.workers ?? TUTORIAL_WORKERS), "-b", `127.0.0.1:${options.port}`, "api:app"],
        { cwd: options.cwd, env, logFile: options.logFile },
    );
}

export async function waitForTutorialReplica(url: string, process: ChildProcess, logFile: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(
        `tutorial replica ${url}`,
        async () => {
            if (process.exitCode !== null) throw new Error(`tutorial replica exited:\n${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
            return (await postJson(`${url}/${CLASSIFIER_PATH}`, CLASSIFIER_BODY, { timeoutMs: 2000 })).status === 200 ? true : undefined;
        },
        timeoutMs,
    );
}

export async function startTutorialStack(options: { replicas: number; modelDir: string }): Promise<TutorialStack> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-bench-tutorial-"));
    fs.chmodSync(dir, 0o755); // Nginx's workers (nobody, under a root master) create temp dirs here
    removeOnExit(dir);
    const tls = issueCertificate(parseSettings(() => undefined)); // the tutorial's: RSA 2048, self-signed, CN=localhost
    fs.writeFileSync(path.join(dir, "selfsigned.crt"), tls.certPem, { mode: 0o644 });
    fs.writeFileSync(path.join(dir, "selfsigned.key"), tls.keyPem, { mode: 0o600 });

    const replicas: TutorialReplica[] = [];
    const started: Promise<void>[] = [];
    for (let index = 0; index < options.replicas; index++) {
        const port = await freePort();
        const logFile = path.join(dir, `tutorial-app-${index + 1}.log`);
        const child = startTutorialReplica({ port, modelDir: options.modelDir, logFile, cwd: dir });
        const replica = { port, url: `http://127.0.0.1:${port}`, process: child };
        replicas.push(replica);
        started.push(waitForTutorialReplica(replica.url, child, logFile));
    }
    const httpsPort = await freePort();
    const httpPort = await freePort();
    const config = renderTutorialNginxConfig({
        httpsPort,
        httpPort,
        upstreams: replicas.map((r) => `127.0.0.1:${r.port}`),
        certificate: path.join(dir, "selfsigned.crt"),
        certificateKey: path.join(dir, "selfsigned.key"),
        staticRoot: path.join(PROJECT_ROOT, "nginx", "html"),
        runtimeDir: dir,
        mimeTypes: "/etc/nginx/mime.types",
    });
    const configFile = path.join(dir, "nginx.conf");
    fs.writeFileSync(configFile, config);
    const nginx = startGroup("nginx", ["-c", configFile, "-e", path.join(dir, "nginx-error.log"), "-g", "daemon off;"], {
        logFile: path.join(dir, "nginx-stdout.log"),
    });
    const stack: TutorialStack = {
        dir,
        httpsUrl: `https://127.0.0.1:${httpsPort}/`,
        replicas,
        nginx,
        stop: async () => {
            await stopGroup(nginx, "SIGQUIT");
            await Promise.all(replicas.map((r) => stopGroup(r.process, "SIGTERM")));
            if (!process.env.MLAPI_KEEP_E2E_DIR) fs.rmSync(dir, { recursive: true, force: true });
        },
    };
    try {
        await Promise.all(started);
        await waitFor("the tutorial's Nginx", async () => {
            if (nginx.exitCode !== null) throw new Error(`nginx exited: ${fs.readFileSync(path.join(dir, "nginx-error.log"), "utf8")}`);
            return (await postJson(`${stack.httpsUrl}${CLASSIFIER_PATH}`, CLASSIFIER_BODY, { insecure: true, timeoutMs: 2000 })).status === 200 ? true : undefined;
        });
    } catch (error) {
        await stack.stop();
        throw error;
    }
    return stack;
}
