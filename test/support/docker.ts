// The Docker CLI for the image tests: commands as argument arrays (no shell),
// a tar writer for uploads with exact owner and mode (what the docker
// provider's `uploads` send), and a scanner that searches every layer of a
// saved image for secret material.
import { spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { parseSettings, StackSettings } from "../../components/config";
import { APP_CONTEXT, imageBuild, modelsImageBuild, PROXY_CONTEXT } from "../../components/images";

const PROJECT_ROOT = path.resolve(__dirname, "../..");

/** Runs `docker ...args` and returns its trimmed stdout; throws with docker's stderr on failure. */
export function docker(args: string[], input?: string | Buffer): string {
    const result = spawnSync("docker", args, { input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (result.status !== 0) {
        throw new Error(`docker ${args.join(" ")} failed (${result.status ?? result.signal}): ${result.stderr || result.error}`);
    }
    return result.stdout.trim();
}

/** Like docker(), without blocking the event loop (long builds, parallel work); keeps the output's tail for errors. */
export function dockerAsync(args: string[], options: { cwd?: string } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn("docker", args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        const keep = (chunk: Buffer) => {
            output = (output + chunk.toString("utf8")).slice(-16_000);
        };
        child.stdout.on("data", keep);
        child.stderr.on("data", keep);
        child.once("error", reject);
        child.once("close", (code) =>
            code === 0 ? resolve(output) : reject(new Error(`docker ${args.join(" ")} failed (${code}); last output:\n${output}`)),
        );
    });
}

/** A docker command, asynchronously (a load keeps running meanwhile), with its exit code and output (stdin from `input`). */
export function dockerCall(args: string[], input?: Buffer): Promise<{ code: number; logs: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn("docker", args, { stdio: ["pipe", "pipe", "pipe"] });
        let logs = "";
        child.stdout.on("data", (c: Buffer) => (logs += c.toString("utf8")));
        child.stderr.on("data", (c: Buffer) => (logs += c.toString("utf8")));
        child.once("error", reject);
        child.once("close", (code) => resolve({ code: code ?? -1, logs }));
        child.stdin.end(input);
    });
}

/** `docker inspect` of one object, parsed. */
export function inspect<T = any>(kind: "container" | "network" | "image" | "volume", name: string): T {
    return JSON.parse(docker([kind, "inspect", name]))[0];
}

/**
 * `docker build` arguments for one image, from the build the stack gives
 * docker.Image (the base image, platform and build CA of `settings`; the
 * CA only for the app, as ServiceImages passes it).
 */
export function imageBuildArgs(settings: StackSettings, tag: string, context: string): string[] {
    const build = imageBuild(context, settings.baseImage, settings.imagePlatform, context === "app" ? settings.buildCaCertPem : undefined) as {
        context: string;
        dockerfile: string;
        platform: string;
        args: Record<string, string>;
    };
    const buildArgFlags = Object.entries(build.args).flatMap(([name, value]) => ["--build-arg", `${name}=${value}`]);
    return ["build", "--tag", tag, "--file", build.dockerfile, "--platform", build.platform, ...buildArgFlags, build.context];
}

/** True when a Docker engine answers. */
export function engineAnswers(): boolean {
    return spawnSync("docker", ["info"], { stdio: "ignore", timeout: 20_000 }).status === 0;
}

export interface TarUpload {
    name: string;
    content: string | Buffer;
    mode: number;
    uid: number;
    gid: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
    return value.toString(8).padStart(width - 1, "0") + "\0";
}

/** A ustar archive of regular files, with the owner and mode of each as given. */
export function tarArchive(files: TarUpload[]): Buffer {
    const blocks: Buffer[] = [];
    for (const file of files) {
        const data = Buffer.from(file.content);
        const header = Buffer.alloc(BLOCK);
        header.write(file.name, 0, 100, "utf8");
        header.write(octal(file.mode, 8), 100, "ascii");
        header.write(octal(file.uid, 8), 108, "ascii");
        header.write(octal(file.gid, 8), 116, "ascii");
        header.write(octal(data.length, 12), 124, "ascii");
        header.write(octal(Math.floor(Date.now() / 1000), 12), 136, "ascii");
        header.write("        ", 148, "ascii"); // the checksum counts its own field as spaces
        header.write("0", 156, "ascii");
        header.write("ustar\u000000", 257, "ascii");
        const checksum = header.reduce((sum, byte) => sum + byte, 0);
        header.write(octal(checksum, 7) + " ", 148, "ascii");
        blocks.push(header, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
    }
    blocks.push(Buffer.alloc(2 * BLOCK));
    return Buffer.concat(blocks);
}

/** One of docker.Container's uploads, as the program gives it. */
export interface ContainerUploadFile {
    file: string;
    content: string;
    permissions?: string;
    executable?: boolean;
}

/**
 * The archive the docker provider copies to "/" for a container's uploads:
 * one entry per file, named by its full path, with the mode from
 * `permissions` (else 0744 executable, 0644 otherwise) and no owner, so
 * Docker extracts it as root (kreuzwerker's resourceDockerContainerCreate).
 */
export function providerUploadArchive(uploads: ContainerUploadFile[]): Buffer {
    return tarArchive(
        uploads.map((u) => ({
            name: u.file.replace(/^\//, ""),
            content: u.content,
            mode: u.permissions ? parseInt(u.permissions, 8) : u.executable ? 0o744 : 0o644,
            uid: 0,
            gid: 0,
        })),
    );
}

function field(header: Buffer, offset: number, length: number): string {
    const raw = header.subarray(offset, offset + length);
    const end = raw.indexOf(0);
    return raw.subarray(0, end === -1 ? length : end).toString("utf8");
}

/** The "path" and "linkpath" records of a PAX extended header ("<length> <key>=<value>\n" each). */
function paxNames(data: Buffer): { path?: string; linkpath?: string } {
    const names: { path?: string; linkpath?: string } = {};
    for (const record of data.toString("utf8").split("\n")) {
        const match = /^\d+ (path|linkpath)=(.*)$/s.exec(record);
        if (match) names[match[1] as "path" | "linkpath"] = match[2];
    }
    return names;
}

export interface TarFile {
    name: string;
    /** The content, a view into the archive (empty for links). */
    data: Buffer;
    /** For hard and symbolic links: the archive path of the file linked to. */
    linkTo?: string;
}

/** The regular files and links of a tar archive (ustar, with GNU and PAX long names). */
export function* tarFiles(archive: Buffer): Generator<TarFile> {
    let offset = 0;
    let long: { path?: string; linkpath?: string } = {};
    while (offset + BLOCK <= archive.length) {
        const header = archive.subarray(offset, offset + BLOCK);
        if (header.every((byte) => byte === 0)) return;
        const size = parseInt(field(header, 124, 12).trim() || "0", 8);
        const type = String.fromCharCode(header[156] || 0x30);
        const data = archive.subarray(offset + BLOCK, offset + BLOCK + size);
        offset += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
        if (type === "L") long.path = field(data, 0, data.length);
        else if (type === "K") long.linkpath = field(data, 0, data.length);
        else if (type === "x") long = { ...long, ...paxNames(data) };
        else if (type !== "g") {
            const prefix = field(header, 345, 155);
            const name = long.path ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
            const link = long.linkpath ?? field(header, 157, 100);
            long = {};
            if (type === "0" || type === "7") yield { name, data };
            else if (type === "1") yield { name, data, linkTo: link };
            else if (type === "2") yield { name, data, linkTo: path.posix.join(path.posix.dirname(name), link) };
        }
    }
}

/**
 * Where `needles` occur in an image: in any file of any layer, in the image
 * config (env, labels, build history), as `docker save` exports them. A
 * needle is a string, or a pattern matched against the file read as Latin-1.
 * Returns one line per finding, empty when the image is clean.
 */
export function findInImage(image: string, needles: (string | RegExp)[]): string[] {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-image-scan-"));
    try {
        const saved = path.join(dir, "image.tar");
        docker(["save", "-o", saved, image]);
        const entries = [...tarFiles(fs.readFileSync(saved))];
        const byName = new Map(entries.map((entry) => [entry.name, entry]));
        // A layer saved twice is a symlink to the first copy.
        const content = (name: string): Buffer => {
            const entry = byName.get(name);
            if (!entry) throw new Error(`docker save of ${image} has no ${name}`);
            return entry.linkTo ? content(entry.linkTo) : entry.data;
        };
        // manifest.json names the config and the layers, in the legacy and the OCI layouts alike.
        const [manifest] = JSON.parse(content("manifest.json").toString("utf8")) as { Config: string; Layers: string[] }[];
        const findings: string[] = [];
        const search = (where: string, data: Buffer) => {
            let text: string | undefined;
            for (const needle of needles) {
                const found = typeof needle === "string" ? data.includes(needle) : needle.test((text ??= data.toString("latin1")));
                if (found) findings.push(`${where} contains ${typeof needle === "string" ? JSON.stringify(needle.slice(0, 40)) : needle}`);
            }
        };
        search(`image config ${manifest.Config}`, content(manifest.Config));
        for (const layerPath of manifest.Layers) {
            const layer = content(layerPath);
            const isGzip = layer[0] === 0x1f && layer[1] === 0x8b;
            for (const file of tarFiles(isGzip ? zlib.gunzipSync(layer) : layer)) search(`layer ${layerPath}: /${file.name}`, file.data);
        }
        return findings;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** A free 10.216.x.0/24 for the app network (Docker refuses overlapping subnets). */
export function freeSubnet(): string {
    const used = spawnSync("bash", ["-c", "docker network inspect $(docker network ls -q) --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}'"], { encoding: "utf8" }).stdout;
    for (let attempt = 0; attempt < 50; attempt++) {
        const subnet = `10.216.${crypto.randomInt(0, 256)}.0/24`;
        if (!used.includes(subnet)) return subnet;
    }
    throw new Error("no free 10.216.x.0/24 subnet");
}

/**
 * The images the Docker test files build from the Dockerfiles (the same tags,
 * so later files reuse the build cache): `runtime` is app/Dockerfile alone,
 * `app` the served image (the runtime plus the built-in model repository,
 * as the stack builds it), `proxy` Nginx.
 */
export const TEST_IMAGES = { runtime: "mlapi-test-runtime:e2e", app: "mlapi-test-app:e2e", proxy: "mlapi-test-proxy:e2e" };

/** The built-in model repository the test images serve. */
export const TEST_MODEL_REPOSITORY = "models";

/** The stack's settings for test builds: buildCaCertFile from MLAPI_BUILD_CA_CERT_FILE where the network intercepts TLS (as CI's may). */
export function testBuildSettings(): StackSettings {
    return parseSettings((key) => (key === "buildCaCertFile" ? process.env.MLAPI_BUILD_CA_CERT_FILE || undefined : undefined));
}

/** Builds both images as the stack does (TEST_IMAGES); returns the seconds it took. */
export async function buildTestImages(): Promise<number> {
    const started = Date.now();
    const settings = testBuildSettings();
    await Promise.all([
        dockerAsync(imageBuildArgs(settings, TEST_IMAGES.runtime, APP_CONTEXT), { cwd: PROJECT_ROOT }).then(() => buildServedImage(TEST_IMAGES.app, TEST_IMAGES.runtime, TEST_MODEL_REPOSITORY)),
        dockerAsync(imageBuildArgs(settings, TEST_IMAGES.proxy, PROXY_CONTEXT), { cwd: PROJECT_ROOT }),
    ]);
    return (Date.now() - started) / 1000;
}

/** The served image of a repository on top of a runtime image, as ServiceImages builds it. */
export async function buildServedImage(tag: string, runtimeImage: string, repository: string): Promise<void> {
    const build = modelsImageBuild(repository, { name: runtimeImage, id: inspect("image", runtimeImage).Id }, testBuildSettings().imagePlatform);
    await dockerAsync(["build", "--tag", tag, "--file", String(build.dockerfile), "--platform", String(build.platform), ...Object.entries(build.args as Record<string, string>).map(([k, v]) => `--build-arg=${k}=${v}`), String(build.context)], { cwd: PROJECT_ROOT });
}

/**
 * For a test file on the Docker engine: starts the engine (and makes the
 * base image) with scripts/ensure-docker.sh before the tests are collected.
 * Gives `describe` when an engine answers; otherwise `describe.skip` after a
 * warning, or, under REQUIRE_DOCKER=1, a failing test that says why, so a
 * machine without Docker is visible. `ensured()` (in beforeAll) fails when
 * the script did.
 */
export function dockerSuite(what: string): { describe: jest.Describe; ensured(): void } {
    const ensure = spawnSync("bash", [path.join(PROJECT_ROOT, "scripts", "ensure-docker.sh")], { encoding: "utf8" });
    const up = engineAnswers();
    const why = `no Docker engine answers (docker info failed); scripts/ensure-docker.sh said: ${(ensure.stderr || String(ensure.error)).trim()}`;
    if (!up && process.env.REQUIRE_DOCKER === "1") {
        test("a Docker engine answers (REQUIRE_DOCKER=1)", () => {
            throw new Error(why);
        });
    } else if (!up) {
        console.warn(`SKIPPING ${what}: ${why}. Set REQUIRE_DOCKER=1 to make this a failure.`);
    }
    return {
        describe: up ? describe : describe.skip,
        ensured: () => {
            if (ensure.status !== 0) throw new Error(`scripts/ensure-docker.sh failed:\n${ensure.stderr}`);
        },
    };
}

/** An image that differs from `base` only by a label: a new image ID, as a code change makes. */
export async function imageVariant(base: string, tag: string): Promise<void> {
    const context = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-variant-"));
    try {
        fs.writeFileSync(path.join(context, "Dockerfile"), `FROM ${base}\nLABEL mlapi.variant=${tag}\n`);
        await dockerAsync(["build", "--tag", tag, context]);
    } finally {
        fs.rmSync(context, { recursive: true, force: true });
    }
}
