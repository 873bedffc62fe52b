// A small HTTPS/HTTP client for the tests and the smoke check: Node's own
// http(s) modules, so the trust anchor (the stack's certificate or CA) is
// passed explicitly and nothing is fetched from elsewhere.
import * as http from "http";
import * as https from "https";

export interface Response {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: string;
    json<T = any>(): T;
}

export interface RequestOptions {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    /** Trust anchor (PEM) for HTTPS; without it the system store is used. */
    ca?: string;
    /** Skip certificate verification (the smoke check's --insecure). */
    insecure?: boolean;
    /** TLS SNI / Host to present when the URL's host is an address. */
    servername?: string;
    agent?: http.Agent;
    timeoutMs?: number;
}

export function request(url: string, options: RequestOptions = {}): Promise<Response> {
    const target = new URL(url);
    const isHttps = target.protocol === "https:";
    const lib = isHttps ? https : http;
    return new Promise((resolve, reject) => {
        const req = lib.request(
            target,
            {
                method: options.method ?? "GET",
                headers: options.headers,
                agent: options.agent,
                ...(isHttps ? { ca: options.ca, rejectUnauthorized: !options.insecure, servername: options.servername } : {}),
                timeout: options.timeoutMs ?? 10_000,
            },
            (res) => {
                const chunks: Buffer[] = [];
                res.on("data", (chunk: Buffer) => chunks.push(chunk));
                res.on("end", () => {
                    const body = Buffer.concat(chunks).toString("utf8");
                    resolve({
                        status: res.statusCode ?? 0,
                        headers: res.headers,
                        body,
                        json: () => JSON.parse(body),
                    });
                });
                res.on("error", reject);
            },
        );
        req.on("timeout", () => req.destroy(new Error(`timed out: ${options.method ?? "GET"} ${url}`)));
        req.on("error", reject);
        if (options.body !== undefined) req.write(options.body);
        req.end();
    });
}

export function postJson(url: string, payload: unknown, options: RequestOptions = {}): Promise<Response> {
    return request(url, {
        ...options,
        method: "POST",
        headers: { "Content-Type": "application/json", ...(options.headers ?? {}) },
        body: typeof payload === "string" ? payload : JSON.stringify(payload),
    });
}

/** The seed's sample payloads (see shared/reference/seed-stack.md). */
export const SEED_PAYLOADS = {
    classifier: { monthly_fee: 60, customer_age: 30, support_calls: 1 },
    regressor: { CustomerType: "Business", BranchSubCounty: "Kilimani", ProductCategoryName: "Meat-Based Dishes", QuantityOrdered: 8, PaymentDate: "2027-11-13" },
};

export const MODEL_PATHS = {
    classifier: "api/v1/models/decision-tree-classifier/predictions",
    regressor: "api/v1/models/decision-tree-regressor/predictions",
};

export const SEED_KEYS = {
    classifier: "Predicted Class = ",
    regressor: "Predicted Percentage Profit per Unit = ",
};

/**
 * The first moment after `from` at which 5 predictions in a row succeed on
 * new connections to `url`, polled every 200 ms (epoch ms). Throws after
 * 120 s, with what `whatRuns` says about the stack.
 */
export async function servingAgain(url: string, ca: string, from: number, whatRuns: () => string): Promise<number> {
    const deadline = from + 120_000;
    let streak = 0;
    let firstOfStreak = 0;
    while (Date.now() < deadline) {
        const at = Date.now();
        const ok = await postJson(`${url}${MODEL_PATHS.classifier}`, SEED_PAYLOADS.classifier, { ca, timeoutMs: 2000 })
            .then((r) => r.status === 200)
            .catch(() => false);
        streak = ok ? streak + 1 : 0;
        if (streak === 1) firstOfStreak = at;
        if (streak === 5) return firstOfStreak;
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the stack did not serve again within 120 s; ${whatRuns()}`);
}
