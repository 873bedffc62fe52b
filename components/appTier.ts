// The app tier: a private network that only the proxy can reach, and N
// Flask + Gunicorn replicas on it, each named after its own settings, so a
// replica with new settings starts beside the one it replaces.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { StackSettings } from "./config";
import { Hardening, hardenedContainerArgs } from "./hardening";
import { APP_METRICS_PORT, APP_PORT, APP_USER } from "./layout";
import { settingsDigest } from "./naming";

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
 * per replica the arbiter and a margin for probes; twice that, since while a
 * new image rolls out every replica briefly has its successor beside it.
 */
function appProcessBudget(args: Pick<AppTierArgs, "replicas" | "workers">): number {
    const workers = args.workers > 0 ? args.workers : AUTO_WORKERS_ASSUMED;
    return 2 * args.replicas * (workers * TASKS_PER_WORKER + 16);
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
        `MLAPI_METRICS_PORT=${APP_METRICS_PORT}`,
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

/**
 * A replica's container name: its number and a digest of everything else it
 * runs with. Same settings, same name; new settings, a new name, so the new
 * container can start while the old one still serves.
 */
export function replicaName(namePrefix: string, index: number, spec: unknown): string {
    return `${namePrefix}-app-${index + 1}-${settingsDigest(spec)}`;
}

/** A replica as the proxy reaches it: its container name and its address on the app network. */
export interface ReplicaEndpoint {
    name: string;
    address: string;
}

/** A replica's address on the app network, from the addresses Docker gave the container. */
export function appNetworkAddress(networkDatas: { networkName: string; ipAddress: string }[], networkName: string): string {
    const address = networkDatas.find((n) => n.networkName === networkName)?.ipAddress;
    if (!address) throw new pulumi.RunError(`the replica has no address on network ${networkName} (it reported ${JSON.stringify(networkDatas)})`);
    return address;
}

export class AppTier extends pulumi.ComponentResource {
    readonly network: docker.Network;
    readonly containers: docker.Container[];
    readonly containerNames: pulumi.Output<string[]>;
    /** Each replica's name and address, for the proxy's config: known once the replicas run. */
    readonly endpoints: pulumi.Output<ReplicaEndpoint[]>;

    constructor(name: string, args: AppTierArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mlapi:app:AppTier", name, {}, opts);
        // Internal: no route to the outside world and no published ports;
        // only containers attached to it (the proxy) reach the replicas.
        this.network = new docker.Network(
            `${name}-net`,
            { name: `${args.namePrefix}-app`, internal: true, ipamConfigs: [{ subnet: args.subnet }] },
            { parent: this },
        );

        this.containers = [];
        for (let index = 0; index < args.replicas; index++) {
            const previous = this.containers[index - 1];
            const spec = {
                image: args.imageId,
                envs: appEnvironment(args),
                networksAdvanced: [{ name: this.network.name, aliases: [APP_ALIAS] }],
                healthcheck: APP_HEALTHCHECK,
                // `pulumi up` waits until each replica is healthy.
                wait: true,
                waitTimeout: 60,
                destroyGraceSeconds: 35,
                stopSignal: "SIGTERM",
                labels: [{ label: "mlapi.role", value: "app" }, { label: "mlapi.replica", value: String(index + 1) }],
                ...hardenedContainerArgs(appHardening(args)),
            };
            const containerName = pulumi.output(spec).apply((resolved) => replicaName(args.namePrefix, index, resolved));
            const container = new docker.Container(
                `${name}-${index + 1}`,
                { name: containerName, hostname: containerName, ...spec },
                {
                    parent: this,
                    // New settings make a new name: the engine creates the new
                    // replica (and waits until it is healthy), the proxy loads
                    // a config that lists it instead of the old one, and only
                    // then, at the end of `pulumi up`, the old one stops. One
                    // replica after the other, to spread the start-up load.
                    deleteBeforeReplace: false,
                    dependsOn: previous ? [previous] : [],
                },
            );
            this.containers.push(container);
        }
        this.containerNames = pulumi.all(this.containers.map((c) => c.name));
        this.endpoints = pulumi.all(
            this.containers.map((c) =>
                pulumi.all([c.name, c.networkDatas, this.network.name]).apply(([containerName, datas, network]) => ({ name: containerName, address: appNetworkAddress(datas, network) })),
            ),
        );
        this.registerOutputs({ containerNames: this.containerNames, endpoints: this.endpoints });
    }
}
