// The status report's logic (scripts/lib/statusReport.ts) on given facts:
// the parsers read what the stack really prints, and the verdict needs
// attention exactly when something is wrong.
import { accessLogWindow, assess, ContainerState, parsePrometheus, parseStubStatus, percentile, StatusFacts } from "../../scripts/lib/statusReport";

const NOW = Date.parse("2026-12-01T16:00:00Z");
const APP_IMAGE = `sha256:${"a".repeat(64)}`;
const PROXY_IMAGE = `sha256:${"b".repeat(64)}`;

const running = (address: string, image = APP_IMAGE): ContainerState => ({ status: "running", health: "healthy", restarts: 0, startedAt: "2026-12-01T15:00:00Z", image, addresses: [address] });

/** A line of the proxy's json_combined access log. */
function logLine(seconds: number, fields: { status: number; upstream?: string; upstream_status?: string; upstream_time?: string }): string {
    return JSON.stringify({
        time: new Date(NOW - seconds * 1000).toISOString().replace(/\.\d+Z$/, "+00:00"),
        request_id: "x",
        method: "POST",
        uri: "/api/v1/models/classifier/predict",
        upstream: "",
        upstream_status: "",
        upstream_time: "",
        ...fields,
    });
}

const METRICS = [
    "# HELP mlapi_workers Worker processes running",
    "# TYPE mlapi_workers gauge",
    "mlapi_workers 2.0",
    "mlapi_worker_exits_total 1.0",
    'mlapi_model_info{model="decision-tree-classifier",task="classification",version="1.0.0+1090980fbb79"} 1.0',
    'mlapi_prediction_validation_errors_total{code="out_of_range",field="sepal length (cm)",model="decision-tree-classifier"} 3.0',
].join("\n");

function healthyFacts(): StatusFacts {
    const lines = [
        ...Array.from({ length: 30 }, (_, i) => logLine(i, { status: 200, upstream: "10.0.0.2:8000", upstream_status: "200", upstream_time: `0.00${1 + (i % 3)}` })),
        ...Array.from({ length: 30 }, (_, i) => logLine(i, { status: 200, upstream: "10.0.0.3:8000", upstream_status: "200", upstream_time: "0.002" })),
        logLine(5, { status: 200 }), // the frontend: no upstream
    ];
    return {
        stack: "dev",
        url: "https://127.0.0.1/",
        nowMs: NOW,
        replicas: [
            { name: "mlapi-dev-app-1-aaaaaaaa", container: running("10.0.0.2"), healthStatus: 200, metrics: parsePrometheus(METRICS) },
            { name: "mlapi-dev-app-2-bbbbbbbb", container: running("10.0.0.3"), healthStatus: 200, metrics: parsePrometheus(METRICS) },
        ],
        proxy: { name: "mlapi-dev-proxy-cccccccc", container: running("10.0.0.4", PROXY_IMAGE), stub: parseStubStatus("Active connections: 3 \nserver accepts handled requests\n 10 10 61 \nReading: 0 Writing: 1 Waiting: 2 \n"), exported: true },
        portHolder: { name: "mlapi-dev-proxy-ports", container: { ...running("10.0.0.4"), health: undefined } },
        operator: { url: "http://127.0.0.1:9180/", replicaNames: ["mlapi-dev-app-1-aaaaaaaa", "mlapi-dev-app-2-bbbbbbbb"] },
        window: accessLogWindow(lines, NOW, 60),
        certificate: { served: { notAfter: "2027-03-01T15:00:00.000Z", fingerprintSha256: "AB:CD", subject: "C=KE\nCN=localhost" }, expectedFingerprintSha256: "AB:CD", renewalDays: 30 },
        images: { app: `mlapi-dev-app:latest (${APP_IMAGE})`, proxy: `mlapi-dev-proxy:latest (${PROXY_IMAGE})` },
    };
}

describe("parsers", () => {
    test("Prometheus text: names, labels (escapes included), values; comments skipped", () => {
        const samples = parsePrometheus(`${METRICS}\nx{a="q\\"uote"} 1e3\n`);
        expect(samples.map((s) => s.name)).toEqual(["mlapi_workers", "mlapi_worker_exits_total", "mlapi_model_info", "mlapi_prediction_validation_errors_total", "x"]);
        expect(samples[3].labels).toEqual({ code: "out_of_range", field: "sepal length (cm)", model: "decision-tree-classifier" });
        expect(samples[4]).toEqual({ name: "x", labels: { a: 'q"uote' }, value: 1000 });
    });

    test("stub_status, and a page that is not one", () => {
        expect(parseStubStatus("Active connections: 3 \nserver accepts handled requests\n 10 10 61 \nReading: 0 Writing: 1 Waiting: 2 \n")).toEqual({
            active: 3, accepts: 10, handled: 10, requests: 61, reading: 0, writing: 1, waiting: 2,
        });
        expect(() => parseStubStatus("<html>")).toThrow(/not a stub_status page/);
    });

    test("the access log window counts every attempt for its replica, retries included, and only inside the window", () => {
        const window = accessLogWindow(
            [
                logLine(1, { status: 200, upstream: "10.0.0.2:8000, 10.0.0.3:8000", upstream_status: "502, 200", upstream_time: "0.001, 0.004" }),
                logLine(2, { status: 422, upstream: "10.0.0.3:8000", upstream_status: "422", upstream_time: "0.003" }),
                logLine(3, { status: 503, upstream: "10.0.0.2:8000", upstream_status: "-", upstream_time: "-" }),
                logLine(90, { status: 200, upstream: "10.0.0.2:8000", upstream_status: "200", upstream_time: "0.001" }),
                "not json",
                "{broken",
            ],
            NOW,
            60,
        );
        expect(window.requests).toBe(3);
        expect(window.serverErrors).toBe(1);
        expect(window.byUpstream.get("10.0.0.2:8000")).toEqual({ attempts: 2, serverErrors: 2, clientErrors: 0, seconds: [] });
        expect(window.byUpstream.get("10.0.0.3:8000")).toEqual({ attempts: 2, serverErrors: 0, clientErrors: 1, seconds: [0.003, 0.004] });
    });

    test("nearest-rank percentiles", () => {
        const values = Array.from({ length: 100 }, (_, i) => i + 1);
        expect([percentile(values, 50), percentile(values, 99), percentile(values, 100), percentile([], 50)]).toEqual([50, 99, 100, undefined]);
    });
});

describe("the verdict", () => {
    test("a healthy stack: OK, with each replica's figures", () => {
        const report = assess(healthyFacts());
        expect(report.attention).toEqual([]);
        expect(report.text).toMatch(/^OK: 2 of 2 replicas healthy/m);
        // 30 attempts in 60 s; times 1-3 ms.
        expect(report.text).toMatch(/mlapi-dev-app-1-aaaaaaaa\s+running\s+healthy\s+0\.50\s+0\.0%\s+0\.0%\s+2\.0 ms\s+3\.0 ms\s+2 \(1 exited\)\s+aaaaaaaaaaaa/);
        expect(report.text).toContain("3 connections (0 reading, 1 writing, 2 idle), 61 requests since the proxy last loaded its files");
        expect(report.text).toContain("Certificate: localhost, 89 days left");
        expect(report.text).toContain("Models: decision-tree-classifier 1.0.0+1090980fbb79");
    });

    test.each<[string, (f: StatusFacts) => void, RegExp]>([
        ["a replica killed", (f) => (f.replicas[1].container = { ...f.replicas[1].container!, status: "exited", health: "unhealthy" }), /replica mlapi-dev-app-2-bbbbbbbb is exited: run `pulumi up`, which makes it again/],
        ["a replica gone", (f) => (f.replicas[1].container = undefined), /replica mlapi-dev-app-2-bbbbbbbb does not exist/],
        ["a replica unhealthy", (f) => (f.replicas[0].container!.health = "unhealthy"), /replica mlapi-dev-app-1-aaaaaaaa is unhealthy/],
        ["a replica failing its health answer", (f) => (f.replicas[0].healthStatus = 503), /answers its health check with 503/],
        ["a replica's metrics unreadable", (f) => (f.replicas[0].metrics = "HTTP 502"), /metrics could not be read: HTTP 502/],
        ["a replica on another image", (f) => (f.replicas[0].container!.image = PROXY_IMAGE), /runs image bbbbbbbbbbbb, not the stack's aaaaaaaaaaaa/],
        ["the exporter down", (f) => (f.proxy.exported = "HTTP 502"), /Nginx's Prometheus metrics \(the exporter\) could not be read: HTTP 502/],
        ["the proxy down", (f) => (f.proxy.container!.status = "restarting"), /the proxy mlapi-dev-proxy-cccccccc is restarting/],
        ["the port holder down", (f) => (f.portHolder!.container!.status = "exited"), /the port holder mlapi-dev-proxy-ports is exited/],
        ["the operator listener silent", (f) => (f.operator = { url: "http://127.0.0.1:9180/", error: "connect ECONNREFUSED" }), /operator listener .* did not answer: connect ECONNREFUSED/],
        ["the proxy routing elsewhere", (f) => (f.operator!.replicaNames = ["mlapi-dev-app-1-aaaaaaaa"]), /the proxy's config lists mlapi-dev-app-1-aaaaaaaa, the stack/],
        ["the certificate in its renewal window", (f) => (f.nowMs = Date.parse("2027-02-01T16:00:00Z")), /the certificate has 27 days left, inside its 30-day renewal window/],
        ["the certificate expired", (f) => (f.nowMs = Date.parse("2027-03-02T00:00:00Z")), /the certificate expired on 2027-03-01/],
        ["another certificate served", (f) => (f.certificate.expectedFingerprintSha256 = "EF:01"), /a certificate other than the stack's/],
        ["no certificate read", (f) => (f.certificate.served = "connect ECONNREFUSED 127.0.0.1:443"), /HTTPS presented no certificate: connect ECONNREFUSED/],
        ["the access log unreadable", (f) => (f.window = "no such container"), /access log could not be read/],
        [
            "a replica answering 5xx",
            (f) => (f.window = accessLogWindow(Array.from({ length: 40 }, (_, i) => logLine(i, { status: 200, upstream: "10.0.0.2:8000, 10.0.0.3:8000", upstream_status: `${i % 10 ? 200 : 500}, 200`, upstream_time: "0.001, 0.001" })), NOW, 60)),
            /replica mlapi-dev-app-1-aaaaaaaa answered 10\.0% of the proxy's attempts with 5xx/,
        ],
        ["clients getting 5xx", (f) => (f.window = accessLogWindow(Array.from({ length: 40 }, (_, i) => logLine(i, { status: i % 4 ? 200 : 503 })), NOW, 60)), /clients got 25\.0% 5xx answers/],
    ])("%s: ATTENTION, naming it", (_, breakIt, message) => {
        const facts = healthyFacts();
        breakIt(facts);
        const report = assess(facts);
        expect(report.attention.join("\n")).toMatch(message);
        expect(report.text).toMatch(/^ATTENTION: /m);
    });

    test("a stopped replica's last attempts show under its address", () => {
        const facts = healthyFacts();
        facts.replicas[1].container = { ...facts.replicas[1].container!, status: "exited", addresses: [] };
        expect(assess(facts).text).toMatch(/\(10\.0\.0\.3:8000, no replica now\)\s+-\s+-\s+0\.50/);
    });
});
