// Renders the config of swarm mode's port forwarder, as a pure function of
// its inputs (the unit tests run `nginx -t` on it, the swarm suite runs it).
// The forwarder is Nginx's stream module holding an edge node's ports: it
// passes whole TCP connections to the proxy tasks behind it, each opened
// with a PROXY protocol header naming the client, and TLS ends at the proxy.
// It never changes with the site, so a new certificate or proxy config rolls
// only the proxy tasks behind it (start-first) while the node's ports stay open.
import { block } from "./nginxConfig";

export interface ForwardedPort {
    /** Names the upstream: letters, digits and underscores. */
    name: string;
    /** The port the forwarder listens on, inside its container. */
    listenPort: number;
    /** The file of `server` lines (the proxy tasks at this port) the discovery loop keeps current. */
    upstreamFile: string;
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
}

/** Forwarder timeouts: a proxy task that does not accept in time is skipped for the next. */
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
    }
    const servers = input.ports.flatMap((port) => [
        ...block(`upstream mlapi_${port.name}`, ["least_conn;", `include ${port.upstreamFile};`]),
        ...block("server", [`listen ${port.listenPort};`, `proxy_pass mlapi_${port.name};`]),
    ]);
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
            // The proxy tasks read the client's address from it (their realip settings).
            "proxy_protocol on;",
            `proxy_connect_timeout ${FORWARDER_TIMEOUTS.connectSeconds}s;`,
            `proxy_timeout ${FORWARDER_TIMEOUTS.idleSeconds}s;`,
            // A proxy task that stopped (a roll) or is not up yet refuses: the next one takes the client.
            "proxy_next_upstream on;",
            `proxy_next_upstream_timeout ${FORWARDER_TIMEOUTS.totalRetrySeconds}s;`,
            "tcp_nodelay on;",
            "",
            ...servers,
        ]),
        "",
    ];
    return lines.join("\n");
}
