// What the real-engine suites share: whether a real engine is here, a
// scratch copy of the project with a stack of its own in its own state
// directory, and `pulumi up` with the warnings and errors it printed.
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { EngineEvent, LocalWorkspace, Stack } from "@pulumi/pulumi/automation";

const PROJECT_ROOT = path.resolve(__dirname, "../..");
export const PROJECT = "https-ml-api";
/** What the program is made of: copied into the scratch project (node_modules is linked). */
const PROGRAM_FILES = ["Pulumi.yaml", "package.json", "tsconfig.json", "index.ts", "components", "app", "nginx", "models"];

/** Why a real-engine suite cannot run here, or undefined when it can. */
export function whyNoEngine(): string | undefined {
    const version = spawnSync("pulumi", ["version"], { encoding: "utf8" });
    if (version.status !== 0) return "no `pulumi` CLI on PATH (see README, 'Real-engine tests')";
    const plugins = spawnSync("pulumi", ["plugin", "ls", "--json"], { encoding: "utf8" });
    const installed: { name: string; kind: string; version: string }[] = plugins.status === 0 ? JSON.parse(plugins.stdout || "[]") : [];
    const dependencies = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")).dependencies as Record<string, string>;
    for (const name of ["tls", "docker"]) {
        const wanted = dependencies[`@pulumi/${name}`];
        if (!installed.some((p) => p.kind === "resource" && p.name === name && p.version === wanted)) {
            return `the Pulumi CLI ${version.stdout.trim()} has no ${name} ${wanted} resource plugin`;
        }
    }
    if (spawnSync("docker", ["info"], { stdio: "ignore", timeout: 20_000 }).status !== 0) return "no Docker engine answers";
    return undefined;
}

export interface ScratchStack {
    stack: Stack;
    /** The scratch project: edit its files to change the program or the images. */
    workDir: string;
    /** The file backend's directory. */
    stateDir: string;
    /** Removes the stack from its workspace and the scratch directory (after the caller's destroy). */
    remove(): Promise<void>;
}

/** A copy of the project with the stack `stackName`, its state in the scratch directory, and `config` (keys without the project prefix). */
export async function scratchStack(stackName: string, config: Record<string, string>, secrets: Record<string, string> = {}): Promise<ScratchStack> {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-engine-"));
    const workDir = path.join(scratch, "project");
    fs.mkdirSync(workDir);
    for (const entry of PROGRAM_FILES) fs.cpSync(path.join(PROJECT_ROOT, entry), path.join(workDir, entry), { recursive: true });
    fs.symlinkSync(path.join(PROJECT_ROOT, "node_modules"), path.join(workDir, "node_modules"));
    fs.mkdirSync(path.join(scratch, "state"));
    const stack = await LocalWorkspace.createOrSelectStack(
        { stackName, workDir },
        {
            envVars: {
                PULUMI_BACKEND_URL: `file://${path.join(scratch, "state")}`,
                PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex"),
                PULUMI_SKIP_UPDATE_CHECK: "true",
            },
        },
    );
    // Where the network intercepts TLS, pip in the app image's build needs the CA (as in .ci/run).
    const all = { ...config, ...(process.env.MLAPI_BUILD_CA_CERT_FILE ? { buildCaCertFile: process.env.MLAPI_BUILD_CA_CERT_FILE } : {}) };
    await stack.setAllConfig({
        ...Object.fromEntries(Object.entries(all).map(([k, v]) => [`${PROJECT}:${k}`, { value: v }])),
        ...Object.fromEntries(Object.entries(secrets).map(([k, v]) => [`${PROJECT}:${k}`, { value: v, secret: true }])),
    });
    return {
        stack,
        workDir,
        stateDir: path.join(scratch, "state"),
        remove: async () => {
            await stack.workspace.removeStack(stackName).catch(() => undefined);
            fs.rmSync(scratch, { recursive: true, force: true });
        },
    };
}

/** One `pulumi up`, with the warnings and errors the engine reported. */
export async function upReporting(stack: Stack): Promise<{ seconds: number; warnings: string[] }> {
    const warnings: string[] = [];
    const onEvent = (event: EngineEvent) => {
        const diagnostic = event.diagnosticEvent;
        if (diagnostic && (diagnostic.severity === "warning" || diagnostic.severity === "error")) warnings.push(`${diagnostic.severity}: ${diagnostic.message.trim()}`);
    };
    const started = Date.now();
    await stack.up({ onEvent, color: "never" });
    return { seconds: (Date.now() - started) / 1000, warnings };
}

/** `pulumi refresh`: what it found different from the state, by resource and property (empty: no drift). */
export async function refreshDrift(stack: Stack): Promise<string[]> {
    const drift: string[] = [];
    const onEvent = (event: EngineEvent) => {
        const step = event.resOutputsEvent?.metadata;
        if (step && step.op !== "same") drift.push(`${step.urn.split("::").pop()}: ${step.op} ${(step.diffs ?? []).join(", ")}`);
    };
    const refresh = await stack.refresh({ color: "never", onEvent });
    return [...Object.keys(refresh.summary.resourceChanges ?? {}).filter((op) => op !== "same").map((op) => `summary: ${op}`), ...drift];
}
