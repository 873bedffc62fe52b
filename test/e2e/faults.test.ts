// Faults in the end-to-end topology: a replica crashes under load, every
// replica is down, a replica is slow, and clients that dribble or hold
// connections. Each load is bounded in count and time.
import * as tls from "tls";
import { startTopology, Topology, waitFor } from "./harness";
import { MODEL_PATHS, SEED_PAYLOADS, postJson, request } from "../support/http";
import { PROXY_TIMEOUTS } from "../../components/nginxConfig";

jest.setTimeout(120_000);

interface LoadResult {
    statuses: number[];
    errors: string[];
    replicas: Map<string, number>;
}

/**
 * Sends `total` predictions from `workers` concurrent clients, paced to stay
 * under the stack's per-client rate limit, calling `during(done)` as they go.
 */
async function boundedLoad(topo: Topology, total: number, workers: number, during?: (done: number) => Promise<void> | void): Promise<LoadResult> {
    const result: LoadResult = { statuses: [], errors: [], replicas: new Map() };
    const perWorkerIntervalMs = (1000 * workers) / (topo.settings.rateLimitPerSecond * 0.6);
    let started = 0;
    const worker = async () => {
        while (started < total) {
            started++;
            const began = Date.now();
            try {
                const response = await postJson(`${topo.httpsUrl}${MODEL_PATHS.classifier}`, SEED_PAYLOADS.classifier, { ca: topo.tls.trustPem, timeoutMs: 20_000 });
                result.statuses.push(response.status);
            } catch (error) {
                result.errors.push(String(error));
            }
            await during?.(result.statuses.length + result.errors.length);
            await new Promise((r) => setTimeout(r, Math.max(0, perWorkerIntervalMs - (Date.now() - began))));
        }
    };
    await Promise.all(Array.from({ length: workers }, worker));
    return result;
}

async function healthReplicas(topo: Topology, count: number): Promise<Map<string, number>> {
    const seen = new Map<string, number>();
    for (let i = 0; i < count; i++) {
        const response = await request(`${topo.httpsUrl}api/health`, { ca: topo.tls.trustPem });
        if (response.status === 200) {
            const name = response.json().replica as string;
            seen.set(name, (seen.get(name) ?? 0) + 1);
        }
        await new Promise((r) => setTimeout(r, 15));
    }
    return seen;
}

describe("replica failures", () => {
    let topo: Topology;
    beforeAll(async () => {
        topo = await startTopology({ replicas: 3 });
    });
    afterAll(async () => topo?.stop());

    test("killing a replica under load fails no request; it comes back and takes traffic again", async () => {
        const victim = topo.replicas[0];
        let killed = false;
        const load = await boundedLoad(topo, 300, 4, async (done) => {
            if (!killed && done >= 100) {
                killed = true;
                await victim.kill();
            }
        });
        expect(killed).toBe(true);
        expect(load.errors).toEqual([]);
        expect(load.statuses.filter((s) => s !== 200)).toEqual([]);
        expect(load.statuses).toHaveLength(300);

        await victim.start();
        // Nginx retries a failed server after fail_timeout (5 s).
        await waitFor("the restarted replica to take traffic", async () => ((await healthReplicas(topo, 6)).has(victim.name) ? true : undefined), 15_000);
    });

    test("with every replica down the API answers a quick JSON 503, and recovers by itself", async () => {
        await Promise.all(topo.replicas.map((r) => r.kill()));
        const began = Date.now();
        const response = await postJson(`${topo.httpsUrl}${MODEL_PATHS.classifier}`, SEED_PAYLOADS.classifier, { ca: topo.tls.trustPem });
        const elapsedMs = Date.now() - began;
        expect(response.status).toBe(503);
        expect(response.headers["content-type"]).toBe("application/json");
        expect(response.json()).toMatchObject({ error: "upstream_unavailable" });
        expect(response.headers["retry-after"]).toBe("5");
        expect(elapsedMs).toBeLessThan(PROXY_TIMEOUTS.connectSeconds * 1000);
        // The static site stays up.
        expect((await request(topo.httpsUrl, { ca: topo.tls.trustPem })).status).toBe(200);

        await Promise.all(topo.replicas.map((r) => r.start()));
        await waitFor(
            "the API to recover",
            async () => ((await postJson(`${topo.httpsUrl}${MODEL_PATHS.classifier}`, SEED_PAYLOADS.classifier, { ca: topo.tls.trustPem })).status === 200 ? true : undefined),
            15_000,
        );
    });
});

describe("a slow replica", () => {
    let topo: Topology;
    const delaySeconds = PROXY_TIMEOUTS.readSeconds + 3;
    beforeAll(async () => {
        topo = await startTopology({
            replicas: 2,
            wsgiApp: "slow_app:app",
            replicaEnv: (index): Record<string, string> => (index === 0 ? { E2E_PREDICTION_DELAY_SECONDS: String(delaySeconds) } : {}),
        });
    });
    afterAll(async () => topo?.stop());

    test("requests that reach it time out there and are answered by the other replica", async () => {
        const answers = await Promise.all(
            Array.from({ length: 6 }, () => postJson(`${topo.httpsUrl}${MODEL_PATHS.classifier}`, SEED_PAYLOADS.classifier, { ca: topo.tls.trustPem, timeoutMs: 30_000 })),
        );
        expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
        // The proxy's log shows requests that went to the slow replica first and then to the healthy one.
        await new Promise((r) => setTimeout(r, 1200)); // access log buffer flushes every second
        const { readFileSync } = await import("fs");
        const retried = readFileSync(topo.nginxAccessLog, "utf8")
            .split("\n")
            .filter((line) => line.includes("/predictions"))
            .map((line) => JSON.parse(line))
            .filter((entry) => String(entry.upstream).includes(", "));
        expect(retried.length).toBeGreaterThan(0);
        expect(retried[0].upstream_status).toMatch(/^504, 200$/);
    });
});

describe("clients that dribble or hold connections", () => {
    let topo: Topology;
    beforeAll(async () => {
        topo = await startTopology({ replicas: 1 });
    });
    afterAll(async () => topo?.stop());

    /** Opens a TLS connection, writes `data`, then waits for the server to close it. */
    function holdOpen(data: string): Promise<{ closedAfterMs: number; received: string }> {
        return new Promise((resolve, reject) => {
            const began = Date.now();
            let received = "";
            const socket = tls.connect({ host: "127.0.0.1", port: topo.httpsPort, ca: topo.tls.trustPem, servername: "localhost" }, () => socket.write(data));
            socket.on("data", (chunk) => (received += chunk.toString()));
            // Nginx resets timed-out connections (reset_timedout_connection): a reset is a close.
            socket.on("close", () => resolve({ closedAfterMs: Date.now() - began, received }));
            socket.on("error", (error: NodeJS.ErrnoException) => (error.code === "ECONNRESET" ? undefined : reject(error)));
            socket.setTimeout(30_000, () => {
                socket.destroy();
                reject(new Error("the server never closed the connection"));
            });
        });
    }

    test("slow headers and slow bodies are cut off by timeouts while others are served", async () => {
        const slowHeaders = holdOpen("GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
        const slowBody = holdOpen(`POST /${MODEL_PATHS.classifier} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"monthly_fee":`);
        const idle = holdOpen("");

        // Meanwhile other clients are served promptly.
        for (let i = 0; i < 5; i++) {
            const began = Date.now();
            const response = await postJson(`${topo.httpsUrl}${MODEL_PATHS.classifier}`, SEED_PAYLOADS.classifier, { ca: topo.tls.trustPem });
            expect(response.status).toBe(200);
            expect(Date.now() - began).toBeLessThan(1000);
        }

        const [headers, body, idleResult] = await Promise.all([slowHeaders, slowBody, idle]);
        for (const result of [headers, body, idleResult]) {
            expect(result.closedAfterMs).toBeGreaterThan(9_000);
            expect(result.closedAfterMs).toBeLessThan(20_000);
        }
        // A body that never arrives is answered 408 (or the connection is reset), never passed upstream.
        expect(body.received).not.toContain("Predicted");
    });
});
