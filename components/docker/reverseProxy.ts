// The edge: Nginx on the app network and on an edge network, publishing only
// HTTPS and HTTP on the configured host address. It lives across routine
// changes: its config, certificate, key and frontend arrive through a volume
// (never an image layer or an environment variable), and each change is
// installed and reloaded by two one-shot containers: the reload starts the
// site anew in a new slot behind the container's front, which holds the
// ports and never reloads (nginx/bin/mlapi-proxy), so no client's connection
// is closed under it. Only a new proxy image (or front config) replaces the
// Nginx container. Even then no port closes: the ports and networks belong
// to a small holder container whose network namespace the proxy joins, so
// the new front binds the same ports beside the old one (SO_REUSEPORT) and
// the old one drains and stops only after that.
// The engine restarts containers in no order and never retries one that
// failed to join the holder's namespace, so a keeper (mlapi.keeper, from the
// app image, with the engine's socket and no network) starts Nginx and the
// exporter again once the holder runs after an engine restart or a reboot,
// and reloads Nginx when the engine gives a replica a new address (the
// config names replicas, which Nginx resolves when it loads it).
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { DROPPED_CAPABILITIES, Hardening, LOG_OPTIONS, SECURITY_OPTIONS, hardenedContainerArgs } from "../hardening";
import {
    PROXY_DEPLOY_DIR,
    PROXY_EXPORTER_ADDRESS,
    PROXY_HTTP_PORT,
    PROXY_HTTPS_PORT,
    PROXY_INSTALL_DIR,
    PROXY_OPERATOR_PORT,
    PROXY_SLOT_DRAIN_SECONDS,
    PROXY_USER,
} from "../layout";
import { settingsDigest } from "../naming";
import { PROXY_HEALTHCHECK, proxyHardening } from "../proxySpec";

export interface ReverseProxyArgs {
    namePrefix: string;
    imageId: pulumi.Input<string>;
    /**
     * Image of the port holder, which only sleeps: the base image both
     * builds start from (local once they ran), so a new proxy image does not
     * replace it.
     */
    holderImage: string;
    /** The image the keeper runs from (the app image: it has Python and mlapi.keeper). */
    keeperImageId: pulumi.Input<string>;
    /** The engine's socket on its host, for the keeper. */
    engineSocket: string;
    /** What must exist before the holder can start (the image builds, which fetch the base image). */
    holderDependsOn: pulumi.Resource[];
    appNetworkName: pulumi.Input<string>;
    /** The rendered config, certificate, key and frontend (see NginxConfig). */
    uploads: docker.types.input.ContainerUpload[];
    /** Names this set of files (see deployFilesDigest). */
    filesDigest: pulumi.Input<string>;
    /** The front's config (one of the uploads), read only when the proxy starts: a new one replaces the proxy container. */
    frontConfig: string;
    bindAddress: string;
    httpsPort: number;
    httpPort: number;
    /** Host port of the operator listener, on 127.0.0.1 whatever bindAddress is; 0: not published. */
    operatorPort: number;
    memoryMb: number;
    /** Resources that must be in place before a new config is loaded (the replicas it forwards to). */
    upstreamResources: pulumi.Resource[];
}

/**
 * What a one-shot deploy step runs with: it starts, `pulumi up` waits for it
 * to exit and keeps its output, and it never restarts or runs again.
 */
function oneShot(user: string, memoryMb: number, addedCapabilities: string[] = []) {
    return {
        start: true,
        attach: true,
        logs: true,
        mustRun: false,
        restart: "no",
        networkMode: "none",
        user,
        // Docker reads capabilities back with their CAP_ prefix: given so, a refresh finds no drift.
        capabilities: { drops: DROPPED_CAPABILITIES, ...(addedCapabilities.length ? { adds: addedCapabilities } : {}) },
        securityOpts: SECURITY_OPTIONS,
        memory: memoryMb,
        memorySwap: memoryMb,
        logDriver: "json-file",
        logOpts: LOG_OPTIONS,
    } satisfies Partial<docker.ContainerArgs>;
}

/**
 * The install step: the uploads land in its own layer at the paths the proxy
 * reads them from; `nginx -t` checks them, and only then are they renamed into
 * the volume. It runs as root, the owner of the volume's files, with one
 * capability: CHOWN, because `nginx -t` run by root hands its temp
 * directories (in this container's own /tmp) to the worker user. It is on
 * the app network, where the engine's DNS resolves the replicas' names the
 * config lists, as `nginx -t` must.
 */
export function installStepArgs<T>(args: { name: string; imageId: T; volume: T; digest: T; appNetwork: T; memoryMb: number }) {
    return {
        name: args.name,
        image: args.imageId,
        command: ["mlapi-install-files", args.digest],
        mounts: [{ type: "volume", source: args.volume, target: PROXY_INSTALL_DIR }],
        labels: [{ label: "mlapi.role", value: "proxy-install" }],
        ...oneShot("0:0", args.memoryMb, ["CAP_CHOWN"]),
        networkMode: args.appNetwork,
    };
}

/** The reload step: in the proxy's PID namespace (`proxy`: "container:<id>"), as Nginx's user, it signals the supervisor and waits for its new slot. */
export function reloadStepArgs<T>(args: { name: string; imageId: T; proxy: T; digest: T }) {
    return {
        name: args.name,
        image: args.imageId,
        command: ["mlapi-reload", args.digest],
        pidMode: args.proxy,
        readOnly: true,
        labels: [{ label: "mlapi.role", value: "proxy-reload" }],
        ...oneShot(PROXY_USER, 32),
    };
}

/** The port holder: nobody, sleeping, with nothing but the hardening; Docker kills it on removal (no grace). */
export function portHolderHardening(): Hardening {
    return { user: "65534:65534", memoryMb: 16, maxProcesses: 16, tmpfs: { "/tmp": "rw,noexec,nosuid,size=1m" } };
}

/**
 * The keeper: root in the container, because the engine's socket is root's;
 * with no capability, no network and a read-only root, the socket is all
 * it can reach.
 */
export function keeperHardening(): Hardening {
    return { user: "0:0", memoryMb: 48, maxProcesses: 16, tmpfs: { "/tmp": "rw,noexec,nosuid,size=1m" } };
}

/** Where the keeper finds the engine's socket, inside its container. */
export const KEEPER_SOCKET = "/run/docker.sock";

/** The keeper's arguments: docker.Container inputs, pure for tests. */
export function keeperArgs<T>(args: { name: string; imageId: T; holderName: string; engineSocket: string }) {
    return {
        name: args.name,
        image: args.imageId,
        command: ["python3", "-m", "mlapi.keeper", args.holderName, KEEPER_SOCKET],
        networkMode: "none",
        mounts: [{ type: "bind", source: args.engineSocket, target: KEEPER_SOCKET }],
        // The app image's healthcheck asks the API, which the keeper does not
        // serve. Docker fills a zero timing from the image's HEALTHCHECK and
        // reads it back so: every one is given, or each refresh finds drift.
        healthcheck: { tests: ["NONE"], interval: "30s", timeout: "5s", startPeriod: "5s", retries: 1 },
        labels: [{ label: "mlapi.role", value: "proxy-keeper" }],
        ...hardenedContainerArgs(keeperHardening()),
    };
}

/** The Nginx exporter: the port holder's hardening, with room for a Go program. */
export function exporterHardening(): Hardening {
    return { ...portHolderHardening(), memoryMb: 32, maxProcesses: 32 };
}

/**
 * Debian's prometheus-nginx-exporter (in the proxy image): it reads
 * stub_status from the operator listener and serves Prometheus text on the
 * namespace's loopback, which only the operator listener reaches.
 */
export function exporterCommand(): string[] {
    return [
        "prometheus-nginx-exporter",
        `--nginx.scrape-uri=http://127.0.0.1:${PROXY_OPERATOR_PORT}/nginx/status`,
        `--web.listen-address=${PROXY_EXPORTER_ADDRESS}`,
        "--nginx.timeout=2s",
    ];
}

/** The Nginx container's name: a digest of its settings, so a new one can start beside the old one. */
export function proxyName(namePrefix: string, spec: unknown): string {
    return `${namePrefix}-proxy-${settingsDigest(spec)}`;
}

/** The exit code and output of a one-shot step, as a failure of `pulumi up` with the step's own message when it failed. */
function succeeded(step: docker.Container, what: string, value: pulumi.Input<string>): pulumi.Output<string> {
    return pulumi.all([step.exitCode, step.containerLogs, value]).apply(([code, logs, v]) => {
        if (code !== 0) throw new pulumi.RunError(`${what} failed (exit code ${code}):\n${(logs ?? "").trim()}`);
        return v;
    });
}

export class ReverseProxy extends pulumi.ComponentResource {
    readonly container: docker.Container;
    readonly portHolder: docker.Container;
    readonly exporter: docker.Container;
    readonly keeper: docker.Container;
    readonly edgeNetwork: docker.Network;
    /** The digest of the files the running Nginx has loaded. */
    readonly loadedDigest: pulumi.Output<string>;

    constructor(name: string, args: ReverseProxyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("mlapi:proxy:ReverseProxy", name, {}, opts);
        const parent = { parent: this };
        this.edgeNetwork = new docker.Network(`${name}-edge`, { name: `${args.namePrefix}-edge` }, parent);
        const deployVolume = new docker.Volume(`${name}-deploy`, { name: `${args.namePrefix}-proxy-deploy` }, parent);

        // A change of files replaces this step (uploads force a new
        // container), which checks and installs them; a config Nginx refuses
        // stops `pulumi up` here, with the running proxy untouched.
        const install = new docker.Container(
            `${name}-install`,
            {
                ...installStepArgs<pulumi.Input<string>>({ name: `${args.namePrefix}-proxy-install`, imageId: args.imageId, volume: deployVolume.name, digest: args.filesDigest, appNetwork: args.appNetworkName, memoryMb: 64 }),
                uploads: args.uploads,
            },
            { parent: this, deleteBeforeReplace: true, dependsOn: args.upstreamResources },
        );
        const installed = succeeded(install, "Installing the proxy's new files", args.filesDigest);

        // Holds the ports and networks; changes only with them (a port, the bind address).
        const holderName = `${args.namePrefix}-proxy-ports`;
        this.portHolder = new docker.Container(
            `${name}-ports`,
            {
                name: holderName,
                hostname: `${args.namePrefix}-proxy`,
                image: args.holderImage,
                command: ["sleep", "infinity"],
                networksAdvanced: [{ name: this.edgeNetwork.name }, { name: args.appNetworkName }],
                ports: [
                    { internal: PROXY_HTTPS_PORT, external: args.httpsPort, ip: args.bindAddress, protocol: "tcp" },
                    { internal: PROXY_HTTP_PORT, external: args.httpPort, ip: args.bindAddress, protocol: "tcp" },
                    // The operator listener: for this machine only.
                    ...(args.operatorPort ? [{ internal: PROXY_OPERATOR_PORT, external: args.operatorPort, ip: "127.0.0.1", protocol: "tcp" }] : []),
                ],
                labels: [{ label: "mlapi.role", value: "proxy-ports" }],
                ...hardenedContainerArgs(portHolderHardening()),
            },
            // Host ports cannot be published twice: the old holder goes first.
            { parent: this, deleteBeforeReplace: true, dependsOn: args.holderDependsOn },
        );

        const spec = {
            image: args.imageId,
            networkMode: pulumi.interpolate`container:${this.portHolder.id}`,
            mounts: [{ type: "volume", source: deployVolume.name, target: PROXY_DEPLOY_DIR, readOnly: true }],
            healthcheck: PROXY_HEALTHCHECK,
            wait: true,
            waitTimeout: 60,
            // The supervisor drains the slots (PROXY_SLOT_DRAIN_SECONDS), then Nginx finishes requests in flight.
            destroyGraceSeconds: PROXY_SLOT_DRAIN_SECONDS + 10,
            stopSignal: "SIGQUIT",
            labels: [
                { label: "mlapi.role", value: "proxy" },
                { label: "mlapi.front", value: settingsDigest(args.frontConfig) },
            ],
            ...hardenedContainerArgs(proxyHardening(args.memoryMb)),
        };
        this.container = new docker.Container(
            `${name}-nginx`,
            { name: pulumi.output(spec).apply((resolved) => proxyName(args.namePrefix, resolved)), ...spec },
            {
                parent: this,
                // Only a new proxy image changes its inputs, and with them its
                // name: the new Nginx starts (and is healthy) beside the old
                // one, and the old one drains at the end of `pulumi up`.
                deleteBeforeReplace: false,
                // Its first start needs the first files.
                dependsOn: [install],
            },
        );

        // Runs again whenever the files or the proxy change.
        const reload = new docker.Container(
            `${name}-reload`,
            reloadStepArgs<pulumi.Input<string>>({
                name: `${args.namePrefix}-proxy-reload`,
                imageId: args.imageId,
                proxy: pulumi.interpolate`container:${this.container.id}`,
                digest: installed,
            }),
            { parent: this, deleteBeforeReplace: true, dependsOn: [install, this.container] },
        );
        this.loadedDigest = succeeded(reload, "Reloading Nginx with its new files", installed);

        // Nginx's figures for Prometheus, at /nginx/metrics of the operator
        // listener. Its address is fixed, so a new one (a new proxy image)
        // replaces it delete-then-create: a scrape or two may miss, no client.
        this.exporter = new docker.Container(
            `${name}-exporter`,
            {
                name: `${args.namePrefix}-proxy-exporter`,
                image: args.imageId,
                command: exporterCommand(),
                networkMode: pulumi.interpolate`container:${this.portHolder.id}`,
                labels: [{ label: "mlapi.role", value: "proxy-exporter" }],
                ...hardenedContainerArgs(exporterHardening()),
            },
            { parent: this, deleteBeforeReplace: true },
        );
        // Nothing waits for it: it only acts after an engine restart.
        this.keeper = new docker.Container(
            `${name}-keeper`,
            keeperArgs<pulumi.Input<string>>({ name: `${args.namePrefix}-proxy-keeper`, imageId: args.keeperImageId, holderName: holderName, engineSocket: args.engineSocket }),
            { parent: this, deleteBeforeReplace: true, dependsOn: [this.portHolder] },
        );
        this.registerOutputs({ containerName: this.container.name, portHolderName: this.portHolder.name, loadedDigest: this.loadedDigest });
    }
}
