// The edge of swarm mode, two services on the edge nodes (the proxyConstraint):
// - the port forwarder, one task per node, holds the node's HTTPS and HTTP
//   ports (host mode: no routing mesh, and clients' own addresses reach
//   it) and passes each connection whole to a proxy task, with a PROXY
//   protocol header naming the client. It changes only with the image, so
//   the node's ports stay open through every change of the site;
// - the proxy, Nginx, ends TLS and serves the site; it publishes nothing,
//   so it rolls start-first: the new task runs beside the old one, and the
//   forwarders send new connections to it, before the old one stops.
// The proxy's config, certificate and frontend are Swarm configs and its key
// a Swarm secret, all immutable: each is named by its content, so a change
// creates new ones, rolls the proxy onto them, and the old ones are removed
// once the service no longer uses them (at the end of `pulumi up`).
import * as crypto from "crypto";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { APP_PORT, PROXY_DEPLOY_DIR, PROXY_FILES, PROXY_HTTP_PORT, PROXY_HTTPS_PORT, PROXY_RUNTIME_DIR, PROXY_SLOT_DRAIN_SECONDS } from "../layout";
import { ProxyUpload, SWARM_FORWARDER_FILES, SWARM_UPSTREAMS_FILE, swarmForwarderConfig } from "../proxyConfig";
import { PROXY_HEALTHCHECK, PROXY_MASTER_PID_FILES, proxyHardening } from "../proxySpec";
import { subnetGateway } from "../config";
import { rollingUpdates, swarmTaskHardening } from "./hardening";

export interface SwarmProxyServiceArgs {
    namePrefix: string;
    /** The pushed proxy image, by digest. */
    image: pulumi.Input<string>;
    /** The app service, whose tasks the proxy finds at tasks.<name>. */
    appServiceName: pulumi.Input<string>;
    appNetworkId: pulumi.Input<string>;
    /** Private subnet of the network between the forwarders and the proxy tasks (the proxy's config believes PROXY headers from it). */
    frontSubnet: string;
    /** The rendered config, certificate, key and frontend (NginxConfig's uploads). */
    files: ProxyUpload<pulumi.Input<string>>[];
    httpsPort: number;
    httpPort: number;
    /** Proxy tasks, and forwarders (at most one per node). */
    replicas: number;
    /** Placement constraint of the forwarders and proxy tasks: the edge nodes. */
    constraint: string;
    memoryMb: number;
    /** Nginx worker processes of the forwarder; 0: one per CPU. */
    forwarderWorkers: number;
    /** The images' platform (os/arch), which Swarm adds to a placement from the image's manifest. */
    imagePlatform: string;
}

/** A file of the proxy as a Swarm config or secret reference: its object's ID and name, where it appears, its mode. */
export interface MountedFile<T> {
    id: T;
    name: T;
    file: string;
    mode: number;
}

/**
 * The name of the Swarm object holding one file: the file's kind and a
 * digest of its path and content. Swarm names allow 64 characters.
 */
export function contentName(namePrefix: string, file: string, content: string): string {
    const kinds: Record<string, string> = {
        [PROXY_FILES.config]: "conf",
        [PROXY_FILES.front]: "front",
        [PROXY_FILES.certificate]: "cert",
        [PROXY_FILES.certificateKey]: "key",
        [SWARM_FORWARDER_FILES.config]: "fwd",
    };
    const kind = kinds[file] ?? "html";
    const digest = crypto.createHash("sha256").update(file).update("\0").update(content).digest("hex").slice(0, 16);
    const name = `${namePrefix}-proxy-${kind}-${digest}`;
    if (name.length > 64) throw new pulumi.RunError(`the Swarm object name ${name} is longer than 64 characters: use a shorter stack name`);
    return name;
}

/** The upload's mode, read-only: 0444, or 0440 for the key (root and PROXY_KEY_GROUP). */
function fileMode(permissions: string): number {
    return Number.parseInt(permissions, 8) & ~0o222;
}

/** How often the discovery loop asks Docker's DNS for the app's tasks (a killed task leaves DNS within about 0.5 s). */
export const DISCOVERY_INTERVAL_SECONDS = "1";

/** An image platform (linux/amd64, linux/arm/v7) as a Swarm placement's platform. */
export function placementPlatform(platform: string): { os: string; architecture: string } {
    const [os, architecture] = platform.split("/");
    return { os, architecture };
}

/** The proxy service's name. */
export function proxyServiceName(namePrefix: string): string {
    return `${namePrefix}-proxy`;
}

/** The forwarder service's name. */
export function forwarderServiceName(namePrefix: string): string {
    return `${namePrefix}-forwarder`;
}

/**
 * What the proxy's and the forwarder's tasks share: Nginx under the
 * discovery loop, hardened. Only the proxy reads the key, so only it gets
 * the key's group. A stopping proxy task drains its slots for
 * PROXY_SLOT_DRAIN_SECONDS (see nginx/bin/mlapi-proxy), then lets requests
 * in flight finish: the grace period covers both.
 */
function nginxTask<T>(args: { memoryMb: number; imagePlatform: string; constraint: string; image: T }, maxPerNode: number, readsKey: boolean) {
    const hardening = swarmTaskHardening({ ...proxyHardening(args.memoryMb), ...(readsKey ? {} : { groups: [] }) });
    return {
        containerSpec: {
            image: args.image,
            env: { MLAPI_DISCOVERY_INTERVAL: DISCOVERY_INTERVAL_SECONDS },
            // Nginx finishes in-flight requests on SIGQUIT.
            stopSignal: "SIGQUIT",
            stopGracePeriod: `${PROXY_SLOT_DRAIN_SECONDS + 10}s`,
            ...hardening.containerSpec,
        },
        taskSpec: {
            ...hardening.taskSpec,
            // The platform is given as Swarm reads it from the image, so a refresh finds no change.
            placement: { constraints: [args.constraint], maxReplicas: maxPerNode, platforms: [placementPlatform(args.imagePlatform)] },
        },
    };
}

/** Healthy when each Nginx of the task runs workers and the port answers as MODE says (nginx/bin/mlapi-healthcheck). */
function healthcheck(mode: "proxy-protocol" | "connect", pidFiles: string[]) {
    return { ...PROXY_HEALTHCHECK, tests: ["CMD", "mlapi-healthcheck", mode, String(PROXY_HTTP_PORT), ...pidFiles] };
}

/** The docker.Service arguments of the proxy. Pure, for the unit tests and the swarm suite's replay. */
export function proxyServiceArgs<T>(args: Omit<SwarmProxyServiceArgs, "image" | "appServiceName" | "appNetworkId" | "files" | "frontSubnet" | "forwarderWorkers"> & {
    image: T;
    appServiceName: T;
    appNetworkId: T;
    frontNetworkId: T;
    configs: MountedFile<T>[];
    secrets: MountedFile<T>[];
}) {
    // Two per node: one running, one rolling in beside it.
    const task = nginxTask(args, 2, true);
    const mounted = (f: MountedFile<T>) => ({ fileName: f.file, fileUid: "0", fileGid: "0", fileMode: f.mode });
    return {
        name: proxyServiceName(args.namePrefix),
        labels: [{ label: "mlapi.role", value: "proxy" }],
        mode: { replicated: { replicas: args.replicas } },
        taskSpec: {
            containerSpec: {
                ...task.containerSpec,
                commands: ["mlapi-swarm-proxy", args.appServiceName, `${APP_PORT}:${SWARM_UPSTREAMS_FILE}`, "--", "mlapi-proxy", PROXY_FILES.front, PROXY_FILES.config],
                configs: args.configs.map((c) => ({ configId: c.id, configName: c.name, ...mounted(c) })),
                secrets: args.secrets.map((s) => ({ secretId: s.id, secretName: s.name, ...mounted(s) })),
                healthcheck: healthcheck("proxy-protocol", PROXY_MASTER_PID_FILES),
            },
            ...task.taskSpec,
            // Internal networks only: the forwarders reach it on the front
            // network, it reaches the app on the app network.
            networksAdvanceds: [{ id: args.appNetworkId }, { id: args.frontNetworkId }],
        },
        // Nothing published: the forwarders hold the ports.
        endpointSpec: { mode: "dnsrr" },
        // The new task turns healthy beside the old one, then the old one
        // finishes its requests; the forwarders pass new connections to
        // whichever runs.
        ...rollingUpdates("start-first", "15s"),
    };
}

/** The docker.Service arguments of the port forwarder. Pure, for the unit tests and the swarm suite's replay. */
export function forwarderServiceArgs<T>(args: Pick<SwarmProxyServiceArgs, "namePrefix" | "httpsPort" | "httpPort" | "replicas" | "constraint" | "memoryMb" | "imagePlatform"> & {
    image: T;
    edgeNetworkId: T;
    frontNetworkId: T;
    config: MountedFile<T>;
}) {
    // A host-mode port can be held by one task per node.
    const task = nginxTask(args, 1, false);
    return {
        name: forwarderServiceName(args.namePrefix),
        labels: [{ label: "mlapi.role", value: "forwarder" }],
        mode: { replicated: { replicas: args.replicas } },
        taskSpec: {
            containerSpec: {
                ...task.containerSpec,
                commands: [
                    "mlapi-swarm-proxy",
                    proxyServiceName(args.namePrefix),
                    `${PROXY_HTTPS_PORT}:${SWARM_FORWARDER_FILES.httpsUpstreams}`,
                    `${PROXY_HTTP_PORT}:${SWARM_FORWARDER_FILES.httpUpstreams}`,
                    "--",
                    ...["nginx", "-e", "stderr", "-c", SWARM_FORWARDER_FILES.config, "-g", "daemon off;"],
                ],
                configs: [{ configId: args.config.id, configName: args.config.name, fileName: args.config.file, fileUid: "0", fileGid: "0", fileMode: args.config.mode }],
                // Its answers come from the proxy tasks: its own health is that it accepts.
                healthcheck: healthcheck("connect", [`${PROXY_RUNTIME_DIR}/nginx.pid`]),
            },
            ...task.taskSpec,
            // A host-mode port is forwarded over the node's docker_gwbridge,
            // which only a task on a network with outside access (the edge
            // network) is attached to; the proxy tasks are on the front network.
            networksAdvanceds: [{ id: args.edgeNetworkId }, { id: args.frontNetworkId }],
        },
        endpointSpec: {
            mode: "dnsrr",
            ports: [
                { targetPort: PROXY_HTTPS_PORT, publishedPort: args.httpsPort, publishMode: "host", protocol: "tcp" },
                { targetPort: PROXY_HTTP_PORT, publishedPort: args.httpPort, publishMode: "host", protocol: "tcp" },
            ],
        },
        // The node's ports are the old task's until it stops, so a new task
        // can only start after it (stop-first), one node at a time: only a
        // new image or new ports change it.
        ...rollingUpdates("stop-first", "15s"),
    };
}

export class SwarmProxyService extends pulumi.ComponentResource {
    readonly edgeNetwork: docker.Network;
    readonly frontNetwork: docker.Network;
    readonly configs: docker.ServiceConfig[];
    readonly keySecret: docker.Secret;
    readonly service: docker.Service;
    readonly forwarderConfig: docker.ServiceConfig;
    readonly forwarder: docker.Service;

    constructor(name: string, args: SwarmProxyServiceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mlapi:swarm:ProxyService", name, {}, opts);
        // The forwarders' alone: their host-mode ports need a network with outside access.
        this.edgeNetwork = new docker.Network(`${name}-edge`, { name: `${args.namePrefix}-edge`, driver: "overlay" }, { parent: this });
        // Forwarders to proxy tasks; its subnet is the one the proxy believes PROXY headers from.
        this.frontNetwork = new docker.Network(
            `${name}-front`,
            { name: `${args.namePrefix}-front`, driver: "overlay", internal: true, ipamConfigs: [{ subnet: args.frontSubnet, gateway: subnetGateway(args.frontSubnet) }] },
            { parent: this },
        );
        const configObject = (file: string, content: pulumi.Input<string>, opts: { key: boolean }) => {
            const text = pulumi.output(content);
            // The name is a digest: it reveals nothing of the key, so it need not be secret.
            const objectName = pulumi.unsecret(text.apply((t) => contentName(args.namePrefix, file, t)));
            const data = text.apply((t) => Buffer.from(t, "utf8").toString("base64"));
            const resourceName = `${name}-${file.slice(PROXY_DEPLOY_DIR.length + 1).replace(/\//g, "-")}`;
            // A new one is made first and the old one deleted at the end of
            // `pulumi up`, once the proxy no longer uses it; the provider
            // would delete first (it does for any resource given a name),
            // which Swarm refuses for a config in use.
            const replace = { parent: this, deleteBeforeReplace: false };
            return opts.key
                ? new docker.Secret(resourceName, { name: objectName, data: pulumi.secret(data) }, replace)
                : new docker.ServiceConfig(resourceName, { name: objectName, data }, replace);
        };
        const mountedFiles = args.files.map((upload) => ({
            resource: configObject(upload.file, upload.content, { key: upload.file === PROXY_FILES.certificateKey }),
            file: upload.file,
            mode: fileMode(upload.permissions),
        }));
        this.configs = mountedFiles.map((f) => f.resource).filter((r): r is docker.ServiceConfig => r instanceof docker.ServiceConfig);
        this.keySecret = mountedFiles.map((f) => f.resource).find((r): r is docker.Secret => r instanceof docker.Secret)!;
        const reference = (f: (typeof mountedFiles)[number]): MountedFile<pulumi.Input<string>> => ({ id: f.resource.id, name: f.resource.name, file: f.file, mode: f.mode });
        this.service = new docker.Service(
            name,
            proxyServiceArgs<pulumi.Input<string>>({
                ...args,
                frontNetworkId: this.frontNetwork.id,
                configs: mountedFiles.filter((f) => f.resource instanceof docker.ServiceConfig).map(reference),
                secrets: mountedFiles.filter((f) => f.resource instanceof docker.Secret).map(reference),
            }),
            { parent: this },
        );
        this.forwarderConfig = configObject(SWARM_FORWARDER_FILES.config, swarmForwarderConfig(args.forwarderWorkers), { key: false }) as docker.ServiceConfig;
        this.forwarder = new docker.Service(
            `${name}-forwarder`,
            forwarderServiceArgs<pulumi.Input<string>>({
                ...args,
                edgeNetworkId: this.edgeNetwork.id,
                frontNetworkId: this.frontNetwork.id,
                config: { id: this.forwarderConfig.id, name: this.forwarderConfig.name, file: SWARM_FORWARDER_FILES.config, mode: 0o444 },
            }),
            // After the proxy: it forwards to proxy tasks, and a stack deployed
            // before it had the proxy on the node's ports, which its update frees.
            { parent: this, dependsOn: [this.service] },
        );
        this.registerOutputs({ serviceName: this.service.name, forwarderServiceName: this.forwarder.name });
    }
}
