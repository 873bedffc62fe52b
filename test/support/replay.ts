// Replays the engine's steps (enginePlan) on a real Docker engine: each
// docker.Container, Network and Volume the program registered under mocks is
// made with the docker CLI from the very inputs the program gave it, in the
// engine's order, the way the provider does it (kreuzwerker's
// resourceDockerContainerCreate/Delete): create, copy the uploads to "/",
// start, wait until healthy (`wait`) or until a one-shot step exits
// (`attach`), and on delete stop with the grace period, then remove.
//
// What the mocks stand in for is mapped to the real thing: image IDs to the
// images the test built, resource IDs to container names. Addresses are the
// real engine's own, as the stack's config names replicas, never addresses.
import { dockerCall, providerUploadArchive } from "./docker";
import { runSteps, Step } from "./enginePlan";
import { plainDeep, RecordedResource, RESOURCE_TYPES } from "../unit/program";

interface Healthcheck {
    tests: string[];
    interval: string;
    timeout: string;
    startPeriod: string;
    retries: number;
}

const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/**
 * A healthcheck as `docker create` flags. The CLI only takes a shell command,
 * so an exec-form ("CMD") test is quoted word by word: the same program with
 * the same arguments, started through /bin/sh.
 */
export function healthFlags(check: Pick<Healthcheck, "tests"> & Partial<Healthcheck>): string[] {
    const [form, ...command] = check.tests;
    if (form === "NONE") return ["--no-healthcheck"];
    if (form !== "CMD" && form !== "CMD-SHELL") throw new Error(`unsupported healthcheck form ${form}`);
    return [
        `--health-cmd=${form === "CMD" ? command.map(shellQuote).join(" ") : command[0]}`,
        `--health-interval=${check.interval}`,
        `--health-timeout=${check.timeout}`,
        `--health-start-period=${check.startPeriod}`,
        `--health-retries=${check.retries}`,
    ];
}

/** How a docker.Container's inputs become docker CLI calls. */
export interface ContainerCommands {
    name: string;
    /** `docker create ...` arguments (the first network attached). */
    create: string[];
    /** `docker network connect ...` arguments for every further network, before the start. */
    connect: string[][];
    /** The tar the provider copies to "/" before the start, if any uploads. */
    uploads?: Buffer;
    /** start: the provider starts it; attach: and waits for its exit (one-shot steps). */
    start: boolean;
    attach: boolean;
    /** `wait`: the provider waits until Docker reports it healthy, at most this long (seconds). */
    waitSeconds?: number;
    /** Seconds the provider gives it to stop on delete (destroy_grace_seconds; 0: no stop, a forced removal). */
    graceSeconds: number;
}

/**
 * The docker CLI calls for one docker.Container, from its inputs (secrets
 * unwrapped). `resolve` maps a mocked value (an image or resource
 * ID) to the real one. An input it does not know fails, so a replay cannot
 * quietly run something other than what the stack deploys.
 */
export function containerCommands(inputs: Record<string, any>, resolve: (value: string) => string = (v) => v): ContainerCommands {
    const flags: string[] = [];
    const connect: string[][] = [];
    // The provider's defaults: started, not attached, removed without a stop.
    const result: Omit<ContainerCommands, "create" | "connect"> = { name: inputs.name, start: true, attach: false, graceSeconds: 0 };
    for (const [key, value] of Object.entries(inputs)) {
        switch (key) {
            case "name": flags.push(`--name=${value}`); break;
            case "hostname": flags.push(`--hostname=${value}`); break;
            case "user": flags.push(`--user=${value}`); break;
            case "groupAdds": for (const g of value) flags.push(`--group-add=${g}`); break;
            case "envs": for (const e of value) flags.push(`--env=${e}`); break;
            case "networkMode": flags.push(`--network=${resolve(value)}`); break;
            case "pidMode": flags.push(`--pid=${resolve(value)}`); break;
            case "readOnly": if (value) flags.push("--read-only"); break;
            case "tmpfs": for (const [at, options] of Object.entries(value)) flags.push(`--tmpfs=${at}${options ? `:${options}` : ""}`); break;
            case "restart": flags.push(`--restart=${value}`); break;
            case "memory": flags.push(`--memory=${value}m`); break;
            case "memorySwap": flags.push(`--memory-swap=${value}m`); break;
            case "ulimits": for (const u of value) flags.push(`--ulimit=${u.name}=${u.soft}:${u.hard}`); break;
            case "logDriver": flags.push(`--log-driver=${value}`); break;
            case "logOpts": for (const [k, v] of Object.entries(value)) flags.push(`--log-opt=${k}=${v}`); break;
            case "securityOpts": for (const o of value) flags.push(`--security-opt=${o}`); break;
            case "capabilities": for (const c of value.drops ?? []) flags.push(`--cap-drop=${c}`); for (const c of value.adds ?? []) flags.push(`--cap-add=${c}`); break;
            case "labels": for (const l of value) flags.push(`--label=${l.label}=${l.value}`); break;
            case "mounts": for (const m of value) flags.push(`--mount=type=${m.type},source=${m.source},target=${m.target}${m.readOnly ? ",readonly" : ""}`); break;
            case "ports": for (const p of value) flags.push(`--publish=${p.ip}:${p.external}:${p.internal}/${p.protocol}`); break;
            case "healthcheck": flags.push(...healthFlags(value)); break;
            case "stopSignal": flags.push(`--stop-signal=${value}`); break;
            case "networksAdvanced":
                value.forEach((n: { name: string; aliases?: string[] }, i: number) => {
                    const options = (n.aliases ?? []).map((a) => `--${i === 0 ? "network-" : ""}alias=${a}`);
                    if (i === 0) flags.push(`--network=${n.name}`, ...options);
                    else connect.push([...options, n.name, inputs.name]);
                });
                break;
            case "uploads": result.uploads = providerUploadArchive(value); break;
            case "start": result.start = value; break;
            case "attach": result.attach = value; break;
            case "wait": if (value) result.waitSeconds = inputs.waitTimeout ?? 60; break;
            case "destroyGraceSeconds": result.graceSeconds = value; break;
            // Read with the keys above; what the provider does with them is the calls themselves.
            case "waitTimeout": case "logs": case "mustRun": case "image": case "command": break;
            default: throw new Error(`containerCommands: no translation for ${key}`);
        }
    }
    return { ...result, create: ["create", ...flags, resolve(inputs.image), ...(inputs.command ?? [])], connect };
}

async function must(args: string[], input?: Buffer): Promise<string> {
    const result = await dockerCall(args, input);
    if (result.code !== 0) throw new Error(`docker ${args.slice(0, 2).join(" ")} failed (${result.code}): ${result.logs.trim()}`);
    return result.logs.trim();
}

/** Creates, starts and waits for a container as the provider does; a one-shot step must exit 0, as the program checks. */
async function createContainer(commands: ContainerCommands): Promise<void> {
    await must(commands.create);
    for (const args of commands.connect) await must(["network", "connect", ...args]);
    if (commands.uploads) await must(["cp", "-", `${commands.name}:/`], commands.uploads);
    if (!commands.start) return;
    if (commands.attach) {
        const run = await dockerCall(["start", "--attach", commands.name]);
        if (run.code !== 0) throw new Error(`${commands.name} exited with ${run.code}:\n${run.logs.trim()}`);
        return;
    }
    await must(["start", commands.name]);
    if (commands.waitSeconds !== undefined) {
        const deadline = Date.now() + commands.waitSeconds * 1000;
        for (;;) {
            const health = await must(["inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", commands.name]);
            if (health === "healthy") break;
            if (health === "unhealthy" || Date.now() > deadline) throw new Error(`${commands.name} is ${health} after ${commands.waitSeconds} s`);
            await new Promise((r) => setTimeout(r, 250));
        }
    }
}

/** Stops a container with its grace period (when it has one) and removes it, as the provider's delete does. */
async function deleteContainer(name: string, graceSeconds: number): Promise<void> {
    if (graceSeconds > 0) await must(["stop", `--time=${graceSeconds}`, name]);
    await must(["rm", "--force", "--volumes", name]);
}

export interface Replayer {
    /** Runs the steps in order; returns one line per step, with its seconds. */
    apply(steps: Step[]): Promise<string[]>;
    /** Every container, network and volume created and not yet deleted (for a cleanup after a failure). */
    live(): { kind: DockerKind; name: string }[];
}

type DockerKind = "container" | "network" | "volume";

/** The Docker objects the resource types are, by resource type. */
const KINDS: Record<string, DockerKind> = { [RESOURCE_TYPES.container]: "container", [RESOURCE_TYPES.network]: "network", [RESOURCE_TYPES.volume]: "volume" };

/**
 * A replayer for one stack. `images` maps each mocked image ID (a docker.Image's
 * repoDigest under mocks) to a real image; add entries before applying the steps
 * of a run that uses new ones.
 */
export function replayer(images: Map<string, string>): Replayer {
    /** Container names by mocked resource ID ("<resource name>-id"), for pidMode "container:<id>". */
    const names = new Map<string, string>();
    const live = new Map<string, { kind: DockerKind; name: string }>();
    const track = (kind: DockerKind, name: string) => live.set(`${kind} ${name}`, { kind, name });
    const resolveValue = (value: string) => {
        if (images.has(value)) return images.get(value)!;
        return value.replace(/^container:(.+)$/, (whole, id) => (names.has(id) ? `container:${names.get(id)}` : whole));
    };

    async function create(resource: RecordedResource): Promise<void> {
        const inputs = plainDeep(resource.inputs);
        switch (resource.type) {
            case RESOURCE_TYPES.network: {
                const subnet = inputs.ipamConfigs?.[0]?.subnet;
                await must(["network", "create", ...(inputs.internal ? ["--internal"] : []), ...(subnet ? [`--subnet=${subnet}`] : []), inputs.name]);
                track("network", inputs.name);
                return;
            }
            case RESOURCE_TYPES.volume:
                await must(["volume", "create", inputs.name]);
                track("volume", inputs.name);
                return;
            case RESOURCE_TYPES.container: {
                const commands = containerCommands(inputs, resolveValue);
                names.set(`${resource.name}-id`, commands.name);
                track("container", commands.name);
                await createContainer(commands);
                return;
            }
            default:
                if (resource.type === RESOURCE_TYPES.image && !images.has(resource.state.repoDigest)) throw new Error(`no real image for ${resource.name} (${resource.state.repoDigest})`);
            // tls resources and images: nothing to do in Docker (images are built by the test beforehand).
        }
    }

    async function remove(old: RecordedResource): Promise<void> {
        const kind = KINDS[old.type];
        if (!kind) return;
        const inputs = plainDeep(old.inputs);
        if (kind === "container") await deleteContainer(inputs.name, inputs.destroyGraceSeconds ?? 0);
        else await must([kind, "rm", inputs.name]);
        live.delete(`${kind} ${inputs.name}`);
    }

    return {
        // An update is an image rebuilt in place: nothing to do in Docker (create checks the image is there).
        apply: (steps) => runSteps(steps, { create, update: create, remove }),
        live: () => [...live.values()],
    };
}
