// The static frontend (nginx/html) in headless Chromium against a stand-in API:
// a small Node server here serves nginx/html as Nginx does (same CSP header,
// try_files $uri $uri/ =404, 404.html) and answers /api/v1/models and the
// predictions with fixture JSON in the API's contract (docs/model-repository.md):
// three models, a classifier with integer classes, the regressor with
// categories and a date, and a pipeline model with a one-hot category, a field
// name with a space and string classes with probabilities. Needs no Python,
// Nginx or trained models, so it runs while the app side is being rewritten;
// test/e2e/browser.test.ts runs the same pages against the real stack.
// Screenshots go to test-artifacts/frontend/ (and /tmp/mlapi-frontend-*.png).
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as path from "path";
import { Browser, BrowserContext, Page } from "playwright-core";
import { CONTENT_SECURITY_POLICY, TUTORIAL_PAGE_PATHS } from "../../components/nginxConfig";
import { launchChromium, makeBrowserHome } from "../support/browser";

jest.setTimeout(60_000);

const ROOT = path.resolve(__dirname, "../..");
const HTML = path.join(ROOT, "nginx", "html");
const ARTIFACTS = path.join(ROOT, "test-artifacts", "frontend");
fs.mkdirSync(ARTIFACTS, { recursive: true });

// ----- The fixture catalogue, as GET /api/v1/models answers -----

type Input = Record<string, unknown> & { name: string; type: string };
interface Model {
    name: string;
    version: string;
    task: "classification" | "regression";
    description: string;
    endpoint: string;
    input_schema: Record<string, unknown>;
    inputs: Input[];
    classes?: Array<string | number>;
    result_key: string;
    metrics: Record<string, unknown>;
    source: Record<string, unknown>;
}

function schemaOf(inputs: Input[]): Record<string, unknown> {
    const properties: Record<string, unknown> = {};
    for (const input of inputs) {
        if (input.type === "number" || input.type === "integer") {
            properties[input.name] = { type: input.type, minimum: input.minimum, maximum: input.maximum };
        } else if (input.type === "category") {
            properties[input.name] = { type: "string", enum: (input.categories as string[]) ?? Object.keys(input.encoding as object) };
        } else {
            properties[input.name] = { type: "string", format: "date", minLength: 10, maxLength: 10, pattern: "^\\d{4}-\\d{2}-\\d{2}$" };
        }
    }
    return { type: "object", properties, required: inputs.map((i) => i.name), additionalProperties: false };
}

function model(card: Omit<Model, "endpoint" | "input_schema">): Model {
    return { ...card, endpoint: `/api/v1/models/${card.name}/predictions`, input_schema: schemaOf(card.inputs) };
}

const CLASSIFIER = model({
    name: "decision-tree-classifier",
    version: "1",
    task: "classification",
    description: "Customer churn: will a customer leave?",
    inputs: [
        { name: "monthly_fee", type: "number", minimum: 0, maximum: 500, description: "Monthly fee in dollars", example: 60 },
        { name: "customer_age", type: "integer", minimum: 18, maximum: 100, description: "Age in years", example: 30 },
        { name: "support_calls", type: "integer", minimum: 0, maximum: 50, example: 1 },
    ],
    classes: [0, 1],
    result_key: "Predicted Class = ",
    metrics: { accuracy: 0.9134 },
    source: { estimator: "sklearn.tree.DecisionTreeClassifier", library_versions: { "scikit-learn": "1.9.1" } },
});

const REGRESSOR = model({
    name: "decision-tree-regressor",
    version: "2",
    task: "regression",
    description: "Percentage profit per unit of an order.",
    inputs: [
        { name: "CustomerType", type: "category", transform: "label", encoding: { Business: 0, Individual: 1, Institution: 2, Wholesale: 3 }, example: "Business" },
        { name: "BranchSubCounty", type: "category", transform: "label", encoding: { Kasarani: 0, Kilimani: 1, Westlands: 2 }, example: "Kilimani" },
        { name: "QuantityOrdered", type: "integer", minimum: 1, maximum: 100, description: "Units in the order", example: 8 },
        { name: "PaymentDate", type: "date", minimum: "2020-01-01", maximum: "2030-12-31", transform: "date-parts", example: "2027-11-13" },
    ],
    result_key: "Predicted Percentage Profit per Unit = ",
    metrics: { r2: 0.87, mae: 1.234567 },
    source: { estimator: "sklearn.tree.DecisionTreeRegressor" },
});

const PIPELINE = model({
    name: "shipping-tier",
    version: "2026.11.1",
    task: "classification",
    description: "Which service tier an order ships with.",
    inputs: [
        { name: "Shipping Mode", type: "category", transform: "onehot", categories: ["Air", "Road", "Ship"], description: "How the order travels" },
        { name: "order.value", type: "number", minimum: 0, maximum: 10000, example: 250.5 },
    ],
    classes: ["bronze", "silver", "gold"],
    result_key: "prediction",
    metrics: { f1_macro: 0.8 },
    source: { estimator: "sklearn.pipeline.Pipeline" },
});

const MODELS = [CLASSIFIER, REGRESSOR, PIPELINE];

/** What the stand-in API checks: required, range, categories, dates (the real API checks more). */
function problemsOf(card: Model, record: Record<string, unknown>): Array<{ field: string; code: string; problem: string }> {
    const problems: Array<{ field: string; code: string; problem: string }> = [];
    for (const input of card.inputs) {
        const value = record[input.name];
        if (value === undefined) problems.push({ field: input.name, code: "missing", problem: "is required" });
        else if (input.type === "number" || input.type === "integer") {
            if (typeof value !== "number" || (input.type === "integer" && !Number.isInteger(value))) {
                problems.push({ field: input.name, code: "wrong_type", problem: `must be ${input.type === "integer" ? "a whole number" : "a number"}` });
            } else if (value < (input.minimum as number)) {
                problems.push({ field: input.name, code: "out_of_range", problem: `must be at least ${input.minimum}` });
            } else if (value > (input.maximum as number)) {
                problems.push({ field: input.name, code: "out_of_range", problem: `must be at most ${input.maximum}` });
            }
        } else if (input.type === "category") {
            const allowed = (input.categories as string[]) ?? Object.keys(input.encoding as object);
            if (!allowed.includes(value as string)) problems.push({ field: input.name, code: "unknown_category", problem: `must be one of ${allowed.join(", ")}` });
        } else if (typeof value !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(value)) {
            problems.push({ field: input.name, code: "wrong_format", problem: "must be a date YYYY-MM-DD" });
        }
    }
    for (const key of Object.keys(record)) {
        if (!card.inputs.some((i) => i.name === key)) problems.push({ field: key, code: "unknown_field", problem: "is not a field of this model" });
    }
    return problems;
}

/** Deterministic answers, so the page's rendering can be checked exactly. */
function answerFor(card: Model, record: Record<string, any>): Record<string, unknown> {
    const meta = { model: card.name, model_version: card.version };
    if (card === CLASSIFIER) {
        const value = record.monthly_fee > 100 ? 1 : 0;
        return { [card.result_key]: value, prediction: value, ...meta };
    }
    if (card === REGRESSOR) {
        const value = record.QuantityOrdered * 1.25 + (record.CustomerType === "Business" ? 0.5 : 0) + 0.00004;
        return { [card.result_key]: value, prediction: value, ...meta };
    }
    const gold = record["order.value"] > 1000;
    return {
        prediction: gold ? "gold" : "silver",
        probabilities: gold ? { bronze: 0.05, silver: 0.15, gold: 0.8 } : { bronze: 0.2, silver: 0.7, gold: 0.1 },
        ...meta,
    };
}

// ----- The stand-in server -----

type ApiMode = "up" | "down";

interface Stub {
    origin: string;
    mode: ApiMode;
    posts: Array<{ path: string; body: unknown }>;
    close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
};

async function startStub(): Promise<Stub> {
    const stub = { mode: "up" as ApiMode, posts: [] as Stub["posts"] } as Stub;
    const json = (res: http.ServerResponse, status: number, body: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store" });
        res.end(JSON.stringify(body));
    };
    const server = http.createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://stub");
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            if (url.pathname.startsWith("/api/")) {
                if (stub.mode === "down") {
                    // What Nginx answers when no replica does: its own HTML error page.
                    res.writeHead(502, { "Content-Type": "text/html" });
                    res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
                    return;
                }
                if (url.pathname === "/api/health") return json(res, 200, { status: "ok", replica: "stub-1" });
                if (url.pathname === "/api/v1/models" && req.method === "GET") return json(res, 200, { models: MODELS });
                const match = /^\/api\/v1\/models\/([^/]+)\/predictions$/.exec(url.pathname);
                const card = match && MODELS.find((m) => m.name === decodeURIComponent(match[1]));
                if (!card) return json(res, 404, { error: "not_found", message: "No such model.", field: null, details: [] });
                if (req.method !== "POST") return json(res, 405, { error: "method_not_allowed", message: "Use POST.", field: null, details: [] });
                let body: any;
                try {
                    body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
                } catch {
                    return json(res, 400, { error: "invalid_json", message: "The body is not JSON.", field: null, details: [] });
                }
                stub.posts.push({ path: url.pathname, body });
                const problems = problemsOf(card, body);
                if (problems.length > 0) {
                    return json(res, 400, { error: "invalid_input", message: `${problems[0].field}: ${problems[0].problem}`, field: problems[0].field, details: problems });
                }
                return json(res, 200, answerFor(card, body));
            }
            // Static files as the site's `location /`: try_files $uri $uri/ =404, index index.html.
            // The tutorial's page addresses as the site's `location = <page>`: try_files /model.html.
            const served = TUTORIAL_PAGE_PATHS.includes(url.pathname) ? "/model.html" : url.pathname;
            let file = path.join(HTML, path.normalize(decodeURIComponent(served)));
            if (!file.startsWith(HTML)) file = path.join(HTML, "missing");
            if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index.html");
            const found = fs.existsSync(file) && fs.statSync(file).isFile();
            const target = found ? file : path.join(HTML, "404.html");
            res.writeHead(found ? 200 : 404, {
                "Content-Type": CONTENT_TYPES[path.extname(target)] ?? "application/octet-stream",
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "Cache-Control": "no-store",
            });
            res.end(fs.readFileSync(target));
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    stub.origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    stub.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
    return stub;
}

// ----- Browser helpers -----

interface Problem {
    kind: string;
    text: string;
    source?: string;
}

let stub: Stub;
let browser: Browser;
let context: BrowserContext;
let home: string;

beforeAll(async () => {
    home = makeBrowserHome();
    [stub, browser] = await Promise.all([startStub(), launchChromium({ home })]);
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
});

afterAll(async () => {
    await browser?.close();
    await stub?.close();
    if (home) fs.rmSync(home, { recursive: true, force: true });
});

beforeEach(() => {
    stub.mode = "up";
    stub.posts = [];
});

/** A page that records console errors, uncaught exceptions and CSP violations. */
async function watchedPage(): Promise<{ page: Page; problems: Problem[] }> {
    const page = await context.newPage();
    const problems: Problem[] = [];
    page.on("console", (m) => {
        if (m.type() === "error" || /Content[- ]Security[- ]Policy/i.test(m.text())) problems.push({ kind: `console.${m.type()}`, text: m.text(), source: m.location().url });
    });
    page.on("pageerror", (e) => problems.push({ kind: "pageerror", text: String(e.stack ?? e) }));
    await page.exposeBinding("__reportCspViolation", (_source, text: string) => problems.push({ kind: "securitypolicyviolation", text }));
    await page.addInitScript(`document.addEventListener("securitypolicyviolation", (e) =>
        window.__reportCspViolation(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`);
    return { page, problems };
}

/** Console errors Chromium logs for the HTTP errors the page asked for and shows. */
function unexpected(problems: Problem[], status?: number): Problem[] {
    return problems.filter((p) => !(status && p.kind === "console.error" && p.text.startsWith(`Failed to load resource: the server responded with a status of ${status}`)));
}

async function shot(page: Page, name: string): Promise<void> {
    const file = path.join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    fs.copyFileSync(file, path.join("/tmp", `mlapi-frontend-${name}.png`));
}

async function openForm(page: Page, url: string): Promise<void> {
    const response = await page.goto(`${stub.origin}${url}`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
    await page.locator("#model-page[data-ready=true]").waitFor({ state: "attached" });
    await page.locator("#prediction-form").waitFor({ state: "visible" });
}

/** The form control of a field, found by its label as a user (or a screen reader) would. */
function field(page: Page, name: string) {
    return page.getByLabel(name, { exact: true });
}

async function submit(page: Page, outcome: "result" | "error", how: "click" | "enter" = "click"): Promise<string> {
    const before = stub.posts.length;
    if (how === "click") await page.locator("#predict").click();
    else await page.keyboard.press("Enter");
    await page.locator(`#${outcome}`).waitFor({ state: "visible" });
    await page.locator(`#${outcome === "result" ? "error" : "result"}`).waitFor({ state: "hidden" });
    await page.waitForFunction(() => !(document.getElementById("predict") as HTMLButtonElement).disabled);
    expect(stub.posts.length).toBe(before + 1);
    return (await page.locator(`#${outcome}`).innerText()).replace(/\n+/g, "\n").trim();
}

// ----- The tests -----

describe("the overview lists every served model", () => {
    test("name, version, task, description, form link, endpoint and a curl example per model; the request flow stays", async () => {
        const { page, problems } = await watchedPage();
        const response = await page.goto(`${stub.origin}/`);
        expect(response?.headers()["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
        await page.locator("#model-list .model-card").nth(MODELS.length - 1).waitFor();
        const cards = page.locator("#model-list .model-card");
        expect(await cards.count()).toBe(MODELS.length);
        for (const [index, card] of MODELS.entries()) {
            const item = cards.nth(index);
            expect(await item.getAttribute("data-model")).toBe(card.name);
            const text = await item.innerText();
            expect(text).toContain(card.name);
            expect(text).toContain(`version ${card.version}`);
            expect(text).toContain(card.task);
            expect(text).toContain(card.description);
            expect(text).toContain(card.endpoint);
            // The heading and the form link both open the generic form; the link names its model for screen readers.
            const link = page.getByRole("link", { name: `Open the form for ${card.name}`, exact: true });
            expect(await link.getAttribute("href")).toBe(`/model.html?name=${encodeURIComponent(card.name)}`);
            expect(await item.getByRole("heading", { name: card.name }).getByRole("link").getAttribute("href")).toBe(`/model.html?name=${encodeURIComponent(card.name)}`);
            // A curl example that posts the card's example record to this origin.
            const curl = await item.locator(".curl-example").innerText();
            expect(curl).toContain(`curl --insecure -X POST ${stub.origin}${card.endpoint}`);
            const body = JSON.parse(/-d '(.*)'$/s.exec(curl)![1]);
            expect(Object.keys(body)).toEqual(card.inputs.map((i) => i.name));
        }
        const regressorCurl = await cards.nth(1).locator(".curl-example").innerText();
        expect(JSON.parse(/-d '(.*)'$/s.exec(regressorCurl)![1])).toEqual({ CustomerType: "Business", BranchSubCounty: "Kilimani", QuantityOrdered: 8, PaymentDate: "2027-11-13" });
        // The pipeline's category has no example: its first category is used.
        expect(JSON.parse(/-d '(.*)'$/s.exec(await cards.nth(2).locator(".curl-example").innerText())![1])).toEqual({ "Shipping Mode": "Air", "order.value": 250.5 });
        expect(await page.locator("#models-status").innerText()).toBe("3 models are served.");
        expect(await page.locator("#models-error").isHidden()).toBe(true);
        // The request-flow explanation and the health widget are still there.
        await expect(page.getByRole("heading", { name: "How a request travels" }).isVisible()).resolves.toBe(true);
        expect(await page.locator(".flow-steps li").count()).toBe(5);
        await page.locator("#health-result").filter({ hasText: "Replica stub-1 answered" }).waitFor();
        await shot(page, "index");

        // Following a model's link opens its form.
        await page.getByRole("link", { name: `Open the form for ${PIPELINE.name}`, exact: true }).click();
        await page.waitForURL((url) => url.pathname === "/model.html" && url.searchParams.get("name") === PIPELINE.name);
        await page.locator("#model-page[data-ready=true]").waitFor({ state: "attached" });
        expect(await page.locator("h1").innerText()).toBe(PIPELINE.name);
        expect(unexpected(problems)).toEqual([]);
        await page.close();
    });

    test("with the API unreachable, the overview says so with the usual summary", async () => {
        stub.mode = "down";
        const { page, problems } = await watchedPage();
        await page.goto(`${stub.origin}/`);
        await page.locator("#models-error").waitFor({ state: "visible" });
        expect(await page.locator("#models-error").innerText()).toBe("No API replica could answer (HTTP 502)");
        expect(await page.locator("#models-error").getAttribute("role")).toBe("alert");
        expect(await page.locator("#models-status").innerText()).toBe("The list of models could not be loaded.");
        expect(await page.locator("#model-list .model-card").count()).toBe(0);
        expect(unexpected(problems, 502)).toEqual([]);
        await page.close();
    });
});

describe("the generic model page builds the form from the model's card", () => {
    test("classifier (integer classes, no probabilities): inputs with min/max/step and examples; posts numbers; shows the class and the version", async () => {
        const { page, problems } = await watchedPage();
        await openForm(page, `/model.html?name=${CLASSIFIER.name}`);
        expect(await page.title()).toBe(`${CLASSIFIER.name} · ML Prediction API`);
        expect(await page.locator("h1").innerText()).toBe(CLASSIFIER.name);
        expect(await page.locator("#model-description").innerText()).toBe(CLASSIFIER.description);
        expect(await page.locator("#model-info").innerText()).toBe("Version 1 · classification · accuracy 0.913");
        // One labelled control per card field, in card order, typed and bounded by the card.
        expect(await page.locator("#form-fields label").allInnerTexts()).toEqual(CLASSIFIER.inputs.map((i) => i.name));
        const fee = field(page, "monthly_fee");
        expect(await fee.evaluate((e: HTMLInputElement) => [e.type, e.min, e.max, e.step, e.value])).toEqual(["number", "0", "500", "any", "60"]);
        expect(await field(page, "customer_age").evaluate((e: HTMLInputElement) => [e.type, e.min, e.max, e.step, e.value])).toEqual(["number", "18", "100", "1", "30"]);
        expect(await field(page, "support_calls").evaluate((e: HTMLInputElement) => [e.type, e.min, e.max, e.step, e.value])).toEqual(["number", "0", "50", "1", "1"]);
        // The description and the range describe the control.
        expect(await fee.evaluate((e) => e.getAttribute("aria-describedby")!.split(" ").map((id) => document.getElementById(id)!.textContent).join("|"))).toBe("|Monthly fee in dollars. A number from 0 to 500.");
        expect(await page.locator("#curl-preview").textContent()).toContain(`'{"monthly_fee":60,"customer_age":30,"support_calls":1}'`);
        expect(await page.locator("#result").isHidden()).toBe(true);
        expect(await page.locator("#error").isHidden()).toBe(true);

        const first = await submit(page, "result");
        expect(stub.posts.at(-1)).toEqual({ path: CLASSIFIER.endpoint, body: { monthly_fee: 60, customer_age: 30, support_calls: 1 } });
        expect(first).toBe("PREDICTED CLASS\n0\nmodel decision-tree-classifier · version 1");
        expect(await page.locator("#result .probabilities").count()).toBe(0);
        // The answer is announced: it sits in a polite live region.
        expect(await page.locator("#result").evaluate((e) => e.closest("[aria-live]")?.getAttribute("aria-live"))).toBe("polite");

        await fee.fill("250.5");
        expect(await page.locator("#curl-preview").textContent()).toContain(`"monthly_fee":250.5`);
        expect(await submit(page, "result")).toContain("\n1\n");
        expect(stub.posts.at(-1)!.body).toEqual({ monthly_fee: 250.5, customer_age: 30, support_calls: 1 });
        await page.locator("#model-about summary").click();
        expect(await page.locator("#model-facts").innerText()).toContain("sklearn.tree.DecisionTreeClassifier");
        await shot(page, "model-classifier");
        expect(unexpected(problems)).toEqual([]);
        await page.close();
    });

    test("regressor (categories and a date): selects hold the allowed values, the date its range; a 400 shows the problem next to the named field", async () => {
        const { page, problems } = await watchedPage();
        await openForm(page, `/model.html?name=${REGRESSOR.name}`);
        expect(await field(page, "CustomerType").evaluate((e: HTMLSelectElement) => [e.tagName, [...e.options].map((o) => o.value), e.value]))
            .toEqual(["SELECT", ["Business", "Individual", "Institution", "Wholesale"], "Business"]);
        expect(await field(page, "BranchSubCounty").evaluate((e: HTMLSelectElement) => [[...e.options].map((o) => o.value), e.value]))
            .toEqual([["Kasarani", "Kilimani", "Westlands"], "Kilimani"]);
        expect(await field(page, "PaymentDate").evaluate((e: HTMLInputElement) => [e.type, e.min, e.max, e.value])).toEqual(["date", "2020-01-01", "2030-12-31", "2027-11-13"]);

        expect(await submit(page, "result")).toBe("PREDICTED PERCENTAGE PROFIT PER UNIT\n10.5\nmodel decision-tree-regressor · version 2");
        await field(page, "CustomerType").selectOption("Individual");
        await field(page, "BranchSubCounty").selectOption("Westlands");
        await field(page, "QuantityOrdered").fill("3");
        await field(page, "PaymentDate").fill("2026-05-01");
        expect(await submit(page, "result")).toContain("\n3.75\n");
        expect(stub.posts.at(-1)!.body).toEqual({ CustomerType: "Individual", BranchSubCounty: "Westlands", QuantityOrdered: 3, PaymentDate: "2026-05-01" });

        // Out of range: the API's 400 names the field; the page shows its problem right by it.
        const quantity = field(page, "QuantityOrdered");
        await quantity.fill("0");
        const summary = await submit(page, "error");
        expect(summary).toBe("Validation error — QuantityOrdered: must be at least 1");
        expect(await page.locator("#error").getAttribute("role")).toBe("alert");
        expect(await quantity.getAttribute("aria-invalid")).toBe("true");
        const fieldBox = page.locator('.field[data-field="QuantityOrdered"]');
        expect(await fieldBox.locator(".field-error").innerText()).toBe("must be at least 1");
        expect(await quantity.evaluate((e) => e.getAttribute("aria-describedby")!.split(" ").map((id) => document.getElementById(id)!.textContent).join("|"))).toBe("must be at least 1|Units in the order. A whole number from 1 to 100.");
        // Focus moves to the field to correct; no other field is marked.
        expect(await quantity.evaluate((e) => e === document.activeElement)).toBe(true);
        expect(await page.locator("[aria-invalid=true]").count()).toBe(1);
        expect(await page.locator(".field-error:visible").count()).toBe(1);
        await shot(page, "model-regressor-error");

        // Two problems at once, each by its own field.
        await field(page, "PaymentDate").fill("");
        await submit(page, "error");
        expect(await page.locator('.field[data-field="PaymentDate"] .field-error').innerText()).toBe("is required");
        expect(await page.locator('.field[data-field="QuantityOrdered"] .field-error').innerText()).toBe("must be at least 1");
        expect(await page.locator("[aria-invalid=true]").count()).toBe(2);

        // Corrected: the result comes back and the marks go.
        await quantity.fill("8");
        await field(page, "PaymentDate").fill("2027-11-13");
        expect(await submit(page, "result")).toContain("\n10\n");
        expect(await page.locator("[aria-invalid]").count()).toBe(0);
        expect(await page.locator(".field-error:visible").count()).toBe(0);
        expect(unexpected(problems, 400)).toEqual([]);
        expect(problems.length).toBe(2); // the two 400s Chromium logs
        await page.close();
    });

    test("pipeline model (one-hot category, a field name with a space, string classes): probabilities as a bar list, keyboard only", async () => {
        const { page, problems } = await watchedPage();
        await openForm(page, `/model.html?name=${PIPELINE.name}`);
        expect(await field(page, "Shipping Mode").evaluate((e: HTMLSelectElement) => [e.tagName, [...e.options].map((o) => o.value), e.value])).toEqual(["SELECT", ["Air", "Road", "Ship"], "Air"]);
        expect(await field(page, "order.value").inputValue()).toBe("250.5");

        // Keyboard only: Tab from the page start reaches the first field; Enter in a field submits.
        await page.locator("body").focus();
        let steps = 0;
        while (!(await field(page, "Shipping Mode").evaluate((e) => e === document.activeElement)) && steps++ < 20) await page.keyboard.press("Tab");
        expect(steps).toBeLessThan(20);
        await page.keyboard.press("ArrowDown"); // Road
        await page.keyboard.press("Tab");
        await page.keyboard.press("Control+A");
        await page.keyboard.type("1500");
        expect(await submit(page, "result", "enter")).toMatch(/^PREDICTED CLASS\ngold\n/);
        expect(stub.posts.at(-1)).toEqual({ path: PIPELINE.endpoint, body: { "Shipping Mode": "Road", "order.value": 1500 } });

        const rows = page.locator("#result .probabilities li");
        expect((await rows.allInnerTexts()).map((t) => t.replace(/\s+/g, " ").trim())).toEqual(["bronze 5.0 %", "silver 15.0 %", "gold 80.0 %"]);
        expect(await page.locator("#result .probabilities li.predicted .probability-class").innerText()).toBe("gold");
        const widths = await page.locator("#result .probability-fill").evaluateAll((fills) => fills.map((f) => (f as HTMLElement).style.width));
        expect(widths).toEqual(["5%", "15%", "80%"]);
        expect(await page.locator("#result").innerText()).toContain("model shipping-tier · version 2026.11.1");
        await shot(page, "model-pipeline");
        expect(unexpected(problems)).toEqual([]);
        await page.close();
    });

    test.each([
        ["/classifier.html", CLASSIFIER],
        ["/regressor.html", REGRESSOR],
    ])("the tutorial's %s opens the form of its model", async (url, card) => {
        const { page, problems } = await watchedPage();
        await openForm(page, url);
        expect(new URL(page.url()).pathname).toBe(url); // no redirect
        expect(await page.locator("h1").innerText()).toBe(card.name);
        expect(await page.locator("#form-fields label").allInnerTexts()).toEqual(card.inputs.map((i) => i.name));
        await submit(page, "result");
        expect(stub.posts.at(-1)!.path).toBe(card.endpoint);
        expect(unexpected(problems)).toEqual([]);
        await page.close();
    });

    test("an unknown model name (or none) shows a clear message with the list of models", async () => {
        for (const [url, message] of [
            ["/model.html?name=no-such-model", "There is no model named “no-such-model”. The API serves these models:"],
            ["/model.html", "No model was named in the address. The API serves these models:"],
        ]) {
            const { page, problems } = await watchedPage();
            await page.goto(`${stub.origin}${url}`);
            await page.locator("#model-missing").waitFor({ state: "visible" });
            expect(await page.locator("#model-missing-text").innerText()).toBe(message);
            const links = page.locator("#model-choices a");
            expect(await links.allInnerTexts()).toEqual(MODELS.map((m) => m.name));
            expect(await links.evaluateAll((as) => as.map((a) => a.getAttribute("href")))).toEqual(MODELS.map((m) => `/model.html?name=${m.name}`));
            expect(await page.locator("#prediction-form").isHidden()).toBe(true);
            if (url.includes("no-such")) await shot(page, "model-unknown");
            await links.first().click();
            await page.locator("#model-page[data-ready=true]").waitFor({ state: "attached" });
            expect(await page.locator("h1").innerText()).toBe(MODELS[0].name);
            expect(unexpected(problems)).toEqual([]);
            await page.close();
        }
    });

    test("the API unreachable: the page shows the usual summary, on load and on submit", async () => {
        const { page, problems } = await watchedPage();
        stub.mode = "down";
        await page.goto(`${stub.origin}/model.html?name=${CLASSIFIER.name}`);
        await page.locator("#error").waitFor({ state: "visible" });
        expect(await page.locator("#error").innerText()).toBe("No API replica could answer (HTTP 502)");
        expect(await page.locator("#prediction-form").isHidden()).toBe(true);
        expect(await page.locator("#model-description").innerText()).toBe("The model could not be loaded.");

        // Loaded while up, then the API goes away: the submit says so.
        stub.mode = "up";
        await openForm(page, `/model.html?name=${CLASSIFIER.name}`);
        stub.mode = "down";
        await page.locator("#predict").click();
        await page.locator("#error").waitFor({ state: "visible" });
        expect(await page.locator("#error").innerText()).toBe("No API replica could answer (HTTP 502)");
        expect(await page.locator("[aria-invalid]").count()).toBe(0);
        expect(unexpected(problems, 502)).toEqual([]);
        await page.close();
    });

    test("a number the browser cannot read is flagged by its field without a request", async () => {
        const { page } = await watchedPage();
        await openForm(page, `/model.html?name=${CLASSIFIER.name}`);
        const fee = field(page, "monthly_fee");
        await fee.focus();
        await page.keyboard.press("Control+A");
        await page.keyboard.type("1e"); // a partial number: the input's value is "" and validity.badInput
        const posts = stub.posts.length;
        await page.locator("#predict").click();
        await page.locator("#error").waitFor({ state: "visible" });
        expect(stub.posts.length).toBe(posts);
        expect(await page.locator("#error").innerText()).toBe("Validation error — monthly_fee: not a number");
        expect(await page.locator('.field[data-field="monthly_fee"] .field-error').innerText()).toBe("not a number");
        expect(await fee.getAttribute("aria-invalid")).toBe("true");
        await page.close();
    });
});
