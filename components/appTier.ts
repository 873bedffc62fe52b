// The app tier: a private network that only the proxy can reach, and N
// Flask + Gunicorn replicas on it with stable names, fixed addresses and a
// shared alias.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { dynamicAddressRange, replicaAddress, StackSettings } from "./config";
import { Hardening, hardenedContainerArgs } from "./hardening";
import { APP_PORT, APP_USER } from "./layout";

export interface AppTierArgs {
    namePrefix: string;
    imageId: pulumi.Input<string>;
    replicas: number;
    subnet: string;
    memoryMb: number;
    /** Gunicorn processes per replica; 0: the replica's share of the host's CPUs. */
    workers: number;
    maxBodyBytes: number;
}

/** Every app replica reaches the others and the proxy under this name. */
export const APP_ALIAS = "app";

/** Gunicorn processes assumed per replica when their number follows the CPUs (appWorkers 0). */
const AUTO_WORKERS_ASSUMED = 8;

/** Tasks of one gevent worker: its own thread and gevent's thread pool (at most 10, started on demand). */
const TASKS_PER_WORKER = 11;

/**
 * Processes and threads all replicas may run together (RLIMIT_NPROC counts
 * every process of the app's user ID on the host): per worker its tasks,
 * per replica the arbiter and a margin for probes.
 */
function appProcessBudget(args: Pick<AppTierArgs, "replicas" | "workers">): number {
    const workers = args.workers > 0 ? args.workers : AUTO_WORKERS_ASSUMED;
    return args.replicas * (workers * TASKS_PER_WORKER + 16);
}

/** The hardening of every replica: its memory limit and the process budget of the whole tier. */
export function appHardening(args: Pick<AppTierArgs, "replicas" | "workers" | "memoryMb">): Hardening {
    return { user: APP_USER, memoryMb: args.memoryMb, maxProcesses: appProcessBudget(args), tmpfs: { "/tmp": "rw,noexec,nosuid,size=16m" } };
}

/**
 * The environment of a replica: Gunicorn and app settings, nothing secret.
 * GUNICORN_REPLICAS tells each replica how many share the host's CPUs, so
 * that by default the replicas together run one process per CPU.
 */
export function appEnvironment(args: Pick<AppTierArgs, "replicas" | "workers" | "maxBodyBytes">): string[] {
    return [
        `GUNICORN_BIND=0.0.0.0:${APP_PORT}`,
        `GUNICORN_REPLICAS=${args.replicas}`,
        ...(args.workers > 0 ? [`GUNICORN_WORKERS=${args.workers}`] : []),
        `MLAPI_MAX_BODY_BYTES=${args.maxBodyBytes}`,
    ];
}

/** The replica settings of a stack configuration: what index.ts gives the AppTier (the tests and the bench reuse it). */
export function replicaSettings(settings: StackSettings): Pick<AppTierArgs, "replicas" | "workers" | "memoryMb" | "maxBodyBytes"> {
    return { replicas: settings.replicas, workers: settings.appWorkers, memoryMb: settings.appMemoryMb, maxBodyBytes: settings.maxBodyKb * 1024 };
}

/** Readiness probe: the image's own (`/api/health` on loopback, ignoring any http_proxy), needing no curl. */
export const APP_HEALTHCHECK = {
    tests: ["CMD", "python3", "-m", "mlapi.healthcheck"],
    interval: "10s",
    timeout: "3s",
    startPeriod: "5s",
    retries: 3,
};

export class AppTier extends pulumi.ComponentResource {
    readonly network: docker.Network;
    readonly containers: docker.Container[];
    readonly containerNames: pulumi.Output<string[]>;
    /** "address:port" of each replica, for the proxy's upstream list. */
    readonly upstreams: string[];

    constructor(name: string, args: AppTierArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mlapi:app:AppTier", name, {}, opts);
        // Internal: no route to the outside world and no published ports;
        // only containers attached to it (the proxy) reach the replicas.
        this.network = new docker.Network(
            `${name}-net`,
            { name: `${args.namePrefix}-app`, internal: true, ipamConfigs: [{ subnet: args.subnet, ipRange: dynamicAddressRange(args.subnet) }] },
            { parent: this },
        );

        this.containers = [];
        this.upstreams = [];
        for (let index = 0; index < args.replicas; index++) {
            const containerName = `${args.namePrefix}-app-${index + 1}`;
            const address = replicaAddress(args.subnet, index);
            const previous = this.containers[index - 1];
            const container = new docker.Container(
                `${name}-${index + 1}`,
                {
                    name: containerName,
                    hostname: containerName,
                    image: args.imageId,
                    envs: appEnvironment(args),
                    networksAdvanced: [{ name: this.network.name, aliases: [APP_ALIAS], ipv4Address: address }],
                    healthcheck: APP_HEALTHCHECK,
                    // `pulumi up` waits until each replica is healthy.
                    wait: true,
                    waitTimeout: 60,
                    destroyGraceSeconds: 35,
                    stopSignal: "SIGTERM",
                    labels: [{ label: "mlapi.role", value: "app" }, { label: "mlapi.replica", value: String(index + 1) }],
                    ...hardenedContainerArgs(appHardening(args)),
                },
                {
                    parent: this,
                    // Fixed names and addresses cannot exist twice: replace by
                    // delete-then-create, one replica after the other (each
                    // waits for the previous one), so the others keep serving.
                    deleteBeforeReplace: true,
                    dependsOn: previous ? [previous] : [],
                },
            );
            this.containers.push(container);
            this.upstreams.push(`${address}:${APP_PORT}`);
        }
        this.containerNames = pulumi.all(this.containers.map((c) => c.name));
        this.registerOutputs({ containerNames: this.containerNames });
    }
}
