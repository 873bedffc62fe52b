// The app tier of swarm mode: an overlay network that only the proxy and the
// app join, and one replicated service whose tasks Swarm places, restarts,
// rolls and rolls back. Each task runs exactly what a container of the
// Docker platform runs (appSpec.ts); the proxy finds the tasks through
// Docker's DNS (tasks.<service>), so the service has no virtual IP.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { APP_HEALTHCHECK, ReplicaSettings, appEnvironment, appHardening } from "../appSpec";
import { subnetGateway } from "../config";
import { rollingUpdates, swarmTaskHardening } from "./hardening";

export interface SwarmAppServiceArgs extends ReplicaSettings {
    namePrefix: string;
    /** The pushed image, by digest (registry/name@sha256:...), so every node runs the same one. */
    image: pulumi.Input<string>;
    subnet: string;
}

/** Seconds a rolled task may take to turn healthy before Swarm counts the update as failed. */
export const APP_UPDATE_MONITOR = "30s";

/** The app service's name; its tasks answer at tasks.<name> on the app network. */
export function appServiceName(namePrefix: string): string {
    return `${namePrefix}-app`;
}

/**
 * The docker.Service arguments of the app, given the network's ID. Pure, so
 * the unit tests read them and the swarm suite replays them without an engine.
 */
export function appServiceArgs<T>(args: Omit<SwarmAppServiceArgs, "image" | "subnet"> & { image: T; networkId: T }) {
    const hardening = swarmTaskHardening(appHardening(args));
    return {
        name: appServiceName(args.namePrefix),
        labels: [{ label: "mlapi.role", value: "app" }],
        mode: { replicated: { replicas: args.replicas } },
        taskSpec: {
            containerSpec: {
                image: args.image,
                // Without GUNICORN_REPLICAS: how many tasks share a node is
                // Swarm's choice, so each task sizes itself to its node's CPUs
                // (appWorkers fixes it), and scaling changes no task's spec.
                env: Object.fromEntries(appEnvironment(args, null).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
                healthcheck: APP_HEALTHCHECK,
                // Gunicorn finishes its requests on SIGTERM (graceful_timeout 30 s).
                stopSignal: "SIGTERM",
                stopGracePeriod: "35s",
                ...hardening.containerSpec,
            },
            ...hardening.taskSpec,
            networksAdvanceds: [{ id: args.networkId }],
        },
        // The proxy balances over the tasks itself (tasks.<name>): no virtual
        // IP, which also needs IPVS in the node's kernel.
        endpointSpec: { mode: "dnsrr" },
        // The new task starts and turns healthy before Swarm stops the old one.
        ...rollingUpdates("start-first", APP_UPDATE_MONITOR),
    };
}

export class SwarmAppService extends pulumi.ComponentResource {
    readonly network: docker.Network;
    readonly service: docker.Service;
    readonly serviceName: pulumi.Output<string>;

    constructor(name: string, args: SwarmAppServiceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mlapi:swarm:AppService", name, {}, opts);
        // Internal: the tasks have no route out, and only services attached
        // to it (the proxy) reach them. Not IPsec-encrypted: Docker adds the
        // VXLAN ID it picked to the options, which the provider then reads as
        // a change forcing a new network (docs/swarm.md). The gateway
        // is Docker's own choice, given so that a refresh reads back no change.
        this.network = new docker.Network(
            `${name}-net`,
            { name: `${args.namePrefix}-app`, driver: "overlay", internal: true, ipamConfigs: [{ subnet: args.subnet, gateway: subnetGateway(args.subnet) }] },
            { parent: this },
        );
        this.service = new docker.Service(name, appServiceArgs<pulumi.Input<string>>({ ...args, networkId: this.network.id }), { parent: this });
        this.serviceName = this.service.name;
        this.registerOutputs({ serviceName: this.serviceName });
    }
}
