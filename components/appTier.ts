// The app tier: a private network that only the proxy can reach, and N
// Flask + Gunicorn replicas on it with stable names, fixed addresses and a
// shared alias.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { replicaAddress } from "./config";
import { Hardening, hardenedContainerArgs } from "./hardening";
import { APP_HEALTH_PATH, APP_PORT, APP_USER } from "./layout";

export interface AppTierArgs {
    namePrefix: string;
    imageId: pulumi.Input<string>;
    replicas: number;
    subnet: string;
    memoryMb: number;
    /** Gunicorn processes per replica (0: one per CPU) and threads per process. */
    workers: number;
    threads: number;
    maxBodyBytes: number;
}

/** Every app replica reaches the others and the proxy under this name. */
export const APP_ALIAS = "app";

export function appHardening(memoryMb: number): Hardening {
    return { user: APP_USER, memoryMb, maxProcesses: 512, tmpfs: { "/tmp": "rw,noexec,nosuid,size=16m" } };
}

/** The environment of a replica: Gunicorn and app settings, nothing secret. */
export function appEnvironment(args: Pick<AppTierArgs, "workers" | "threads" | "maxBodyBytes">): string[] {
    return [
        `GUNICORN_BIND=0.0.0.0:${APP_PORT}`,
        ...(args.workers > 0 ? [`GUNICORN_WORKERS=${args.workers}`] : []),
        `GUNICORN_THREADS=${args.threads}`,
        `MLAPI_MAX_BODY_BYTES=${args.maxBodyBytes}`,
    ];
}

/** A liveness/readiness probe that needs nothing but the image's Python. */
export const APP_HEALTHCHECK = {
    tests: ["CMD", "python3", "-c", `import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:${APP_PORT}${APP_HEALTH_PATH}', timeout=2)`],
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
            { name: `${args.namePrefix}-app`, internal: true, ipamConfigs: [{ subnet: args.subnet }] },
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
                    ...hardenedContainerArgs(appHardening(args.memoryMb)),
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
