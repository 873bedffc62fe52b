// Image sizes and container memory: our app image (app/Dockerfile, as the
// stack builds it) against an image built the tutorial's way
// (bench/tutorial.Dockerfile), and the memory of one container of each after
// a short load (ours at its default worker count, the tutorial's with 5).
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { appEnvironment, appHardening, replicaSettings } from "../../components/appSpec";
import { DEFAULTS } from "../../components/config";
import { dockerRunFlags } from "../../components/hardening";
import { waitFor, PROJECT_ROOT } from "../../test/e2e/harness";
import { request } from "../../test/support/http";
import { runToEnd, sleep } from "../../test/support/processes";
import { ContainerMemory } from "./report";
import { runLoad } from "./wrk";
import { CLASSIFIER_BODY, CLASSIFIER_PATH, TUTORIAL_DIR } from "../tutorial/stack";

export const OUR_IMAGE = "mlapi-bench/app:latest";
export const TUTORIAL_IMAGE = "mlapi-bench/tutorial:latest";

const startedContainers = new Set<string>();
process.on("exit", () => {
    for (const name of startedContainers) spawnSync("docker", ["rm", "-f", name], { stdio: "ignore" });
});

async function docker(args: string[], timeoutMs = 120_000): Promise<string> {
    const result = await runToEnd("docker", args, { timeoutMs });
    if (result.code !== 0) throw new Error(`docker ${args.slice(0, 3).join(" ")} ... failed (${result.code}): ${(result.stderr || result.stdout).slice(-3000)}`);
    return result.stdout.trim();
}

/** PEM CA certificate(s) pip must trust in the builds where the network intercepts TLS. */
function buildCaCert(): string | undefined {
    const file = process.env.MLAPI_BUILD_CA_CERT_FILE;
    if (file && fs.existsSync(file)) return fs.readFileSync(file, "utf8");
    const dir = "/usr/local/share/ca-certificates";
    if (!fs.existsSync(dir)) return undefined;
    const pems = fs.readdirSync(dir).filter((f) => f.endsWith(".crt")).map((f) => fs.readFileSync(path.join(dir, f), "utf8"));
    return pems.length ? pems.join("\n") : undefined;
}

async function buildImages(work: string, tutorialModels: string, log: (m: string) => void): Promise<void> {
    const ca = buildCaCert();
    const caArgs = ca ? ["--build-arg", `BUILD_CA_CERT=${ca}`] : [];
    const baseArgs = ["--build-arg", `BASE_IMAGE=${DEFAULTS.baseImage}`];
    log(`building ${OUR_IMAGE} from app/ (the stack's build)`);
    await docker(["build", "--tag", OUR_IMAGE, ...baseArgs, ...caArgs, path.join(PROJECT_ROOT, "app")], 1_200_000);
    // The tutorial's build context: the app module, its pickled models, its requirements.
    const context = path.join(work, "tutorial-image");
    fs.mkdirSync(path.join(context, "models"), { recursive: true });
    fs.copyFileSync(path.join(TUTORIAL_DIR, "api.py"), path.join(context, "api.py"));
    fs.copyFileSync(path.join(TUTORIAL_DIR, "requirements.txt"), path.join(context, "requirements.txt"));
    for (const file of fs.readdirSync(tutorialModels)) fs.copyFileSync(path.join(tutorialModels, file), path.join(context, "models", file));
    log(`building ${TUTORIAL_IMAGE} the tutorial's way (bench/tutorial.Dockerfile)`);
    await docker(["build", "--tag", TUTORIAL_IMAGE, "--file", path.join(PROJECT_ROOT, "bench", "tutorial.Dockerfile"), ...baseArgs, ...caArgs, context], 1_200_000);
}

const imageBytes = async (tag: string) => Number(await docker(["image", "inspect", "--format", "{{.Size}}", tag]));

/** Parses docker stats' "12.3MiB / 256MiB" into MiB. */
function mib(usage: string): number {
    const match = /^([\d.]+)\s*([KMG]i?B|B)/.exec(usage.trim());
    if (!match) return NaN;
    const factor: Record<string, number> = { B: 1 / 2 ** 20, KiB: 1 / 1024, kB: 1 / 1024, MiB: 1, MB: 1, GiB: 1024, GB: 1024 };
    return Number(match[1]) * (factor[match[2]] ?? NaN);
}

async function containerMemory(image: string, runFlags: string[], log: (m: string) => void): Promise<ContainerMemory> {
    const name = `mlapi-bench-${crypto.randomBytes(3).toString("hex")}`;
    startedContainers.add(name);
    try {
        await docker(["run", "--detach", `--name=${name}`, "--publish=127.0.0.1::8000", ...runFlags, image]);
        const port = Number((await docker(["port", name, "8000/tcp"])).split("\n")[0].split(":").pop());
        const url = `http://127.0.0.1:${port}/${CLASSIFIER_PATH}`;
        await waitFor(`${image} to answer`, async () => {
            const response = await request(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: CLASSIFIER_BODY, timeoutMs: 2000 });
            return response.status === 200 ? true : undefined;
        }, 60_000);
        // Let every worker finish importing, then load them all.
        await sleep(5000);
        await runLoad({ url, connections: 16, threads: 2, durationSeconds: 3, body: CLASSIFIER_BODY, appGroups: [], proxyGroups: [] });
        await sleep(1000);
        const raw = await docker(["stats", "--no-stream", "--format", "{{.MemUsage}}", name]);
        const usageMiB = mib(raw.split("/")[0]);
        // Gunicorn's processes in the container, less the master.
        const workers = (await docker(["top", name])).split("\n").filter((line) => line.includes("gunicorn")).length - 1;
        log(`${image}: ${raw} after load, ${workers} Gunicorn workers`);
        return { image, workers, usageMiB, raw };
    } finally {
        await docker(["rm", "--force", name]).catch(() => undefined);
        startedContainers.delete(name);
    }
}

export async function measureImages(options: { work: string; tutorialModels: string; log: (m: string) => void }) {
    const { log } = options;
    const ensure = await runToEnd("bash", [path.join(PROJECT_ROOT, "scripts", "ensure-docker.sh")], { timeoutMs: 900_000 });
    if (ensure.code !== 0) {
        const reason = `no Docker engine (scripts/ensure-docker.sh: ${ensure.stderr.trim().split("\n").pop()})`;
        log(`images skipped: ${reason}`);
        return { images: { skipped: reason }, containers: { skipped: reason } };
    }
    await buildImages(options.work, options.tutorialModels, log);
    const ours = { tag: OUR_IMAGE, bytes: await imageBytes(OUR_IMAGE) };
    const tutorial = { tag: TUTORIAL_IMAGE, bytes: await imageBytes(TUTORIAL_IMAGE) };
    log(`image sizes: ours ${(ours.bytes / 1e6).toFixed(1)} MB, tutorial-way ${(tutorial.bytes / 1e6).toFixed(1)} MB`);

    // Ours as the stack runs it: its hardening flags and environment (default workers: the replica's share of the CPUs).
    const hardening = appHardening(replicaSettings(DEFAULTS));
    const env = appEnvironment(replicaSettings(DEFAULTS));
    const ourFlags = [...dockerRunFlags(hardening).filter((f) => !f.startsWith("--restart")), ...env.map((e) => `--env=${e}`)];
    const oursMemory = await containerMemory(OUR_IMAGE, ourFlags, log);
    const tutorialMemory = await containerMemory(TUTORIAL_IMAGE, [], log);
    return {
        images: { ours, tutorial, ratio: ours.bytes / tutorial.bytes },
        containers: { ours: oursMemory, tutorial: tutorialMemory },
    };
}
