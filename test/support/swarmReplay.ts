// Replays the engine's steps (enginePlan) for swarm mode on a real swarm
// manager, without a Pulumi engine: each docker.Network, ServiceConfig,
// Secret and Service the program registered under mocks is made through the
// Docker Engine API from the very inputs the program gave it, the way the
// provider makes it (kreuzwerker's resource_docker_service_funcs.go and
// _structures.go): the service spec is translated field by field
// (serviceSpec), created or updated as a whole with the registry login from
// the provider's registryAuth, and with converge_config `pulumi up` waits
// until every task runs (or fails on a rollback); a delete removes the
// service and waits for its tasks' containers to go.
//
// What the mocks stand in for is mapped to the real thing: the pushed image
// references to the images the test pushed, and resource IDs ("<name>-id")
// to the IDs the manager gave the objects.
import * as http from "http";
import { runSteps, Step } from "./enginePlan";
import { plainDeep, RecordedResource, RESOURCE_TYPES } from "../unit/program";

/** A Go duration ("35s", "5m", "250ms") in nanoseconds, as the Engine API takes it. */
export function goDurationNs(value: string): number {
    const units: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
    let total = 0;
    const rest = value.replace(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g, (_, n, unit) => {
        total += Number(n) * units[unit];
        return "";
    });
    if (rest !== "" && rest !== "0") throw new Error(`not a Go duration: ${JSON.stringify(value)}`);
    return Math.round(total);
}

/** Keys a translation reads; any other key in the inputs fails, so a replay cannot run less than the stack asks for. */
function only(where: string, value: Record<string, unknown>, known: string[]): void {
    const unknown = Object.keys(value).filter((k) => !known.includes(k));
    if (unknown.length) throw new Error(`serviceSpec: no translation for ${where}.${unknown.join(`, ${where}.`)}`);
}

function updateConfig(c: Record<string, any>) {
    only("updateConfig", c, ["parallelism", "order", "failureAction", "monitor", "delay", "maxFailureRatio"]);
    return { Parallelism: c.parallelism, Order: c.order, FailureAction: c.failureAction, Monitor: goDurationNs(c.monitor), Delay: goDurationNs(c.delay), MaxFailureRatio: Number(c.maxFailureRatio) };
}

/**
 * A docker.Service's inputs (secrets unwrapped) as the Engine API's
 * ServiceSpec, as the provider's createServiceSpec builds it. `resolve` maps
 * a mocked value (an image reference or a resource ID) to the real one.
 */
export function serviceSpec(inputs: Record<string, any>, resolve: (value: string) => string = (v) => v): Record<string, unknown> {
    only("", inputs, ["name", "labels", "mode", "taskSpec", "endpointSpec", "updateConfig", "rollbackConfig", "convergeConfig"]);
    const task = inputs.taskSpec;
    only("taskSpec", task, ["containerSpec", "resources", "restartPolicy", "logDriver", "placement", "networksAdvanceds"]);
    const c = task.containerSpec;
    only("taskSpec.containerSpec", c, ["image", "commands", "env", "healthcheck", "stopSignal", "stopGracePeriod", "user", "groups", "readOnly", "capDrops", "mounts", "configs", "secrets"]);
    const file = (f: Record<string, any>) => ({ Name: f.fileName, UID: f.fileUid, GID: f.fileGid, Mode: f.fileMode });
    return {
        Name: inputs.name,
        Labels: Object.fromEntries((inputs.labels ?? []).map((l: { label: string; value: string }) => [l.label, l.value])),
        Mode: { Replicated: { Replicas: inputs.mode.replicated.replicas } },
        TaskTemplate: {
            ContainerSpec: {
                Image: resolve(c.image),
                ...(c.commands ? { Command: c.commands } : {}),
                Env: Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v}`),
                User: c.user,
                ...(c.groups ? { Groups: c.groups } : {}),
                ReadOnly: c.readOnly,
                CapabilityDrop: c.capDrops,
                StopSignal: c.stopSignal,
                StopGracePeriod: goDurationNs(c.stopGracePeriod),
                Healthcheck: {
                    Test: c.healthcheck.tests,
                    Interval: goDurationNs(c.healthcheck.interval),
                    Timeout: goDurationNs(c.healthcheck.timeout),
                    StartPeriod: goDurationNs(c.healthcheck.startPeriod),
                    Retries: c.healthcheck.retries,
                },
                Mounts: (c.mounts ?? []).map((m: Record<string, any>) => {
                    only("mounts", m, ["type", "target", "readOnly", "tmpfsOptions"]);
                    return { Type: m.type, Target: m.target, ReadOnly: m.readOnly, TmpfsOptions: { SizeBytes: m.tmpfsOptions.sizeBytes, Mode: m.tmpfsOptions.mode } };
                }),
                Configs: (c.configs ?? []).map((r: Record<string, any>) => ({ File: file(r), ConfigID: resolve(r.configId), ConfigName: r.configName })),
                Secrets: (c.secrets ?? []).map((r: Record<string, any>) => ({ File: file(r), SecretID: resolve(r.secretId), SecretName: r.secretName })),
            },
            Resources: { Limits: { MemoryBytes: task.resources.limits.memoryBytes } },
            RestartPolicy: {
                Condition: task.restartPolicy.condition,
                Delay: goDurationNs(task.restartPolicy.delay),
                MaxAttempts: task.restartPolicy.maxAttempts,
                Window: goDurationNs(task.restartPolicy.window),
            },
            LogDriver: { Name: task.logDriver.name, Options: task.logDriver.options },
            ...(task.placement
                ? {
                      Placement: {
                          Constraints: task.placement.constraints,
                          MaxReplicas: task.placement.maxReplicas,
                          Platforms: (task.placement.platforms ?? []).map((p: { os: string; architecture: string }) => ({ OS: p.os, Architecture: p.architecture })),
                      },
                  }
                : {}),
            Networks: task.networksAdvanceds.map((n: { id: string }) => ({ Target: resolve(n.id) })),
        },
        EndpointSpec: {
            Mode: inputs.endpointSpec.mode,
            Ports: (inputs.endpointSpec.ports ?? []).map((p: Record<string, any>) => ({ Protocol: p.protocol, TargetPort: p.targetPort, PublishedPort: p.publishedPort, PublishMode: p.publishMode })),
        },
        UpdateConfig: updateConfig(inputs.updateConfig),
        RollbackConfig: updateConfig(inputs.rollbackConfig),
    };
}

/** The Engine API of one daemon, over its unix socket. */
export function engineApi(socketPath: string) {
    return async function call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
        const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        return new Promise<T>((resolve, reject) => {
            const req = http.request(
                { socketPath, method, path: `/v1.41${path}`, headers: { ...(payload ? { "Content-Type": "application/json", "Content-Length": payload.length } : {}), ...headers } },
                (res) => {
                    const chunks: Buffer[] = [];
                    res.on("data", (c) => chunks.push(c));
                    res.on("end", () => {
                        const text = Buffer.concat(chunks).toString("utf8");
                        if ((res.statusCode ?? 500) >= 300) return reject(new Error(`${method} ${path}: ${res.statusCode} ${text.trim()}`));
                        resolve((text ? JSON.parse(text) : undefined) as T);
                    });
                },
            );
            req.on("error", reject);
            req.end(payload);
        });
    };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SwarmReplayer {
    /** Runs the steps in order; returns one line per step, with its seconds. */
    apply(steps: Step[]): Promise<string[]>;
}

/**
 * A replayer against one manager (`socketPath`). `images` maps each mocked
 * image reference (a pushed docker.Image's repoDigest under mocks) to the
 * reference of an image the test pushed; add entries before applying the
 * steps of a run that uses new ones.
 */
export function swarmReplayer(socketPath: string, images: Map<string, string>): SwarmReplayer {
    const api = engineApi(socketPath);
    /** Real IDs by mocked ID ("<resource name>-id"): the object a resource of that name is now. */
    const ids = new Map<string, string>();
    /** Real IDs by type and Docker name: a replaced resource's old object, still to delete, has the same mocked ID as its successor. */
    const objects = new Map<string, string>();
    const made = (resource: RecordedResource, id: string) => {
        ids.set(`${resource.name}-id`, id);
        objects.set(`${resource.type} ${plainDeep(resource.inputs).name}`, id);
    };
    let registryAuth = "";
    const resolve = (value: string) => images.get(value) ?? ids.get(value) ?? value;

    async function converged(serviceId: string, update: boolean, timeoutMs: number): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const service = await api("GET", `/services/${serviceId}`);
            const state = service.UpdateStatus?.State;
            if (update && state && /rollback_completed|paused|rollback_paused/.test(state)) throw new Error(`service ${service.Spec.Name}: update ${state}: ${service.UpdateStatus.Message}`);
            const tasks: any[] = await api("GET", `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [serviceId], "desired-state": ["running"] }))}`);
            const running = tasks.filter((t) => t.Status.State === "running" && t.Spec.ContainerSpec.Image === service.Spec.TaskTemplate.ContainerSpec.Image).length;
            const settled = !update || !state || state === "completed";
            if (settled && running === service.Spec.Mode.Replicated.Replicas && tasks.length === running) return;
            if (Date.now() > deadline) {
                const all: any[] = await api("GET", `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [serviceId] }))}`);
                const why = [...new Set(all.map((t) => `${t.Status.State}: ${t.Status.Err ?? t.Status.Message}`))].join("; ");
                throw new Error(`service ${service.Spec.Name} did not converge: ${running} of ${service.Spec.Mode.Replicated.Replicas} running, update ${state ?? "none"} (tasks: ${why})`);
            }
            await sleep(500);
        }
    }

    async function create(resource: RecordedResource): Promise<void> {
        const inputs = plainDeep(resource.inputs);
        switch (resource.type) {
            case RESOURCE_TYPES.dockerProvider: {
                // The provider sends its registryAuth entry for the image's registry with every service create and update.
                const auth = typeof inputs.registryAuth === "string" ? JSON.parse(inputs.registryAuth) : inputs.registryAuth;
                const entry = auth?.[0];
                // URL-safe base64 with its padding, as the provider writes it (Go's base64.URLEncoding).
                const encoded = Buffer.from(JSON.stringify({ username: entry?.username, password: entry?.password, serveraddress: entry?.address })).toString("base64");
                registryAuth = entry ? encoded.replace(/\+/g, "-").replace(/\//g, "_") : "";
                return;
            }
            case RESOURCE_TYPES.network: {
                const created = await api("POST", "/networks/create", {
                    Name: inputs.name,
                    Driver: inputs.driver,
                    Internal: inputs.internal ?? false,
                    CheckDuplicate: true,
                    ...(inputs.ipamConfigs ? { IPAM: { Config: inputs.ipamConfigs.map((c: { subnet: string }) => ({ Subnet: c.subnet })) } } : {}),
                });
                made(resource, created.Id);
                return;
            }
            case RESOURCE_TYPES.serviceConfig:
            case RESOURCE_TYPES.secret: {
                const kind = resource.type === RESOURCE_TYPES.secret ? "secrets" : "configs";
                const created = await api("POST", `/${kind}/create`, { Name: inputs.name, Data: inputs.data });
                made(resource, created.ID);
                return;
            }
            case RESOURCE_TYPES.service: {
                const created = await api("POST", "/services/create", serviceSpec(inputs, resolve), registryAuth ? { "X-Registry-Auth": registryAuth } : {});
                made(resource, created.ID);
                if (inputs.convergeConfig) await converged(created.ID, false, goDurationNs(inputs.convergeConfig.timeout) / 1e6);
                return;
            }
            default:
                if (resource.type === RESOURCE_TYPES.image && !images.has(resource.state.repoDigest)) throw new Error(`no real image for ${resource.name} (${resource.state.repoDigest})`);
            // tls resources and images: nothing to do on the swarm (the test pushed the images beforehand).
        }
    }

    async function update(resource: RecordedResource): Promise<void> {
        if (resource.type !== RESOURCE_TYPES.service) return create(resource);
        const inputs = plainDeep(resource.inputs);
        const id = ids.get(`${resource.name}-id`)!;
        const current = await api("GET", `/services/${id}`);
        await api("POST", `/services/${id}/update?version=${current.Version.Index}`, serviceSpec(inputs, resolve), registryAuth ? { "X-Registry-Auth": registryAuth } : {});
        if (inputs.convergeConfig) {
            // The provider's first look comes after its 7 s delay; an update Swarm has not begun yet would look done.
            await sleep(2000);
            await converged(id, true, goDurationNs(inputs.convergeConfig.timeout) / 1e6);
        }
    }

    async function remove(old: RecordedResource): Promise<void> {
        const key = `${old.type} ${plainDeep(old.inputs).name}`;
        const id = objects.get(key);
        switch (old.type) {
            case RESOURCE_TYPES.service: {
                const inputs = plainDeep(old.inputs);
                await api("DELETE", `/services/${id}`);
                // With a stop grace period the provider waits for the task containers it can see (the manager's) to be removed.
                const deadline = Date.now() + goDurationNs(inputs.taskSpec.containerSpec.stopGracePeriod) / 1e6 + 30_000;
                const filter = encodeURIComponent(JSON.stringify({ label: [`com.docker.swarm.service.name=${inputs.name}`] }));
                while ((await api<any[]>("GET", `/containers/json?all=1&filters=${filter}`)).length) {
                    if (Date.now() > deadline) throw new Error(`the containers of ${inputs.name} are still there`);
                    await sleep(500);
                }
                break;
            }
            case RESOURCE_TYPES.network:
                await api("DELETE", `/networks/${id}`);
                break;
            case RESOURCE_TYPES.serviceConfig:
                await api("DELETE", `/configs/${id}`);
                break;
            case RESOURCE_TYPES.secret:
                await api("DELETE", `/secrets/${id}`);
                break;
            default:
                return;
        }
        objects.delete(key);
    }

    return { apply: (steps) => runSteps(steps, { create, update, remove }) };
}
