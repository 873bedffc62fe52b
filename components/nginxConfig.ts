// Renders the whole Nginx configuration as a pure function of its inputs, so
// the stack, the unit tests (`nginx -t`, gixy) and the end-to-end harness all
// run the very same text. Organised like h5bp/server-configs-nginx: small
// named pieces (TLS policy, security headers, proxy settings, ...) composed
// into one nginx.conf.

export interface NginxPaths {
    /** PEM certificate and key files. */
    certificate: string;
    certificateKey: string;
    /** Root of the static frontend. */
    staticRoot: string;
    /** Writable directory for pid file, temp files and the metadata cache. */
    runtimeDir: string;
    /** Nginx's mime.types file. */
    mimeTypes: string;
    /** Access and error log destinations ("/dev/stdout", a file, ...). */
    accessLog: string;
    errorLog: string;
}

export interface NginxLimits {
    rateLimitPerSecond: number;
    rateLimitBurst: number;
    maxBodyKb: number;
    /** Nginx worker processes; 0: one per CPU ("auto"). */
    proxyWorkers: number;
}

/** A replica as the operator listener knows it: its name and where its API and metrics answer. */
export interface OperatorReplica {
    name: string;
    /** "host:port" of its API (the health check is read there). */
    api: string;
    /** "host:port" of its Prometheus metrics (its Gunicorn master). */
    metrics: string;
}

/**
 * The operator listener: plain HTTP for the people and tools that watch the
 * stack (Nginx's stub_status, each replica's metrics and health by name),
 * never on the public ports. The stack publishes it on the host's loopback
 * only and refuses the app network, so a replica cannot read it either.
 */
export interface OperatorListener {
    port: number;
    /** Client networks (CIDR) refused with 403. */
    deniedNetworks: string[];
    replicas: OperatorReplica[];
    /** "host:port" of a Prometheus exporter of stub_status, served at /nginx/metrics; undefined: none. */
    nginxExporter?: string;
}

/** Paths of the operator listener. */
export const OPERATOR_PATHS = {
    index: "/",
    nginxStatus: "/nginx/status",
    nginxMetrics: "/nginx/metrics",
    prometheusTargets: "/prometheus/targets",
    replicaMetrics: (name: string) => `/replicas/${name}/metrics`,
    replicaHealth: (name: string) => `/replicas/${name}/health`,
};

/** Container names (Docker's rule), so a replica's name is safe in a location path and in JSON. */
const REPLICA_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface NginxConfigInput {
    /** Host names and addresses the site answers to; anything else is refused. */
    serverNames: string[];
    /** "host:port" of every app replica (empty when discoveredUpstreams lists them). */
    upstreams: string[];
    /**
     * The replicas are in a file that a discovery loop keeps current (swarm
     * mode: nginx/bin/mlapi-swarm-proxy writes one `server` line per running
     * task and reloads Nginx when the tasks change).
     */
    discoveredUpstreams?: { file: string };
    /** Ports Nginx listens on (inside the container, or on loopback for tests). */
    listenHttpsPort: number;
    listenHttpPort: number;
    /** Address to listen on; undefined listens on every address of the container. */
    listenAddress?: string;
    /**
     * Listen on these Unix sockets instead of the ports (a slot behind the
     * proxy container's front, see PROXY_SLOTS_DIR): the HTTPS, the HTTP and
     * the operator listener's, each taking a PROXY protocol header first.
     */
    listenSockets?: { https: string; http: string; operator: string };
    /** Close a kept-alive connection after its first response once it is this old (keepalive_time); undefined: never. */
    keepaliveTimeSeconds?: number;
    /** HTTPS port users reach (the host port), used in redirects. */
    publicHttpsPort: number;
    /** Version of the Nginx that will run this config: decides the HTTP/2 syntax. */
    nginxVersion: string;
    paths: NginxPaths;
    limits: NginxLimits;
    /** The operator listener; undefined: none. */
    operator?: OperatorListener;
    /**
     * Connections arrive through a forwarder that names each client in a
     * PROXY protocol header (swarm mode's port forwarder): the public
     * listeners take nothing else, and the client's address replaces the
     * forwarder's for headers, logs and the per-client limits, but only for
     * connections from these networks (CIDR), the forwarder's.
     */
    proxyProtocol?: { trustedNetworks: string[] };
}

/** Version of Nginx in the proxy image (Debian trixie's package). */
export const IMAGE_NGINX_VERSION = "1.26.3";

/** Mozilla "intermediate" TLS ciphers (TLS 1.2; TLS 1.3 suites are all strong). DHE is left out: no dhparam. */
export const INTERMEDIATE_CIPHERS = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

/** The tutorial stack's page addresses, kept working: each serves model.html. */
export const TUTORIAL_PAGE_PATHS = ["/classifier.html", "/regressor.html"];

/** Two years, as Mozilla and hstspreload.org recommend. */
export const HSTS_MAX_AGE_SECONDS = 63072000;

/** The Content-Security-Policy the frontend is written for: no inline code, nothing third-party. */
export const CONTENT_SECURITY_POLICY =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";

/** Upstream timeouts: a replica that does not answer in time is skipped for the next one. */
export const PROXY_TIMEOUTS = { connectSeconds: 2, readSeconds: 5, sendSeconds: 5, totalRetrySeconds: 12 };

export function supportsHttp2Directive(version: string): boolean {
    // `http2 on;` arrived in 1.25.1; older versions take `listen ... http2`.
    const [major, minor, patch] = version.split(".").map(Number);
    return major > 1 || (major === 1 && (minor > 25 || (minor === 25 && patch >= 1)));
}

const indent = (lines: string[]) => lines.map((l) => (l ? `    ${l}` : l));

/** A config block: its head, its body indented, the closing brace (the forwarder's renderer uses it too). */
export const block = (head: string, body: string[]): string[] => [`${head} {`, ...indent(body), "}"];

/** Answers with a fixed JSON error; used for Nginx's own errors under /api/ so clients always get JSON. */
function jsonError(status: number, code: string, message: string): string[] {
    return ["default_type application/json;", jsonReturn(status, code, message)];
}

/** The return of jsonError alone, where default_type is not allowed (`if`) and the server's applies. */
function jsonReturn(status: number, code: string, message: string): string {
    return `return ${status} '${JSON.stringify({ error: code, message, field: null, details: [] })}\\n';`;
}

/** Security headers on every response, errors included (`always`). */
export function securityHeaders(): string[] {
    return [
        `add_header Strict-Transport-Security "max-age=${HSTS_MAX_AGE_SECONDS}" always;`,
        'add_header X-Content-Type-Options "nosniff" always;',
        'add_header X-Frame-Options "DENY" always;',
        'add_header Referrer-Policy "no-referrer" always;',
        `add_header Content-Security-Policy "${CONTENT_SECURITY_POLICY}" always;`,
        'add_header Permissions-Policy "camera=(), microphone=(), geolocation=(), payment=(), usb=()" always;',
        'add_header Cross-Origin-Opener-Policy "same-origin" always;',
        'add_header Cross-Origin-Resource-Policy "same-origin" always;',
        "add_header X-Request-ID $request_id always;",
    ];
}

function tlsPolicy(paths: NginxPaths): string[] {
    return [
        `ssl_certificate ${paths.certificate};`,
        `ssl_certificate_key ${paths.certificateKey};`,
        "ssl_protocols TLSv1.2 TLSv1.3;",
        `ssl_ciphers ${INTERMEDIATE_CIPHERS};`,
        "ssl_prefer_server_ciphers off;",
        "ssl_ecdh_curve X25519:prime256v1:secp384r1;",
        "ssl_session_timeout 1d;",
        "ssl_session_cache shared:TLS:10m;",
        // Without ticket key rotation, tickets weaken forward secrecy.
        "ssl_session_tickets off;",
    ];
}

/** Options of every replica's `server` line (the discovery loop writes the same ones). */
export const UPSTREAM_SERVER_OPTIONS = "max_fails=2 fail_timeout=5s";

function upstreamBlock(input: Pick<NginxConfigInput, "upstreams" | "discoveredUpstreams">): string[] {
    const discovered = input.discoveredUpstreams;
    if (discovered && input.upstreams.length) throw new Error("the Nginx config takes its replicas from a list or from the discovery file, not both");
    if (!discovered && input.upstreams.length === 0) throw new Error("the Nginx config needs at least one upstream replica");
    return block("upstream mlapi_replicas", [
        // Fewest open requests first: a slow replica gets less new work.
        "least_conn;",
        ...(discovered ? [`include ${discovered.file};`] : input.upstreams.map((address) => `server ${address} ${UPSTREAM_SERVER_OPTIONS};`)),
        // Reused connections to Gunicorn (which keeps them for 75 s).
        "keepalive 32;",
        "keepalive_timeout 60s;",
        "keepalive_requests 10000;",
    ]);
}

/** Replicas a request may be tried on: discovered ones get the most, so that scaling never changes the config. */
function upstreamCount(input: Pick<NginxConfigInput, "upstreams" | "discoveredUpstreams">): number {
    return input.discoveredUpstreams ? MAX_TRIES : input.upstreams.length;
}

/** At most this many replicas per request: beyond it a retry storm would cost more than the answer. */
const MAX_TRIES = 4;

function proxySettings(upstreamCount: number): string[] {
    return [
        "proxy_pass http://mlapi_replicas;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Request-ID $request_id;",
        `proxy_connect_timeout ${PROXY_TIMEOUTS.connectSeconds}s;`,
        `proxy_send_timeout ${PROXY_TIMEOUTS.sendSeconds}s;`,
        `proxy_read_timeout ${PROXY_TIMEOUTS.readSeconds}s;`,
        // Predictions are side-effect-free POSTs, so retrying one on another
        // replica after an error or a timeout is safe (non_idempotent).
        "proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;",
        `proxy_next_upstream_tries ${Math.max(2, Math.min(upstreamCount, MAX_TRIES))};`,
        `proxy_next_upstream_timeout ${PROXY_TIMEOUTS.totalRetrySeconds}s;`,
        "proxy_hide_header Server;",
        // Nginx sets its own (the same id, passed upstream above).
        "proxy_hide_header X-Request-ID;",
        "proxy_hide_header X-Powered-By;",
        // Bodies are small (client_max_body_size): buffer them whole so a retry can resend.
        "proxy_request_buffering on;",
    ];
}

function apiErrorPages(): string[] {
    return [
        "error_page 413 = @too_large;",
        "error_page 429 = @rate_limited;",
        "error_page 502 503 504 = @unavailable;",
    ];
}

/**
 * Nginx's own 400 (a path that climbs above the root, plain or
 * percent-encoded; a malformed request line or header) as the API's JSON
 * error, on every public server: such a request has no usable URI, so it
 * goes to an internal location by URI (a named one answers 500 there).
 */
function badRequestPage(): string[] {
    return [
        "error_page 400 /mlapi-errors/400;",
        ...block("location = /mlapi-errors/400", ["internal;", ...securityHeaders(), ...jsonError(400, "bad_request", "The request is malformed (for example a path that climbs above the root).")]),
    ];
}

function apiErrorLocations(maxBodyKb: number): string[] {
    return [
        ...block("location @too_large", [...securityHeaders(), ...jsonError(413, "payload_too_large", `The request body is larger than ${maxBodyKb} KiB.`)]),
        ...block("location @rate_limited", ["add_header Retry-After 1 always;", ...securityHeaders(), ...jsonError(429, "rate_limited", "Too many requests: slow down and retry.")]),
        ...block("location @unavailable", ["add_header Retry-After 5 always;", ...securityHeaders(), ...jsonError(503, "upstream_unavailable", "No API replica is available right now; retry shortly.")]),
    ];
}

function siteServer(input: NginxConfigInput): string[] {
    const { limits } = input;
    return block("server", [
        ...listenDirective(input, input.listenHttpsPort, "ssl"),
        ...http2Directive(input),
        `server_name ${input.serverNames.join(" ")};`,
        "",
        ...securityHeaders(),
        "",
        `root ${input.paths.staticRoot};`,
        "index index.html;",
        "error_page 404 /404.html;",
        ...badRequestPage(),
        "",
        // The static frontend: HTML revalidates on each visit, assets are cached for a day.
        ...block("location /", ["try_files $uri $uri/ =404;", "expires -1;"]),
        // The tutorial's page addresses answer with the generic form, which
        // takes the model from the address (TUTORIAL_PAGES in app.js).
        ...TUTORIAL_PAGE_PATHS.flatMap((page) => block(`location = ${page}`, ["try_files /model.html =404;", "expires -1;"])),
        ...block("location /assets/", ["try_files $uri =404;", "expires 1d;"]),
        ...block("location = /favicon.svg", ["expires 1d;"]),
        "",
        // Only /api/ and the Open Inference Protocol's /v2 reach the replicas:
        // nothing else of Gunicorn is exposed.
        ...["location /api/", "location = /v2", "location /v2/"].flatMap((head) =>
            block(head, [
                `limit_req zone=api_per_client burst=${limits.rateLimitBurst} nodelay;`,
                ...apiErrorPages(),
                ...proxySettings(upstreamCount(input)),
            ]),
        ),
        // Model metadata only changes with a new image: a short shared cache
        // spares the replicas. Predictions (POST) are never cached.
        ...block("location ~ ^/api/v1/(models|openapi\\.json)$", [
            `limit_req zone=api_per_client burst=${limits.rateLimitBurst} nodelay;`,
            ...apiErrorPages(),
            ...proxySettings(upstreamCount(input)),
            "proxy_cache api_metadata;",
            // The app marks every answer no-store for clients; metadata only
            // changes with a new image, so the proxy may keep it briefly.
            "proxy_ignore_headers Cache-Control Expires;",
            "proxy_cache_methods GET HEAD;",
            "proxy_cache_valid 200 60s;",
            "proxy_cache_lock on;",
            "proxy_cache_use_stale error timeout updating http_502 http_503 http_504;",
            "add_header X-Cache-Status $upstream_cache_status always;",
            ...securityHeaders(),
        ]),
        ...apiErrorLocations(limits.maxBodyKb),
    ]);
}

/**
 * A listen directive. The default server's also sets SO_REUSEPORT (once per
 * address, as Nginx requires): a new proxy container binds the same ports
 * beside the running one, which then drains (see ReverseProxy).
 */
function listenDirective(input: NginxConfigInput, port: number, kind: "ssl" | "plain" | "operator", defaultServer = false): string[] {
    const sockets = input.listenSockets;
    const address = sockets
        ? `unix:${sockets[kind === "ssl" ? "https" : kind === "plain" ? "http" : "operator"]}`
        : input.listenAddress
          ? `${input.listenAddress}:${port}`
          : `${port}`;
    const flags = [
        kind === "ssl" ? "ssl" : "",
        kind === "ssl" && !supportsHttp2Directive(input.nginxVersion) ? "http2" : "",
        // Behind the front every socket takes its header; behind swarm mode's forwarder the public ports only.
        input.proxyProtocol && (kind !== "operator" || sockets) ? "proxy_protocol" : "",
        // A slot's sockets are its own: no other Nginx binds them.
        defaultServer ? (sockets ? "default_server" : "default_server reuseport") : "",
    ]
        .filter(Boolean)
        .join(" ");
    return [`listen ${address}${flags ? ` ${flags}` : ""};`];
}

function http2Directive(input: NginxConfigInput): string[] {
    return supportsHttp2Directive(input.nginxVersion) ? ["http2 on;"] : [];
}

/** Requests whose Host is not one of ours are refused (421), on HTTPS and HTTP. */
function unknownHostServers(input: NginxConfigInput): string[] {
    const refuse = jsonError(421, "unknown_host", "This server does not serve that host name.");
    return [
        ...block("server", [...listenDirective(input, input.listenHttpsPort, "ssl", true), ...http2Directive(input), 'server_name "";', ...securityHeaders(), ...badRequestPage(), ...block("location /", refuse)]),
        ...block("server", [...listenDirective(input, input.listenHttpPort, "plain", true), 'server_name "";', ...badRequestPage(), ...block("location /", refuse)]),
    ];
}

/**
 * HTTP only redirects to HTTPS, keeping path and query. 308 (not the
 * tutorial's 301) also keeps the method and body of a POST, so an API client
 * that used http:// is not silently turned into a GET.
 */
function redirectServer(input: NginxConfigInput): string[] {
    const port = input.publicHttpsPort === 443 ? "" : `:${input.publicHttpsPort}`;
    return block("server", [
        ...listenDirective(input, input.listenHttpPort, "plain"),
        `server_name ${input.serverNames.join(" ")};`,
        ...badRequestPage(),
        ...block("location /", [`return 308 https://$host${port}$request_uri;`]),
    ]);
}

/** The client's address from the forwarder's PROXY protocol header, believed only from the forwarder's networks. */
function realClientAddress(trustedNetworks: string[]): string[] {
    if (trustedNetworks.length === 0) throw new Error("the Nginx config behind a PROXY protocol forwarder needs the forwarder's networks");
    return [...trustedNetworks.map((network) => `set_real_ip_from ${network};`), "real_ip_header proxy_protocol;"];
}

/** 1 for a client of a refused network. */
function operatorClients(operator: OperatorListener): string[] {
    return block("geo $mlapi_operator_refused", ["default 0;", ...operator.deniedNetworks.map((network) => `${network} 1;`)]);
}

/**
 * The operator listener. Its own default server (with reuseport, like the
 * public ones, so a new proxy binds it beside the old one), not logged (a
 * scraper every few seconds would drown the access log), short timeouts so a
 * dead replica answers 502/504 at once.
 */
function operatorServer(input: NginxConfigInput, operator: OperatorListener): string[] {
    for (const replica of operator.replicas) {
        if (!REPLICA_NAME.test(replica.name)) throw new Error(`the operator listener cannot name a replica ${JSON.stringify(replica.name)}`);
    }
    const index = {
        prometheusTargets: OPERATOR_PATHS.prometheusTargets,
        nginxStatus: OPERATOR_PATHS.nginxStatus,
        ...(operator.nginxExporter ? { nginxMetrics: OPERATOR_PATHS.nginxMetrics } : {}),
        replicas: operator.replicas.map((r) => ({ name: r.name, metrics: OPERATOR_PATHS.replicaMetrics(r.name), health: OPERATOR_PATHS.replicaHealth(r.name) })),
    };
    // Prometheus's HTTP service discovery: every metrics path of this
    // listener as a target at the address the scraper used (its Host), so
    // one scrape config follows the replicas as they roll.
    const target = (path: string, labels: Record<string, string>) => ({ targets: ["__HOST__"], labels: { __metrics_path__: path, ...labels } });
    const targets = [
        ...(operator.nginxExporter ? [target(OPERATOR_PATHS.nginxMetrics, { component: "proxy" })] : []),
        ...operator.replicas.map((r) => target(OPERATOR_PATHS.replicaMetrics(r.name), { component: "app", replica: r.name })),
    ];
    const probe = (target: string) => [
        `proxy_pass http://${target};`,
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_connect_timeout 1s;",
        "proxy_read_timeout 3s;",
        "proxy_next_upstream off;",
    ];
    return block("server", [
        ...listenDirective(input, operator.port, "operator", true),
        'server_name "";',
        "access_log off;",
        // Refused in the rewrite phase, before any location's `return` (which
        // `deny` in the later access phase would not stop).
        "default_type application/json;",
        ...block("if ($mlapi_operator_refused)", [jsonReturn(403, "forbidden", "The operator listener does not answer this network.")]),
        ...block(`location = ${OPERATOR_PATHS.index}`, ["default_type application/json;", `return 200 '${JSON.stringify(index)}\\n';`]),
        ...block(`location = ${OPERATOR_PATHS.prometheusTargets}`, [`return 200 '${JSON.stringify(targets).replaceAll('"__HOST__"', '"$http_host"')}\\n';`]),
        ...block(`location = ${OPERATOR_PATHS.nginxStatus}`, ["stub_status;"]),
        ...(operator.nginxExporter ? block(`location = ${OPERATOR_PATHS.nginxMetrics}`, probe(`${operator.nginxExporter}/metrics`)) : []),
        ...operator.replicas.flatMap((r) => [
            ...block(`location = ${OPERATOR_PATHS.replicaMetrics(r.name)}`, probe(`${r.metrics}/metrics`)),
            ...block(`location = ${OPERATOR_PATHS.replicaHealth(r.name)}`, probe(`${r.api}/api/health`)),
        ]),
        ...block("location /", jsonError(404, "not_found", "The operator listener serves /, /prometheus/targets, /nginx/status, /nginx/metrics and /replicas/<name>/{metrics,health}.")),
    ]);
}

function httpSettings(input: NginxConfigInput): string[] {
    const { paths, limits } = input;
    return [
        `include ${paths.mimeTypes};`,
        "default_type application/octet-stream;",
        "charset utf-8;",
        "server_tokens off;",
        "sendfile on;",
        "tcp_nopush on;",
        "",
        // Client timeouts cut off slow or idle clients before they tie up workers.
        "client_header_timeout 10s;",
        "client_body_timeout 10s;",
        "send_timeout 10s;",
        "keepalive_timeout 30s;",
        "keepalive_requests 1000;",
        ...(input.keepaliveTimeSeconds ? [`keepalive_time ${input.keepaliveTimeSeconds}s;`] : []),
        "reset_timedout_connection on;",
        `client_max_body_size ${limits.maxBodyKb}k;`,
        `client_body_buffer_size ${limits.maxBodyKb}k;`,
        "",
        `limit_req_zone $binary_remote_addr zone=api_per_client:10m rate=${limits.rateLimitPerSecond}r/s;`,
        "limit_req_status 429;",
        "limit_conn_zone $binary_remote_addr zone=conn_per_client:10m;",
        "limit_conn conn_per_client 256;",
        "limit_conn_status 429;",
        ...(input.proxyProtocol ? ["", ...realClientAddress(input.proxyProtocol.trustedNetworks)] : []),
        "",
        `client_body_temp_path ${paths.runtimeDir}/client_body;`,
        `proxy_temp_path ${paths.runtimeDir}/proxy;`,
        `fastcgi_temp_path ${paths.runtimeDir}/fastcgi;`,
        `uwsgi_temp_path ${paths.runtimeDir}/uwsgi;`,
        `scgi_temp_path ${paths.runtimeDir}/scgi;`,
        `proxy_cache_path ${paths.runtimeDir}/cache levels=1 keys_zone=api_metadata:1m max_size=16m inactive=10m use_temp_path=off;`,
        "",
        // JSON access log with the request id; never a request body.
        "log_format json_combined escape=json '{\"time\":\"$time_iso8601\",\"request_id\":\"$request_id\",\"remote_addr\":\"$remote_addr\",'",
        "    '\"method\":\"$request_method\",\"uri\":\"$uri\",\"status\":$status,\"bytes\":$body_bytes_sent,'",
        "    '\"request_time\":$request_time,\"upstream\":\"$upstream_addr\",\"upstream_status\":\"$upstream_status\",'",
        "    '\"upstream_time\":\"$upstream_response_time\",\"protocol\":\"$server_protocol\",\"tls\":\"$ssl_protocol\",\"user_agent\":\"$http_user_agent\"}';",
        `access_log ${paths.accessLog} json_combined buffer=32k flush=1s;`,
        "",
        ...tlsPolicy(paths),
        "",
        ...upstreamBlock(input),
        "",
        ...unknownHostServers(input),
        "",
        ...redirectServer(input),
        "",
        ...siteServer(input),
        ...(input.operator ? ["", ...operatorClients(input.operator), "", ...operatorServer(input, input.operator)] : []),
    ];
}

/** The complete nginx.conf. */
export function renderNginxConfig(input: NginxConfigInput): string {
    if (input.serverNames.length === 0) throw new Error("the Nginx config needs at least one server name");
    const lines = [
        "# Rendered by components/nginxConfig.ts - do not edit by hand.",
        `worker_processes ${input.limits.proxyWorkers || "auto"};`,
        // Two descriptors per proxied connection: do not depend on the
        // container's default open-files limit (often 1024).
        "worker_rlimit_nofile 8192;",
        `pid ${input.paths.runtimeDir}/nginx.pid;`,
        `error_log ${input.paths.errorLog} warn;`,
        "",
        ...block("events", ["worker_connections 4096;"]),
        "",
        ...block("http", httpSettings(input)),
        "",
    ];
    return lines.join("\n");
}
