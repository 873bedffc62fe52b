// Renders the config of a TCP forwarder, as a pure function of its inputs
// (the unit tests run `nginx -t` on it, and run it). Nginx's stream module
// passes whole TCP connections on, and TLS ends behind it; it never changes
// with the site, so it holds the ports through every change. Two of them:
// - swarm mode's port forwarder holds an edge node's ports and passes each
//   connection to a proxy task, opened with a PROXY protocol header naming
//   the client; a new certificate or proxy config rolls only the proxy
//   tasks behind it (start-first);
// - the front of every proxy container (see PROXY_SLOTS_DIR) passes each
//   connection to the active slot's socket, so a change starts a new slot
//   and leaves the old one its connections.
import { block } from "./nginxConfig";

export interface ForwardedPort {
    /** Names the upstream: letters, digits and underscores. */
    name: string;
    /** The port the forwarder listens on, inside its container. */
    listenPort: number;
    /** The file of `server` lines (the proxy tasks at this port) the discovery loop keeps current. */
    upstreamFile?: string;
    /** Or a Unix socket to pass every connection to (the active slot's). */
    socket?: string;
}

export interface ForwarderConfigInput {
    ports: ForwardedPort[];
    /** Nginx worker processes; 0: one per CPU. */
    workers: number;
    /** Debian's dynamic stream module (package libnginx-mod-stream). */
    streamModule: string;
    /** Writable directory for the pid file. */
    runtimeDir: string;
    errorLog: string;
    /** Whether a second forwarder may bind the same ports (SO_REUSEPORT): a new proxy container's front, beside the old one's. */
    reuseport: boolean;
    /**
     * Connections arrive with a PROXY protocol header (a front behind swarm
     * mode's forwarder): the client's address in it is believed from these
     * networks (CIDR) only, and passed on in the front's own header.
     */
    acceptProxyProtocolFrom?: string[];
}

/** Forwarder timeouts: an upstream that does not accept in time is skipped for the next. */
export const FORWARDER_TIMEOUTS = {
    connectSeconds: 2,
    /** Tries of other proxy tasks, within this many seconds, before the client's connection is closed. */
    totalRetrySeconds: 10,
    /**
     * Idle time of a forwarded connection (the proxy closes idle keep-alive
     * connections sooner); also how long a replaced worker keeps its busy
     * connections after a reload before it closes them.
     */
    idleSeconds: 600,
};

const UPSTREAM_NAME = /^[A-Za-z0-9_]+$/;

export function renderForwarderConfig(input: ForwarderConfigInput): string {
    if (input.ports.length === 0) throw new Error("the forwarder config needs at least one port");
    for (const port of input.ports) {
        if (!UPSTREAM_NAME.test(port.name)) throw new Error(`the forwarder cannot name an upstream ${JSON.stringify(port.name)}`);
        if (!port.upstreamFile === !port.socket) throw new Error(`the forwarder's port ${port.name} needs an upstream file or a socket, not both`);
    }
    const accepted = input.acceptProxyProtocolFrom;
    if (accepted && accepted.length === 0) throw new Error("a forwarder taking PROXY protocol headers needs the networks it believes them from");
    const listen = (port: ForwardedPort) => `listen ${port.listenPort}${accepted ? " proxy_protocol" : ""}${input.reuseport ? " reuseport" : ""};`;
    const servers = input.ports.flatMap((port) =>
        port.socket
            ? block("server", [listen(port), `proxy_pass unix:${port.socket};`])
            : [...block(`upstream mlapi_${port.name}`, ["least_conn;", `include ${port.upstreamFile};`]), ...block("server", [listen(port), `proxy_pass mlapi_${port.name};`])],
    );
    const lines = [
        "# Rendered by components/forwarderConfig.ts - do not edit by hand.",
        `load_module ${input.streamModule};`,
        `worker_processes ${input.workers || "auto"};`,
        "worker_rlimit_nofile 8192;",
        // A reload (the proxy tasks changed) leaves each busy connection with
        // the worker that has it; this bounds how long such workers stay.
        `worker_shutdown_timeout ${FORWARDER_TIMEOUTS.idleSeconds}s;`,
        `pid ${input.runtimeDir}/nginx.pid;`,
        `error_log ${input.errorLog} warn;`,
        "",
        ...block("events", ["worker_connections 4096;"]),
        "",
        ...block("stream", [
            // Each connection passed on opens with a PROXY protocol header
            // naming the client: what is behind reads the client's address from it.
            "proxy_protocol on;",
            `proxy_connect_timeout ${FORWARDER_TIMEOUTS.connectSeconds}s;`,
            `proxy_timeout ${FORWARDER_TIMEOUTS.idleSeconds}s;`,
            // A proxy task that stopped (a roll) or is not up yet refuses: the next one takes the client.
            "proxy_next_upstream on;",
            `proxy_next_upstream_timeout ${FORWARDER_TIMEOUTS.totalRetrySeconds}s;`,
            "tcp_nodelay on;",
            ...(accepted ? accepted.map((network) => `set_real_ip_from ${network};`) : []),
            "",
            ...servers,
        ]),
        "",
    ];
    return lines.join("\n");
}
