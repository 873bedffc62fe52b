// The app tier: a private network that only the proxy can reach, and N
// Flask + Gunicorn replicas on it, each named after its own settings, so a
// replica with new settings starts beside the one it replaces.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { APP_HEALTHCHECK, ReplicaEndpoint, ReplicaSettings, appEnvironment, appHardening } from "../appSpec";
import { hardenedContainerArgs } from "../hardening";
import { settingsDigest } from "../naming";

export interface AppTierArgs extends ReplicaSettings {
    namePrefix: string;
    imageId: pulumi.Input<string>;
    subnet: string;
}

/** Every app replica reaches the others and the proxy under this name. */
export const APP_ALIAS = "app";

/**
 * A replica's container name: its number and a digest of everything else it
 * runs with. Same settings, same name; new settings, a new name, so the new
 * container can start while the old one still serves.
 */
export function replicaName(namePrefix: string, index: number, spec: unknown): string {
    return `${namePrefix}-app-${index + 1}-${settingsDigest(spec)}`;
}

export class AppTier extends pulumi.ComponentResource {
    readonly network: docker.Network;
    readonly containers: docker.Container[];
    readonly containerNames: pulumi.Output<string[]>;
    /** Each replica as the proxy's config names it: known once the replicas run. */
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
        this.endpoints = pulumi.all(this.containers.map((c) => c.name.apply((containerName) => ({ name: containerName }))));
        this.registerOutputs({ containerNames: this.containerNames, endpoints: this.endpoints });
    }
}
