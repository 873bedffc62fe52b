// The Nginx config component: takes the certificate outputs and the replica
// list and renders what the proxy container receives at deploy time: the
// config, the certificate and key, and the static frontend.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { ReplicaEndpoint } from "./appSpec";
import { renderForwarderConfig } from "./forwarderConfig";
import { NginxLimits, IMAGE_NGINX_VERSION, renderNginxConfig } from "./nginxConfig";
import {
    APP_METRICS_PORT,
    APP_PORT,
    FRONTEND_DIR,
    PROXY_DEPLOY_DIR,
    PROXY_EXPORTER_ADDRESS,
    PROXY_FILES,
    PROXY_HTTP_PORT,
    PROXY_HTTPS_PORT,
    PROXY_KEY_MODE,
    PROXY_OPERATOR_PORT,
    PROXY_ACTIVE_SLOT,
    PROXY_FRONT_DIR,
    PROXY_RUNTIME_DIR,
    PROXY_SLOT_KEEPALIVE_SECONDS,
    PROXY_SLOT_SOCKETS,
    PROXY_STATIC_ROOT,
} from "./layout";

export interface NginxConfigArgs {
    certPem: pulumi.Input<string>;
    privateKeyPem: pulumi.Input<string>;
    /**
     * Each app replica's name and address on the app network (the Docker
     * platform), or "discovered": the proxy finds the tasks itself (swarm).
     */
    replicas: pulumi.Input<ReplicaEndpoint[]> | "discovered";
    /** The app network's subnet, refused by the operator listener. */
    appSubnet: string;
    /** Swarm: the subnet of the network the port forwarders reach the proxy on; the proxy's front believes their PROXY protocol headers from it only. */
    frontSubnet?: string;
    serverNames: string[];
    /** Host port users reach HTTPS on (for redirects). */
    publicHttpsPort: number;
    limits: NginxLimits;
    /** The static frontend's files (see frontendFiles). */
    frontend: FrontendFile[];
}

/** One file of the static frontend: its path under the site root, and its text. */
export interface FrontendFile {
    path: string;
    content: string;
}

/** The frontend's files under `dir` (text: HTML, CSS, JS, SVG), in a stable order. */
export function frontendFiles(dir: string = FRONTEND_DIR): FrontendFile[] {
    return (fs.readdirSync(dir, { recursive: true, encoding: "utf8" }) as string[])
        .filter((rel) => fs.statSync(path.join(dir, rel)).isFile())
        .sort()
        .map((rel) => ({ path: rel.split(path.sep).join("/"), content: fs.readFileSync(path.join(dir, rel), "utf8") }));
}

/**
 * Names one set of the proxy's files: changes whenever the config, the
 * certificate or the frontend changes (never derived from the key alone; a
 * new key always comes with a new certificate).
 */
export function deployFilesDigest(configText: string, frontText: string, certPem: string, frontend: FrontendFile[]): string {
    const hash = crypto.createHash("sha256").update(configText).update("\0").update(frontText).update("\0").update(certPem);
    for (const file of frontend) hash.update("\0").update(file.path).update("\0").update(file.content);
    return hash.digest("hex");
}

/**
 * How a site runs as a slot behind the front (see PROXY_SLOTS_DIR): on the
 * slot's sockets, closing kept-alive connections after a response once they
 * are PROXY_SLOT_KEEPALIVE_SECONDS old, believing the PROXY protocol headers
 * of the front's connections only. Its paths are relative to the slot's
 * directory (runtimeDir "."). The tests that run slots take it from here.
 */
export const SLOT_SITE = {
    listenSockets: PROXY_SLOT_SOCKETS,
    keepaliveTimeSeconds: PROXY_SLOT_KEEPALIVE_SECONDS,
    proxyProtocol: { trustedNetworks: ["unix:"] },
};

/** What the proxy image's site Nginx listens on and reads, whatever feeds it its replicas: a slot. */
function imageNginxInput(args: { serverNames: string[]; publicHttpsPort: number; limits: NginxLimits }) {
    return {
        serverNames: args.serverNames,
        listenHttpsPort: PROXY_HTTPS_PORT,
        listenHttpPort: PROXY_HTTP_PORT,
        ...SLOT_SITE,
        publicHttpsPort: args.publicHttpsPort,
        nginxVersion: IMAGE_NGINX_VERSION,
        limits: args.limits,
        paths: {
            certificate: PROXY_FILES.certificate,
            certificateKey: PROXY_FILES.certificateKey,
            staticRoot: PROXY_STATIC_ROOT,
            runtimeDir: ".",
            mimeTypes: "/etc/nginx/mime.types",
            accessLog: "/dev/stdout",
            errorLog: "stderr",
        },
    };
}

/** The proxy's rendered config for the container, with container paths. */
export function containerNginxConfig(args: { serverNames: string[]; replicas: ReplicaEndpoint[]; appSubnet: string; publicHttpsPort: number; limits: NginxLimits }): string {
    return renderNginxConfig({
        ...imageNginxInput(args),
        upstreams: args.replicas.map((r) => `${r.name}:${APP_PORT}`),
        operator: {
            port: PROXY_OPERATOR_PORT,
            deniedNetworks: [args.appSubnet],
            nginxExporter: PROXY_EXPORTER_ADDRESS,
            replicas: args.replicas.map((r) => ({ name: r.name, api: `${r.name}:${APP_PORT}`, metrics: `${r.name}:${APP_METRICS_PORT}` })),
        },
    });
}

/** Where swarm mode's discovery loop (nginx/bin/mlapi-swarm-proxy) writes the app tasks' server lines: the task's tmpfs. */
export const SWARM_UPSTREAMS_FILE = `${PROXY_RUNTIME_DIR}/upstreams.conf`;

/**
 * The proxy's config in swarm mode: the replicas are the app service's
 * running tasks, which the discovery loop lists in SWARM_UPSTREAMS_FILE.
 * No operator listener: Swarm publishes a port on every address of a node,
 * never on its loopback only.
 */
export function swarmNginxConfig(args: { serverNames: string[]; publicHttpsPort: number; limits: NginxLimits }): string {
    return renderNginxConfig({
        ...imageNginxInput(args),
        upstreams: [],
        discoveredUpstreams: { file: SWARM_UPSTREAMS_FILE },
    });
}

/**
 * The front of the proxy container (see PROXY_SLOTS_DIR): each port to the
 * active slot's socket, with a PROXY protocol header naming the client. On
 * the Docker platform it holds the HTTPS, HTTP and operator ports, and a new
 * proxy container's front binds them beside the old one's (SO_REUSEPORT).
 * In swarm mode it holds the proxy task's HTTPS and HTTP ports and takes the
 * port forwarders' headers, believed from their network (frontSubnet) only.
 */
export function proxyFrontConfig(args: { workers: number; frontSubnet?: string }): string {
    const ports = [
        { name: "https", listenPort: PROXY_HTTPS_PORT, socket: `${PROXY_ACTIVE_SLOT}/${PROXY_SLOT_SOCKETS.https}` },
        { name: "http", listenPort: PROXY_HTTP_PORT, socket: `${PROXY_ACTIVE_SLOT}/${PROXY_SLOT_SOCKETS.http}` },
        ...(args.frontSubnet ? [] : [{ name: "operator", listenPort: PROXY_OPERATOR_PORT, socket: `${PROXY_ACTIVE_SLOT}/${PROXY_SLOT_SOCKETS.operator}` }]),
    ];
    return renderForwarderConfig({
        ports,
        workers: args.workers,
        streamModule: STREAM_MODULE,
        runtimeDir: PROXY_FRONT_DIR,
        errorLog: "stderr",
        reuseport: !args.frontSubnet,
        ...(args.frontSubnet ? { acceptProxyProtocolFrom: [args.frontSubnet] } : {}),
    });
}

/**
 * Swarm mode's port forwarder (components/swarm/proxyService.ts): its config,
 * a Swarm config of its own, and the files its discovery loop writes (the
 * proxy tasks at each port) on its tmpfs.
 */
export const SWARM_FORWARDER_FILES = {
    config: `${PROXY_DEPLOY_DIR}/forwarder.conf`,
    httpsUpstreams: `${PROXY_RUNTIME_DIR}/proxy-https.conf`,
    httpUpstreams: `${PROXY_RUNTIME_DIR}/proxy-http.conf`,
};

/** Where Debian's libnginx-mod-stream puts the stream module. */
export const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

/** The forwarder's config: the node's HTTPS and HTTP ports, each to the same port of the proxy tasks. */
export function swarmForwarderConfig(workers: number): string {
    return renderForwarderConfig({
        ports: [
            { name: "https", listenPort: PROXY_HTTPS_PORT, upstreamFile: SWARM_FORWARDER_FILES.httpsUpstreams },
            { name: "http", listenPort: PROXY_HTTP_PORT, upstreamFile: SWARM_FORWARDER_FILES.httpUpstreams },
        ],
        workers,
        streamModule: STREAM_MODULE,
        runtimeDir: PROXY_RUNTIME_DIR,
        errorLog: "stderr",
        reuseport: false,
    });
}

/** A file the proxy receives, in the shape of docker.Container's uploads. */
export interface ProxyUpload<T> {
    file: string;
    content: T;
    permissions: string;
}

/**
 * The proxy's files: config, certificate, key and frontend, all owned by root
 * (the provider sets no owner; see PROXY_KEY_GROUP). Pure, so the image tests
 * copy exactly these into their install container.
 */
export function proxyUploads<T>(files: { config: T; front: T; certPem: T; privateKeyPem: T; frontend: FrontendFile[] }): ProxyUpload<T | string>[] {
    return [
        { file: PROXY_FILES.config, content: files.config, permissions: "0644" },
        { file: PROXY_FILES.front, content: files.front, permissions: "0644" },
        { file: PROXY_FILES.certificate, content: files.certPem, permissions: "0644" },
        { file: PROXY_FILES.certificateKey, content: files.privateKeyPem, permissions: PROXY_KEY_MODE },
        ...files.frontend.map((f) => ({ file: `${PROXY_STATIC_ROOT}/${f.path}`, content: f.content, permissions: "0644" })),
    ];
}

export class NginxConfig extends pulumi.ComponentResource {
    /** The rendered nginx.conf. */
    readonly configText: pulumi.Output<string>;
    /** The rendered front.conf: the proxy container's front reads it when it starts, so a new one needs a new container. */
    readonly frontText: string;
    /** Files for the proxy (see proxyUploads); the key's content is a secret. */
    readonly uploads: ProxyUpload<pulumi.Input<string>>[];
    /** Changes when the config, the certificate or the frontend changes. */
    readonly filesDigest: pulumi.Output<string>;

    constructor(name: string, args: NginxConfigArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mlapi:proxy:NginxConfig", name, {}, opts);
        const replicas = args.replicas;
        if (replicas === "discovered" && !args.frontSubnet) throw new Error("the swarm's Nginx config needs the forwarders' subnet (frontSubnet)");
        this.configText =
            replicas === "discovered"
                ? pulumi.output(swarmNginxConfig({ serverNames: args.serverNames, publicHttpsPort: args.publicHttpsPort, limits: args.limits }))
                : pulumi.output(replicas).apply((endpoints) =>
                      containerNginxConfig({ serverNames: args.serverNames, replicas: endpoints, appSubnet: args.appSubnet, publicHttpsPort: args.publicHttpsPort, limits: args.limits }),
                  );
        this.frontText = proxyFrontConfig({ workers: args.limits.proxyWorkers, frontSubnet: replicas === "discovered" ? args.frontSubnet : undefined });
        // Only the key's content is secret, so diffs of the config stay readable.
        this.uploads = proxyUploads<pulumi.Input<string>>({
            config: this.configText,
            front: this.frontText,
            certPem: args.certPem,
            privateKeyPem: pulumi.secret(args.privateKeyPem),
            frontend: args.frontend,
        });
        this.filesDigest = pulumi.all([this.configText, args.certPem]).apply(([config, cert]) => deployFilesDigest(config, this.frontText, cert, args.frontend));
        this.registerOutputs({ configText: this.configText, filesDigest: this.filesDigest });
    }
}
