// The edge of swarm mode: Nginx as a replicated service on the edge nodes
// (the proxyConstraint), one task per node, each publishing HTTPS and HTTP
// on its node in host mode: clients' own addresses reach Nginx (its per-client
// rate limit and logs depend on them) and no routing mesh is needed. Its
// config, certificate and frontend are Swarm configs and its key a Swarm
// secret, all immutable: each is named by its content, so a change creates
// new ones, rolls the proxy onto them, and the old ones are removed once the
// service no longer uses them (at the end of `pulumi up`).
import * as crypto from "crypto";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { APP_PORT, PROXY_DEPLOY_DIR, PROXY_FILES, PROXY_HTTP_PORT, PROXY_HTTPS_PORT, PROXY_RUNTIME_DIR } from "../layout";
import { ProxyUpload, SWARM_UPSTREAMS_FILE } from "../proxyConfig";
import { PROXY_HEALTHCHECK, proxyHardening } from "../proxySpec";
import { rollingUpdates, swarmTaskHardening } from "./hardening";

export interface SwarmProxyServiceArgs {
    namePrefix: string;
    /** The pushed proxy image, by digest. */
    image: pulumi.Input<string>;
    /** The app service, whose tasks the proxy finds at tasks.<name>. */
    appServiceName: pulumi.Input<string>;
    appNetworkId: pulumi.Input<string>;
    /** The rendered config, certificate, key and frontend (NginxConfig's uploads). */
    files: ProxyUpload<pulumi.Input<string>>[];
    httpsPort: number;
    httpPort: number;
    /** Proxy tasks, at most one per node. */
    replicas: number;
    /** Placement constraint of the proxy tasks: the edge nodes. */
    constraint: string;
    memoryMb: number;
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
    const kind = file === PROXY_FILES.config ? "conf" : file === PROXY_FILES.certificate ? "cert" : file === PROXY_FILES.certificateKey ? "key" : "html";
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

/** The docker.Service arguments of the proxy. Pure, for the unit tests and the swarm suite's replay. */
export function proxyServiceArgs<T>(args: Omit<SwarmProxyServiceArgs, "image" | "appServiceName" | "appNetworkId" | "files"> & {
    image: T;
    appServiceName: T;
    appNetworkId: T;
    edgeNetworkId: T;
    configs: MountedFile<T>[];
    secrets: MountedFile<T>[];
}) {
    const hardening = swarmTaskHardening(proxyHardening(args.memoryMb));
    const mounted = (f: MountedFile<T>) => ({ fileName: f.file, fileUid: "0", fileGid: "0", fileMode: f.mode });
    return {
        name: proxyServiceName(args.namePrefix),
        labels: [{ label: "mlapi.role", value: "proxy" }],
        mode: { replicated: { replicas: args.replicas } },
        taskSpec: {
            containerSpec: {
                image: args.image,
                commands: ["mlapi-swarm-proxy", args.appServiceName, String(APP_PORT), SWARM_UPSTREAMS_FILE, PROXY_FILES.config],
                env: { MLAPI_DISCOVERY_INTERVAL: DISCOVERY_INTERVAL_SECONDS },
                configs: args.configs.map((c) => ({ configId: c.id, configName: c.name, ...mounted(c) })),
                secrets: args.secrets.map((s) => ({ secretId: s.id, secretName: s.name, ...mounted(s) })),
                // Nginx runs under the discovery loop here: its master is in the pid file, not PID 1.
                healthcheck: { ...PROXY_HEALTHCHECK, tests: [...PROXY_HEALTHCHECK.tests, `${PROXY_RUNTIME_DIR}/nginx.pid`] },
                // Nginx finishes in-flight requests on SIGQUIT.
                stopSignal: "SIGQUIT",
                stopGracePeriod: "10s",
                ...hardening.containerSpec,
            },
            ...hardening.taskSpec,
            // A host-mode port can be held by one task per node. The platform
            // is given as Swarm reads it from the image, so a refresh finds no change.
            placement: { constraints: [args.constraint], maxReplicas: 1, platforms: [placementPlatform(args.imagePlatform)] },
            // The app network is internal; a host-mode port is forwarded over
            // the node's docker_gwbridge, which only a task on a network with
            // outside access (the edge network) is attached to.
            networksAdvanceds: [{ id: args.appNetworkId }, { id: args.edgeNetworkId }],
        },
        endpointSpec: {
            mode: "dnsrr",
            ports: [
                { targetPort: PROXY_HTTPS_PORT, publishedPort: args.httpsPort, publishMode: "host", protocol: "tcp" },
                { targetPort: PROXY_HTTP_PORT, publishedPort: args.httpPort, publishMode: "host", protocol: "tcp" },
            ],
        },
        // The node's ports are the old task's until it stops, so a new task
        // can only start after it (stop-first), one node at a time.
        ...rollingUpdates("stop-first", "15s"),
    };
}

export class SwarmProxyService extends pulumi.ComponentResource {
    readonly edgeNetwork: docker.Network;
    readonly configs: docker.ServiceConfig[];
    readonly keySecret: docker.Secret;
    readonly service: docker.Service;

    constructor(name: string, args: SwarmProxyServiceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mlapi:swarm:ProxyService", name, {}, opts);
        // The proxy's alone: no other service joins it.
        this.edgeNetwork = new docker.Network(`${name}-edge`, { name: `${args.namePrefix}-edge`, driver: "overlay" }, { parent: this });
        const mountedFiles = args.files.map((upload) => {
            const content = pulumi.output(upload.content);
            // The name is a digest: it reveals nothing of the key, so it need not be secret.
            const objectName = pulumi.unsecret(content.apply((text) => contentName(args.namePrefix, upload.file, text)));
            const data = content.apply((text) => Buffer.from(text, "utf8").toString("base64"));
            const resourceName = `${name}-${upload.file.slice(PROXY_DEPLOY_DIR.length + 1).replace(/\//g, "-")}`;
            const resource =
                upload.file === PROXY_FILES.certificateKey
                    ? new docker.Secret(resourceName, { name: objectName, data: pulumi.secret(data) }, { parent: this })
                    : new docker.ServiceConfig(resourceName, { name: objectName, data }, { parent: this });
            return { resource, file: upload.file, mode: fileMode(upload.permissions) };
        });
        this.configs = mountedFiles.map((f) => f.resource).filter((r): r is docker.ServiceConfig => r instanceof docker.ServiceConfig);
        this.keySecret = mountedFiles.map((f) => f.resource).find((r): r is docker.Secret => r instanceof docker.Secret)!;
        const reference = (f: (typeof mountedFiles)[number]): MountedFile<pulumi.Input<string>> => ({ id: f.resource.id, name: f.resource.name, file: f.file, mode: f.mode });
        this.service = new docker.Service(
            name,
            proxyServiceArgs<pulumi.Input<string>>({
                ...args,
                edgeNetworkId: this.edgeNetwork.id,
                configs: mountedFiles.filter((f) => f.resource instanceof docker.ServiceConfig).map(reference),
                secrets: mountedFiles.filter((f) => f.resource instanceof docker.Secret).map(reference),
            }),
            { parent: this },
        );
        this.registerOutputs({ serviceName: this.service.name });
    }
}
