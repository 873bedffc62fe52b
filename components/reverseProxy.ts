// The edge: one Nginx container on the app network and on an edge network,
// publishing only HTTPS and HTTP on the configured host address. Its config,
// certificate and key arrive at deploy time through a volume, never through
// an image layer or an environment variable.
import * as crypto from "crypto";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { Hardening, hardenedContainerArgs } from "./hardening";
import { PROXY_DEPLOY_DIR, PROXY_HTTP_PORT, PROXY_HTTPS_PORT, PROXY_KEY_GROUP, PROXY_USER } from "./layout";

export interface ReverseProxyArgs {
    namePrefix: string;
    imageId: pulumi.Input<string>;
    appNetworkName: pulumi.Input<string>;
    /** The rendered config, certificate and key (see NginxConfig). */
    uploads: docker.types.input.ContainerUpload[];
    /** Changes whenever the files change, so Nginx restarts on them (never derived from the key alone). */
    filesDigest: pulumi.Input<string>;
    bindAddress: string;
    httpsPort: number;
    httpPort: number;
    memoryMb: number;
    /** Resources the proxy must start after (the replicas it forwards to). */
    upstreamResources: pulumi.Resource[];
}

export function proxyHardening(memoryMb: number): Hardening {
    return { user: PROXY_USER, groups: [PROXY_KEY_GROUP], memoryMb, maxProcesses: 256, tmpfs: { "/tmp": "rw,noexec,nosuid,size=64m" } };
}

/** Healthy when Nginx answers HTTP on its own port (bash's /dev/tcp: the image has no curl). */
export const PROXY_HEALTHCHECK = {
    tests: [
        "CMD",
        "bash",
        "-c",
        `exec 3<>/dev/tcp/127.0.0.1/${PROXY_HTTP_PORT} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && read -r status <&3 && [[ $status == HTTP/1.1\\ * ]]`,
    ],
    // Docker runs the first probe one interval after start: keep it short,
    // since `pulumi up` waits for health.
    interval: "5s",
    timeout: "3s",
    startPeriod: "5s",
    retries: 3,
};

/** A digest of the non-secret files, for the label that restarts Nginx when they change. */
export function deployFilesDigest(configText: string, certPem: string): string {
    return crypto.createHash("sha256").update(configText).update("\0").update(certPem).digest("hex");
}

export class ReverseProxy extends pulumi.ComponentResource {
    readonly container: docker.Container;
    readonly edgeNetwork: docker.Network;

    constructor(name: string, args: ReverseProxyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mlapi:proxy:ReverseProxy", name, {}, opts);
        const parent = { parent: this };
        this.edgeNetwork = new docker.Network(`${name}-edge`, { name: `${args.namePrefix}-edge` }, parent);
        const deployVolume = new docker.Volume(`${name}-deploy`, { name: `${args.namePrefix}-proxy-deploy` }, parent);

        // Receives the uploads into the volume and never runs: no process,
        // no network. Replacing it rewrites the files.
        const filesLoader = new docker.Container(
            `${name}-files`,
            {
                name: `${args.namePrefix}-proxy-files`,
                image: args.imageId,
                start: false,
                mustRun: false,
                networkMode: "none",
                mounts: [{ type: "volume", source: deployVolume.name, target: PROXY_DEPLOY_DIR }],
                uploads: args.uploads,
                labels: [{ label: "mlapi.role", value: "proxy-files" }],
            },
            { parent: this, deleteBeforeReplace: true },
        );

        this.container = new docker.Container(
            `${name}-nginx`,
            {
                name: `${args.namePrefix}-proxy`,
                hostname: `${args.namePrefix}-proxy`,
                image: args.imageId,
                networksAdvanced: [{ name: this.edgeNetwork.name }, { name: args.appNetworkName }],
                ports: [
                    { internal: PROXY_HTTPS_PORT, external: args.httpsPort, ip: args.bindAddress, protocol: "tcp" },
                    { internal: PROXY_HTTP_PORT, external: args.httpPort, ip: args.bindAddress, protocol: "tcp" },
                ],
                mounts: [{ type: "volume", source: deployVolume.name, target: PROXY_DEPLOY_DIR, readOnly: true }],
                healthcheck: PROXY_HEALTHCHECK,
                wait: true,
                waitTimeout: 60,
                destroyGraceSeconds: 10,
                // Nginx finishes in-flight requests on SIGQUIT.
                stopSignal: "SIGQUIT",
                labels: [
                    { label: "mlapi.role", value: "proxy" },
                    { label: "mlapi.deploy-files-sha256", value: args.filesDigest },
                ],
                ...hardenedContainerArgs(proxyHardening(args.memoryMb)),
            },
            {
                parent: this,
                // The name and host ports are fixed: the old container must go
                // before the new one can bind them (pulumi-docker #1356).
                deleteBeforeReplace: true,
                dependsOn: [filesLoader, ...args.upstreamResources],
            },
        );
        this.registerOutputs({ containerName: this.container.name });
    }
}
