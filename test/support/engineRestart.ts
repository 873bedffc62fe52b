// The events of a host's life, done to the Docker engine the tests use:
//   - "graceful": SIGTERM to dockerd, then start it again (systemctl restart,
//     an engine upgrade, a clean reboot);
//   - "crash": dockerd and its containerd killed (SIGKILL), then dockerd
//     started again;
//   - "reboot": as a power cut: dockerd, containerd, every shim and every
//     container's processes killed, then dockerd started again.
// The engine must be a dockerd this process may restart: one started by
// hand or by scripts/ensure-docker.sh (as in CI), not one systemd manages.
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import { engineAnswers } from "./docker";
import { killPids } from "./processes";

export type EngineEvent = "graceful" | "crash" | "reboot";

export const ENGINE_PIDFILE = process.env.MLAPI_ENGINE_PIDFILE ?? "/var/run/docker.pid";
/** Where dockerd keeps the containerd it starts (its socket, pid file and config). */
const DOCKER_CONTAINERD_DIR = "/var/run/docker/containerd";

/** Why the engine cannot be restarted by a test, or undefined when it can. */
export function whyNoRestart(): string | undefined {
    if (process.getuid?.() !== 0) return "restarting the Docker engine needs root";
    let pid: number;
    try {
        pid = Number(fs.readFileSync(ENGINE_PIDFILE, "utf8").trim());
        process.kill(pid, 0);
    } catch {
        return `no running dockerd with the pid file ${ENGINE_PIDFILE} (set MLAPI_ENGINE_PIDFILE)`;
    }
    const cgroup = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8");
    if (/docker\.service/.test(cgroup)) return "dockerd is a systemd service here: the test would fight systemd (restart it by hand, see docs/operations.md)";
    return undefined;
}

const childrenOf = (pid: number): number[] => {
    try {
        return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
        return [];
    }
};

/** Gone, or a zombie nobody has reaped yet (this machine's init may be slow to). */
const gone = (pid: number) => {
    try {
        process.kill(pid, 0);
    } catch {
        return true;
    }
    try {
        return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
        return true;
    }
};

/**
 * dockerd reuses the containerd its pid file names if that process seems
 * alive (a zombie does), then waits for a socket that never comes and exits.
 * After a crash or a power cut that containerd is dead, so the file goes, as
 * a reboot's fresh /run would have it.
 */
function clearStaleContainerdPidfile(socketDir: string): void {
    const pidfile = `${socketDir}/containerd.pid`;
    try {
        const pid = Number(fs.readFileSync(pidfile, "utf8").trim());
        const command = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
        if (gone(pid) || !/containerd/.test(command) || /containerd-shim/.test(command)) fs.rmSync(pidfile, { force: true });
    } catch {
        fs.rmSync(pidfile, { force: true });
    }
}

async function waitUntil(what: string, ok: () => boolean, seconds: number): Promise<void> {
    const deadline = Date.now() + seconds * 1000;
    while (!ok()) {
        if (Date.now() > deadline) throw new Error(`${what} after ${seconds} s`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

export interface EngineRestart {
    event: EngineEvent;
    /** When the engine was stopped or killed, and when it answered again (epoch ms). */
    stoppedAt: number;
    answeringAt: number;
    /** What was killed: the engine's containerd processes, shims and container processes found (reboot and crash). */
    killed: string;
}

/** Does `event` to the engine and starts it again with the same command line; resolves once it answers. */
export async function restartEngine(event: EngineEvent): Promise<EngineRestart> {
    const problem = whyNoRestart();
    if (problem) throw new Error(problem);
    const pid = Number(fs.readFileSync(ENGINE_PIDFILE, "utf8").trim());
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    // The engine's own containerd (a child of dockerd), and the shims it started.
    const cmdline = (p: number) => fs.readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" ");
    const containerd = childrenOf(pid).filter((child) => /containerd/.test(cmdline(child)));
    // Its shims: Docker's namespace, on this engine's containerd socket (another engine's shims are left alone).
    const socketDir = (containerd.length && /--config (\S+)\/containerd\.toml/.exec(cmdline(containerd[0]))?.[1]) || DOCKER_CONTAINERD_DIR;
    const shims = spawnSync("pgrep", ["-f", "containerd-shim.*-namespace moby"], { encoding: "utf8" })
        .stdout.trim().split("\n").filter(Boolean).map(Number)
        .filter((shim) => cmdline(shim).includes(`-address ${socketDir}/containerd.sock`));
    const containerPids = shims.flatMap(childrenOf);
    const stoppedAt = Date.now();
    if (event === "graceful") {
        process.kill(pid, "SIGTERM");
    } else {
        killPids([pid, ...containerd, ...(event === "reboot" ? [...shims, ...containerPids] : [])], "SIGKILL");
    }
    // A graceful stop waits for the containers' stop timeouts (Nginx drains, Gunicorn finishes).
    await waitUntil("dockerd still runs", () => gone(pid), 90);
    // A new dockerd takes a containerd it finds still alive for its own and waits on it in vain.
    await waitUntil("the engine's containerd still runs", () => containerd.every(gone), 30);
    if (event !== "graceful") clearStaleContainerdPidfile(socketDir);
    // Started again once more if it gives up (it exits when its containerd does not come up): a test must not leave the machine without an engine.
    for (let attempt = 1; ; attempt++) {
        const log = fs.openSync("/tmp/dockerd.log", "a");
        const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", log, log] });
        child.unref();
        fs.closeSync(log);
        let exited = false;
        child.on("exit", () => (exited = true));
        await waitUntil("dockerd does not answer", () => exited || engineAnswers(), 60);
        if (!exited) break;
        if (attempt === 2) throw new Error("dockerd exited twice on its start; see /tmp/dockerd.log");
        clearStaleContainerdPidfile(socketDir);
    }
    return { event, stoppedAt, answeringAt: Date.now(), killed: `${containerd.length} containerd, ${shims.length} shims, ${containerPids.length} container processes found` };
}
