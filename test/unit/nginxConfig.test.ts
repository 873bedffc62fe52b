// The renderer alone: its output for 1 and 5 replicas passes the real
// `nginx -t` (Debian's Nginx), in the container layout and the test layout.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DEFAULTS } from "../../components/config";
import { NginxConfigInput, renderNginxConfig, supportsHttp2Directive, IMAGE_NGINX_VERSION, TUTORIAL_PAGE_PATHS } from "../../components/nginxConfig";
import { PROXY_SLOT_KEEPALIVE_SECONDS } from "../../components/layout";
import { containerNginxConfig } from "../../components/proxyConfig";
import { generateKey, selfSignedCert } from "../support/openssl";
import { hostNginxVersion, nginxConfigTest } from "../support/nginx";

const limits = { rateLimitPerSecond: 100, rateLimitBurst: 200, maxBodyKb: 64, proxyWorkers: 1 };
let dir: string;

beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-nginx-unit-"));
    const keyPem = generateKey("RSA-2048");
    fs.writeFileSync(path.join(dir, "server.key"), keyPem, { mode: 0o600 });
    fs.writeFileSync(
        path.join(dir, "server.crt"),
        selfSignedCert({ keyPem, subject: DEFAULTS.certSubject, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityHours: 24, allowedUses: ["server_auth"] }),
    );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function hostInput(replicas: number): NginxConfigInput {
    return {
        serverNames: ["localhost", "127.0.0.1"],
        upstreams: Array.from({ length: replicas }, (_, i) => `127.0.0.1:${19000 + i}`),
        operator: {
            port: 18180,
            deniedNetworks: ["10.213.77.0/24"],
            replicas: Array.from({ length: replicas }, (_, i) => ({ name: `mlapi-dev-app-${i + 1}-0123abcd`, api: `127.0.0.1:${19000 + i}`, metrics: `127.0.0.1:${19100 + i}` })),
        },
        listenHttpsPort: 18443,
        listenHttpPort: 18080,
        listenAddress: "127.0.0.1",
        publicHttpsPort: 18443,
        nginxVersion: hostNginxVersion(),
        limits,
        paths: {
            certificate: path.join(dir, "server.crt"),
            certificateKey: path.join(dir, "server.key"),
            staticRoot: path.resolve(__dirname, "../../nginx/html"),
            runtimeDir: dir,
            mimeTypes: "/etc/nginx/mime.types",
            accessLog: path.join(dir, "access.log"),
            errorLog: path.join(dir, "error.log"),
        },
    };
}

const nginxTest = (config: string) => nginxConfigTest(config, dir);

describe.each([1, 5])("%i replica(s)", (replicas) => {
    test("the config lists every replica once and passes nginx -t", () => {
        const input = hostInput(replicas);
        const config = renderNginxConfig(input);
        for (const upstream of input.upstreams) expect(config.split(`server ${upstream} `)).toHaveLength(2);
        const result = nginxTest(config);
        expect(result.output).toContain("test is successful");
        expect(result.output).not.toMatch(/\[warn\]/);
        expect(result.ok).toBe(true);
    });

    test("the container config uses the container's paths and ports (nginx -t on it runs in the image tests)", () => {
        const endpoints = Array.from({ length: replicas }, (_, i) => ({ name: `mlapi-dev-app-${i + 1}-0123abcd` }));
        const config = containerNginxConfig({ serverNames: ["localhost", "127.0.0.1"], replicas: endpoints, appSubnet: "10.213.77.0/24", publicHttpsPort: 443, limits });
        for (const { name } of endpoints) {
            // By name: the engine's DNS gives each replica's address when Nginx loads the config.
            expect(config).toContain(`server ${name}:8000 `);
            expect(config).toMatch(new RegExp(`location = /replicas/${name}/metrics \\{\\n\\s+proxy_pass http://${name}:9000/metrics;`));
            expect(config).toMatch(new RegExp(`location = /replicas/${name}/health \\{\\n\\s+proxy_pass http://${name}:8000/api/health;`));
        }
        expect(config).toContain("10.213.77.0/24 1;");
        expect(config).toContain("http2 on;");
        // A slot of the proxy (see PROXY_SLOTS_DIR): on its own sockets, relative to its directory, behind the front.
        expect(config.match(/^\s*listen .*$/gm)?.map((l) => l.trim())).toEqual([
            "listen unix:https.sock ssl proxy_protocol default_server;",
            "listen unix:http.sock proxy_protocol default_server;",
            "listen unix:http.sock proxy_protocol;",
            "listen unix:https.sock ssl proxy_protocol;",
            "listen unix:operator.sock proxy_protocol default_server;",
        ]);
        expect(config).toContain("set_real_ip_from unix:;\n    real_ip_header proxy_protocol;");
        expect(config).toContain(`keepalive_time ${PROXY_SLOT_KEEPALIVE_SECONDS}s;`);
        for (const relative of ["pid ./nginx.pid;", "client_body_temp_path ./client_body;", "proxy_cache_path ./cache "]) expect(config).toContain(relative);
        expect(config).toContain("ssl_certificate_key /etc/nginx/deploy/server.key;");
        expect(config).toContain("return 308 https://$host$request_uri;");
        expect(config).toContain("access_log /dev/stdout json_combined");
    });
});

test("a broken config fails nginx -t (the check can fail)", () => {
    const config = renderNginxConfig(hostInput(1)).replace("proxy_pass http://mlapi_replicas;", "proxy_pass http://nowhere_defined;");
    expect(nginxTest(config).ok).toBe(false);
});

test("HTTP/2 syntax follows the Nginx version", () => {
    expect(supportsHttp2Directive("1.22.1")).toBe(false);
    expect(supportsHttp2Directive("1.25.1")).toBe(true);
    expect(supportsHttp2Directive(IMAGE_NGINX_VERSION)).toBe(true);
    const old = renderNginxConfig({ ...hostInput(1), nginxVersion: "1.22.1" });
    expect(old).toContain("listen 127.0.0.1:18443 ssl http2;");
    expect(old).not.toContain("http2 on;");
});

test("security policy pieces are present", () => {
    const config = renderNginxConfig(hostInput(2));
    for (const piece of [
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "Strict-Transport-Security",
        "proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;",
        "keepalive 32;",
        "limit_req zone=api_per_client burst=200 nodelay;",
        "client_max_body_size 64k;",
        "proxy_set_header X-Request-ID $request_id;",
        "server_tokens off;",
        "return 308 https://$host:18443$request_uri;",
    ]) {
        expect(config).toContain(piece);
    }
});

test("the tutorial's page addresses serve the generic form, and app.js knows each one's model", () => {
    const config = renderNginxConfig(hostInput(1));
    const appJs = fs.readFileSync(path.resolve(__dirname, "../../nginx/html/assets/app.js"), "utf8");
    const pages = JSON.parse(appJs.match(/const TUTORIAL_PAGES = (\{.*\});/)![1].replaceAll("'", '"'));
    expect(Object.keys(pages)).toEqual(TUTORIAL_PAGE_PATHS);
    for (const page of TUTORIAL_PAGE_PATHS) {
        expect(config).toMatch(new RegExp(`location = ${page.replaceAll(".", "\\.")} \\{\\s+try_files /model\\.html =404;`));
        expect(fs.existsSync(path.resolve(__dirname, "../../nginx/html", page.slice(1)))).toBe(false); // one form, no copies
    }
});

describe("the operator listener", () => {
    const operatorServer = (config: string) => config.slice(config.indexOf("listen 127.0.0.1:18180"));

    test("is a server of its own: stub_status, the replicas by name, refusing the app network, not logged", () => {
        const server = operatorServer(renderNginxConfig(hostInput(2)));
        expect(server).toMatch(/^listen 127\.0\.0\.1:18180 default_server reuseport;\n\s+server_name "";\n\s+access_log off;\n\s+default_type application\/json;\n\s+if \(\$mlapi_operator_refused\) \{\n\s+return 403 /);
        expect(renderNginxConfig(hostInput(2))).toMatch(/geo \$mlapi_operator_refused \{\n\s+default 0;\n\s+10\.213\.77\.0\/24 1;\n\s+\}/);
        expect(server).toContain("location = /nginx/status {\n            stub_status;");
        // Its index names what it serves, as JSON.
        const index = /location = \/ \{\n\s+default_type application\/json;\n\s+return 200 '(.*)\\n';/.exec(server);
        expect(JSON.parse(index![1])).toEqual({
            prometheusTargets: "/prometheus/targets",
            nginxStatus: "/nginx/status",
            replicas: [1, 2].map((n) => ({ name: `mlapi-dev-app-${n}-0123abcd`, metrics: `/replicas/mlapi-dev-app-${n}-0123abcd/metrics`, health: `/replicas/mlapi-dev-app-${n}-0123abcd/health` })),
        });
    });

    test("lists its metrics paths for Prometheus's HTTP service discovery, at the address the scraper asked", () => {
        const input = hostInput(2);
        input.operator!.nginxExporter = "127.0.0.1:19113";
        const server = operatorServer(renderNginxConfig(input));
        const targets = /location = \/prometheus\/targets \{\n\s+return 200 '(.*)\\n';/.exec(server);
        // Nginx fills in $http_host: the host and port the scraper used.
        expect(JSON.parse(targets![1].replaceAll("$http_host", "127.0.0.1:9180"))).toEqual([
            { targets: ["127.0.0.1:9180"], labels: { __metrics_path__: "/nginx/metrics", component: "proxy" } },
            ...[1, 2].map((n) => ({ targets: ["127.0.0.1:9180"], labels: { __metrics_path__: `/replicas/mlapi-dev-app-${n}-0123abcd/metrics`, component: "app", replica: `mlapi-dev-app-${n}-0123abcd` } })),
        ]);
        expect(server).toMatch(/location = \/nginx\/metrics \{\n\s+proxy_pass http:\/\/127\.0\.0\.1:19113\/metrics;/);
        expect(nginxTest(renderNginxConfig(input)).ok).toBe(true);
    });

    test("nothing of it is on the public servers", () => {
        const config = renderNginxConfig(hostInput(2));
        const publicPart = config.slice(0, config.indexOf("listen 127.0.0.1:18180"));
        for (const piece of ["stub_status", "/replicas/", ":19100", "/metrics"]) expect(publicPart).not.toContain(piece);
    });

    test("refuses a replica name that is not a container name", () => {
        const input = hostInput(1);
        input.operator!.replicas[0].name = "x/../y";
        expect(() => renderNginxConfig(input)).toThrow(/cannot name a replica "x\/\.\.\/y"/);
    });

    test("is left out when not asked for", () => {
        const config = renderNginxConfig({ ...hostInput(1), operator: undefined });
        expect(config).not.toContain("stub_status");
        expect(nginxTest(config).ok).toBe(true);
    });
});
