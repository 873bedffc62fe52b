// End-to-end: Nginx (the rendered config) in front of real Gunicorn replicas,
// with a certificate issued from the default stack settings.
import { execFileSync, spawnSync } from "child_process";
import * as http2 from "http2";
import * as tls from "tls";
import { startTopology, Topology } from "./harness";
import { MODEL_PATHS, SEED_KEYS, SEED_PAYLOADS, postJson, request } from "../support/http";

jest.setTimeout(120_000);

let topo: Topology;
beforeAll(async () => {
    topo = await startTopology({ replicas: 3 });
});
afterAll(async () => {
    await topo?.stop();
});

const url = (p: string) => `${topo.httpsUrl}${p}`;
const get = (p: string, headers?: Record<string, string>) => request(url(p), { ca: topo.tls.trustPem, headers });
const post = (p: string, payload: unknown, headers?: Record<string, string>) => postJson(url(p), payload, { ca: topo.tls.trustPem, headers });

/** Runs `openssl s_client` against the proxy and returns what it printed. */
function sClient(args: string[]): { ok: boolean; output: string } {
    const result = spawnSync("openssl", ["s_client", "-connect", `127.0.0.1:${topo.httpsPort}`, ...args], { input: "", encoding: "utf8", timeout: 10_000 });
    return { ok: result.status === 0, output: `${result.stdout}\n${result.stderr}` };
}

describe("TLS", () => {
    test.each(["localhost", "127.0.0.1"])("the handshake verifies with the generated certificate as trust anchor for %s", async (name) => {
        const socket = tls.connect({ host: "127.0.0.1", port: topo.httpsPort, ca: topo.tls.trustPem, servername: name === "127.0.0.1" ? undefined : name, checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert) });
        const protocol = await new Promise<string | null>((resolve, reject) => {
            socket.once("secureConnect", () => resolve(socket.getProtocol()));
            socket.once("error", reject);
        });
        socket.end();
        expect(socket.authorized).toBe(true);
        expect(["TLSv1.2", "TLSv1.3"]).toContain(protocol);
    });

    test("a name outside the certificate does not verify", async () => {
        const socket = tls.connect({ host: "127.0.0.1", port: topo.httpsPort, ca: topo.tls.trustPem, servername: "evil.example", checkServerIdentity: (_host, cert) => tls.checkServerIdentity("evil.example", cert) });
        await expect(new Promise((resolve, reject) => {
            socket.once("secureConnect", resolve);
            socket.once("error", reject);
        })).rejects.toThrow(/evil.example/);
        socket.destroy();
    });

    test.each([["-tls1", "TLS 1.0"], ["-tls1_1", "TLS 1.1"]])("%s (%s) is refused", (flag) => {
        // SECLEVEL=0 lets this client offer the old protocol, so a refusal is the server's.
        const result = sClient([flag, "-cipher", "DEFAULT:@SECLEVEL=0"]);
        expect(result.ok).toBe(false);
        expect(result.output).toMatch(/alert protocol version|no protocols available|unsupported protocol|wrong version number/i);
    });

    test("TLS 1.2 and 1.3 are accepted (the client above can connect when allowed)", () => {
        for (const flag of ["-tls1_2", "-tls1_3"]) {
            const result = sClient([flag, "-cipher", "DEFAULT:@SECLEVEL=0"]);
            expect(result.output).toMatch(/Protocol\s*:\s*TLSv1\.[23]|New, TLSv1\.[23]/);
        }
    });

    test("HTTP/2 is offered and serves the API", async () => {
        const session = http2.connect(topo.httpsUrl, { ca: topo.tls.trustPem });
        const status = await new Promise<number>((resolve, reject) => {
            const req = session.request({ ":path": "/api/health" });
            req.on("response", (headers) => resolve(Number(headers[":status"])));
            req.on("error", reject);
            req.end();
        });
        expect(session.alpnProtocol).toBe("h2");
        session.close();
        expect(status).toBe(200);
    });

    test("security headers are on pages, API answers and errors", async () => {
        for (const response of [await get(""), await get("api/health"), await get("no-such-page"), await post(MODEL_PATHS.classifier, {})]) {
            expect(response.headers["strict-transport-security"]).toMatch(/max-age=\d{8}/);
            expect(response.headers["x-content-type-options"]).toBe("nosniff");
            expect(response.headers["x-frame-options"]).toBe("DENY");
            expect(response.headers["referrer-policy"]).toBe("no-referrer");
            expect(response.headers["content-security-policy"]).toContain("default-src 'self'");
            expect(response.headers["x-request-id"]).toMatch(/^[0-9a-f]{32}$/);
            expect(response.headers.server).toBe("nginx");
        }
    });

    test("HTTP redirects to HTTPS with 308, keeping path, query and the POST method", async () => {
        const getRedirect = await request(`${topo.httpUrl}api/v1/models?verbose=1`, { headers: { Host: "127.0.0.1" } });
        expect(getRedirect.status).toBe(308);
        expect(getRedirect.headers.location).toBe(`https://127.0.0.1:${topo.httpsPort}/api/v1/models?verbose=1`);
        const postRedirect = await postJson(`${topo.httpUrl}${MODEL_PATHS.classifier}`, SEED_PAYLOADS.classifier, { headers: { Host: "localhost" } });
        expect(postRedirect.status).toBe(308);
        expect(postRedirect.headers.location).toBe(`https://localhost:${topo.httpsPort}/${MODEL_PATHS.classifier}`);
        // curl follows a 308 with the same method and body.
        const followed = execFileSync(
            "curl",
            ["-sS", "-L", "--cacert", topo.trustFile, "-X", "POST", `${topo.httpUrl}${MODEL_PATHS.classifier}`, "-H", "Content-Type: application/json", "-d", JSON.stringify(SEED_PAYLOADS.classifier)],
            { encoding: "utf8" },
        );
        expect(JSON.parse(followed)).toHaveProperty([SEED_KEYS.classifier]);
    });
});

describe("the seed's API contract through the proxy", () => {
    test.each([
        ["classifier", "decision-tree-classifier", `{"monthly_fee": 60, "customer_age": 30, "support_calls": 1}`],
        ["regressor", "decision-tree-regressor", `{"CustomerType": "Business", "BranchSubCounty": "Kilimani", "ProductCategoryName": "Meat-Based Dishes", "QuantityOrdered": 8, "PaymentDate": "2027-11-13"}`],
    ] as const)("the tutorial's curl command works for the %s (only host and port changed)", (model, slug, body) => {
        const out = execFileSync(
            "curl",
            ["--insecure", "-X", "POST", `https://127.0.0.1:${topo.httpsPort}/api/v1/models/${slug}/predictions`, "-H", "Content-Type: application/json", "-d", body],
            { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
        );
        const answer = JSON.parse(out);
        const value = answer[SEED_KEYS[model]];
        expect(typeof value).toBe("number");
        if (model === "classifier") expect([0, 1]).toContain(value);
    });
});

describe("load balancing", () => {
    test("every replica answers, and the spread is roughly even", async () => {
        const counts = new Map<string, number>();
        const total = 150;
        for (let i = 0; i < total; i++) {
            const response = await get("api/health");
            expect(response.status).toBe(200);
            const replica = response.json().replica as string;
            counts.set(replica, (counts.get(replica) ?? 0) + 1);
        }
        expect([...counts.keys()].sort()).toEqual(topo.replicas.map((r) => r.name).sort());
        const fair = total / topo.replicas.length;
        for (const count of counts.values()) {
            expect(count).toBeGreaterThan(fair * 0.5);
            expect(count).toBeLessThan(fair * 1.5);
        }
    });
});

describe("shielding", () => {
    test("only /api/ reaches the app: its routes are not served elsewhere", async () => {
        for (const path of ["health", "v1/models", "v1/openapi.json", "api/../health"]) {
            const response = await get(path);
            expect([response.status, response.headers["content-type"]]).toEqual([404, expect.stringContaining("text/html")]);
        }
        expect((await get("api/v1/models")).status).toBe(200);
    });

    test("the replicas' metrics are theirs to serve, never the public listener's", async () => {
        // Each replica's Gunicorn master serves them on its own port ...
        for (const replica of topo.replicas) {
            const metrics = await request(replica.metricsUrl);
            expect(metrics.status).toBe(200);
            expect(metrics.body).toMatch(/^mlapi_model_info\{.*model="decision-tree-classifier".*\} 1\.0$/m);
        }
        // ... and nothing on HTTPS or HTTP answers with them.
        for (const path of ["metrics", "api/metrics", "api/v1/metrics"]) {
            const response = await get(path);
            expect([path, response.status]).toEqual([path, 404]);
            expect(response.body).not.toMatch(/mlapi_|# HELP/);
        }
        const plain = await request(`${topo.httpUrl}metrics`);
        expect(plain.body).not.toMatch(/mlapi_|# HELP/);
    });

    test("an unknown Host is refused on HTTPS and HTTP", async () => {
        const https = await request(url("api/health"), { ca: topo.tls.trustPem, servername: "localhost", headers: { Host: "evil.example" } });
        expect(https.status).toBe(421);
        expect(https.json().error).toBe("unknown_host");
        const plain = await request(`${topo.httpUrl}`, { headers: { Host: "evil.example" } });
        expect(plain.status).toBe(421);
    });

    test("an oversized body gets a JSON 413 from Nginx", async () => {
        const big = JSON.stringify({ monthly_fee: 60, customer_age: 30, support_calls: 1, pad: "x".repeat(topo.settings.maxBodyKb * 1024 + 10) });
        const response = await post(MODEL_PATHS.classifier, big);
        expect(response.status).toBe(413);
        expect(response.json()).toMatchObject({ error: "payload_too_large" });
    });

    test("a bad prediction input gets the app's 4xx JSON through the proxy, unchanged", async () => {
        const bad = { monthly_fee: "sixty", customer_age: 30, support_calls: 1 };
        const proxied = await post(MODEL_PATHS.classifier, bad);
        const direct = await postJson(`${topo.replicas[0].url}/${MODEL_PATHS.classifier}`, bad);
        expect(proxied.status).toBe(400);
        expect(proxied.body).toBe(direct.body);
        expect(proxied.json().field).toBe("monthly_fee");
    });

    test("the upstream's Server header is hidden", async () => {
        const response = await get("api/health");
        expect(response.headers.server).toBe("nginx");
        expect(JSON.stringify(response.headers)).not.toMatch(/gunicorn/i);
    });
});

describe("caching", () => {
    test("the static frontend is served with cache headers", async () => {
        const page = await get("");
        expect(page.status).toBe(200);
        expect(page.headers["content-type"]).toContain("text/html");
        expect(page.headers["cache-control"]).toBe("no-cache");
        expect(page.headers.etag).toBeDefined();
        const asset = await get("assets/style.css");
        expect(asset.status).toBe(200);
        expect(asset.headers["cache-control"]).toBe("max-age=86400");
    });

    test("predictions are never cached; model metadata is, briefly", async () => {
        const first = await post(MODEL_PATHS.classifier, SEED_PAYLOADS.classifier);
        const second = await post(MODEL_PATHS.classifier, SEED_PAYLOADS.classifier);
        for (const response of [first, second]) {
            expect(response.headers["cache-control"]).toContain("no-store");
            expect(response.headers["x-cache-status"]).toBeUndefined();
        }
        await get("api/v1/models");
        const cached = await get("api/v1/models");
        expect(cached.headers["x-cache-status"]).toBe("HIT");
    });
});

describe("rate limiting", () => {
    // Last in this file: it exhausts this client's allowance.
    test("a burst beyond the limit gets JSON 429s, and the allowance comes back", async () => {
        const burst = topo.settings.rateLimitBurst + topo.settings.rateLimitPerSecond + 50;
        const responses = await Promise.all(Array.from({ length: burst }, () => get("api/health")));
        const limited = responses.filter((r) => r.status === 429);
        expect(limited.length).toBeGreaterThan(0);
        expect(limited[0].json()).toMatchObject({ error: "rate_limited" });
        expect(limited[0].headers["retry-after"]).toBe("1");
        expect(responses.filter((r) => r.status !== 429 && r.status !== 200)).toEqual([]);
        await new Promise((r) => setTimeout(r, 2500));
        expect((await get("api/health")).status).toBe(200);
    });
});

describe("hostile paths", () => {
    /** A GET with the path sent exactly as given (URL parsing would resolve the dots). */
    const raw = (path: string, port: number, secure: boolean) =>
        new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
            const send = secure ? require("https").request : require("http").request;
            const req = send({ host: "127.0.0.1", port, path, ca: topo.tls.trustPem, servername: "localhost", headers: { Host: "localhost" } }, (res: any) => {
                let body = "";
                res.on("data", (chunk: Buffer) => (body += chunk));
                res.on("end", () => resolve({ status: res.statusCode, type: String(res.headers["content-type"]), body }));
            });
            req.on("error", reject);
            req.end();
        });

    test.each(["/../etc/passwd", "/%2e%2e/etc/passwd", "/api/../../etc/passwd", "/%2E%2E%2F%2E%2E%2Fetc"])("%s gets the API's JSON 400, on HTTPS and on HTTP", async (path) => {
        for (const [port, secure] of [[topo.httpsPort, true], [topo.httpPort, false]] as const) {
            const answer = await raw(path, port, secure);
            expect([answer.status, answer.type]).toEqual([400, "application/json"]);
            expect(JSON.parse(answer.body)).toEqual({ error: "bad_request", message: expect.stringContaining("malformed"), field: null, details: [] });
        }
    });
});
