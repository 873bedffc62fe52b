// Processes the tests and the benchmark start themselves (replicas, Nginx,
// wrk, py-spy, ...): each in its own process group, all killed on exit, on
// failure and on Ctrl-C.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";

const live = new Set<ChildProcess>();

/** Signals each pid (a negative one: its process group), skipping those already gone. */
export function killPids(pids: number[], signal: NodeJS.Signals): void {
    for (const pid of pids) {
        try {
            process.kill(pid, signal);
        } catch {
            /* already gone */
        }
    }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    killPids([-child.pid], signal);
}

const scratchDirs = new Set<string>();

/** A directory to delete when the bench exits early (failure, Ctrl-C); forget it with keepDir. */
export function removeOnExit(dir: string): void {
    scratchDirs.add(dir);
}

export function keepDir(dir: string): void {
    scratchDirs.delete(dir);
}

/** Kills every process group this module started (synchronous: safe in an exit handler). */
export function killAllNow(): void {
    for (const child of live) killGroup(child, "SIGKILL");
    live.clear();
    if (process.env.MLAPI_KEEP_E2E_DIR) return;
    for (const dir of scratchDirs) fs.rmSync(dir, { recursive: true, force: true });
    scratchDirs.clear();
}

process.on("exit", killAllNow);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
        killAllNow();
        process.exit(130);
    });
}

export interface StartOptions {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    /** stdout and stderr go to this file; "pipe" keeps them readable on the ChildProcess. */
    logFile: string | "pipe";
}

/** Starts a process in its own process group (its pid is the group id). */
export function startGroup(command: string, args: string[], options: StartOptions): ChildProcess {
    let child: ChildProcess;
    if (options.logFile === "pipe") {
        child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    } else {
        const log = fs.openSync(options.logFile, "a");
        child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ["ignore", log, log] });
        fs.closeSync(log);
    }
    live.add(child);
    child.once("exit", () => live.delete(child));
    return child;
}

/** Signals the group and waits for the leader to exit; SIGKILL after graceMs. */
export async function stopGroup(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 5000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    killGroup(child, signal);
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
    // Stragglers of the group (workers that outlive their master) go too.
    killGroup(child, "SIGKILL");
}

export interface RunResult {
    code: number | null;
    stdout: string;
    stderr: string;
    /** The group was killed because it ran past timeoutMs. */
    timedOut: boolean;
    seconds: number;
}

/** Runs a command to completion in its own process group, collecting its output; the group is killed after timeoutMs. */
export function runToEnd(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
    const started = Date.now();
    const child = startGroup(command, args, { cwd: options.cwd, env: options.env, logFile: "pipe" });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child, "SIGKILL");
    }, options.timeoutMs);
    return new Promise((resolve, reject) => {
        child.once("error", (error) => {
            clearTimeout(timer);
            reject(error);
        });
        child.once("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr, timedOut, seconds: (Date.now() - started) / 1000 });
        });
    });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` until it returns a value (not undefined), or throws after
 * `timeoutMs` with what it waited for and the probe's last error.
 */
export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
        try {
            const value = await probe();
            if (value !== undefined) return value;
        } catch (error) {
            lastError = error;
        }
        await sleep(intervalMs);
    }
    throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}
