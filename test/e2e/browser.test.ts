// End-to-end in a real browser: Debian's headless Chromium, driven by
// playwright-core, uses the frontend Nginx serves in front of real Gunicorn
// replicas, as a person would: open the overview, follow the links, submit
// the forms, read the answer or the error. Also: no CSP violation or JS error
// on any page, and, with the local CA, a browser that trusts the CA in its
// NSS database (as a user does with certutil) gets no certificate warning.
// Screenshots of every step go to test-artifacts/browser/.
import * as fs from "fs";
import * as path from "path";
import { Browser, BrowserContext, Page, Response } from "playwright-core";
import { CONTENT_SECURITY_POLICY } from "../../components/nginxConfig";
import { PROJECT_ROOT, startTopology, Topology } from "./harness";
import { MODEL_PATHS, SEED_KEYS, SEED_PAYLOADS, postJson, request } from "../support/http";
import { launchChromium, makeBrowserHome, trustCaForUser, trustedCaFlags } from "../support/browser";

jest.setTimeout(60_000);

const ARTIFACTS = path.join(PROJECT_ROOT, "test-artifacts", "browser");
fs.mkdirSync(ARTIFACTS, { recursive: true });

type Model = keyof typeof MODEL_PATHS;
const PAGES: Record<Model, { file: string; link: RegExp }> = {
    classifier: { file: "/classifier.html", link: /Customer churn classifier/ },
    regressor: { file: "/regressor.html", link: /Profit per unit regressor/ },
};

const homes: string[] = [];
const browsers: Browser[] = [];
const topologies: Topology[] = [];
afterAll(async () => {
    await Promise.all(browsers.map((b) => b.close()));
    await Promise.all(topologies.map((t) => t.stop()));
    for (const home of homes) fs.rmSync(home, { recursive: true, force: true });
});

async function browserWithHome(trustCaFile?: string): Promise<{ browser: Browser; home: string }> {
    const home = makeBrowserHome();
    homes.push(home);
    if (trustCaFile) trustCaForUser(home, trustCaFile);
    const browser = await launchChromium({ home });
    browsers.push(browser);
    return { browser, home };
}

async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

interface ConsoleProblem {
    page: string;
    kind: string;
    text: string;
    source?: string;
}

/**
 * A page that records what its devtools console would show as broken: console
 * errors (Chromium logs CSP refusals and failed loads there), uncaught
 * exceptions, and every `securitypolicyviolation` event the document fires.
 */
async function watchedPage(context: BrowserContext): Promise<{ page: Page; problems: ConsoleProblem[] }> {
    const page = await context.newPage();
    const problems: ConsoleProblem[] = [];
    page.on("console", (message) => {
        if (message.type() === "error" || /Content[- ]Security[- ]Policy/i.test(message.text())) {
            problems.push({ page: page.url(), kind: `console.${message.type()}`, text: message.text(), source: message.location().url });
        }
    });
    page.on("pageerror", (error) => problems.push({ page: page.url(), kind: "pageerror", text: String(error.stack ?? error) }));
    await page.exposeBinding("__reportCspViolation", ({ frame }, violation: string) => {
        problems.push({ page: frame.url(), kind: "securitypolicyviolation", text: violation });
    });
    await page.addInitScript(`document.addEventListener("securitypolicyviolation", (e) =>
        window.__reportCspViolation(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`);
    return { page, problems };
}

/** A failed fetch that the page itself asked for and shows (Chromium logs every 4xx answer as a console error). */
function isExpectedRejection(problem: ConsoleProblem, origin: string, model: Model): boolean {
    return (
        problem.kind === "console.error" &&
        problem.source === `${origin}/${MODEL_PATHS[model]}` &&
        /^Failed to load resource: the server responded with a status of 400\b/.test(problem.text)
    );
}

function expectPageHeaders(response: Response | null, headers: Record<string, string>): void {
    expect(response?.status()).toBe(200);
    expect(headers["content-type"]).toContain("text/html");
    expect(headers["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
    expect(headers["strict-transport-security"]).toMatch(/max-age=\d+/);
}

interface VisibleSecurityState {
    securityState: string;
    securityStateIssueIds: string[];
    certificateSecurityState?: { issuer: string; subjectName: string; protocol: string; certificateNetworkError?: string };
}

/**
 * What Chromium's address bar shows for the page (the lock or "Not secure"),
 * from the DevTools Security domain: returns a getter for the state of the
 * latest HTTPS document, waiting for it if none has been reported yet.
 */
async function trackSecurityState(context: BrowserContext, page: Page): Promise<() => Promise<VisibleSecurityState>> {
    const cdp = await context.newCDPSession(page);
    let latest: VisibleSecurityState | undefined;
    let notify: (() => void) | undefined;
    cdp.on("Security.visibleSecurityStateChanged", (event: { visibleSecurityState: VisibleSecurityState }) => {
        if (!event.visibleSecurityState.certificateSecurityState) return; // not an HTTPS document (about:blank)
        latest = event.visibleSecurityState;
        notify?.();
    });
    await cdp.send("Security.enable");
    return () => (latest ? Promise.resolve(latest) : new Promise((resolve) => (notify = () => resolve(latest!))));
}

/** Clicks a link as a user would and returns the response of the page it leads to. */
async function follow(page: Page, name: RegExp, file: string): Promise<Response> {
    const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().isNavigationRequest() && new URL(r.url()).pathname === file),
        page.getByRole("link", { name }).click(),
    ]);
    await page.waitForURL((url) => url.pathname === file);
    return response;
}

/** Waits until app.js has wired the form (it fills the curl preview) and the model's schema has loaded. */
async function formReady(page: Page): Promise<void> {
    await page.locator("#model-info").waitFor({ state: "visible" });
    await page.waitForFunction(() => (document.getElementById("curl-preview")?.textContent ?? "").includes("curl"));
}

/** Clicks Predict and waits for the API's answer and for the page to show it (result or error). */
async function submit(page: Page, model: Model, outcome: "result" | "error"): Promise<{ status: number; text: string }> {
    const [answer] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === `/${MODEL_PATHS[model]}`),
        page.locator("#predict").click(),
    ]);
    const shown = page.locator(`#${outcome}`);
    await shown.waitFor({ state: "visible" });
    await page.locator(`#${outcome === "result" ? "error" : "result"}`).waitFor({ state: "hidden" });
    await page.waitForFunction(() => !(document.getElementById("predict") as HTMLButtonElement).disabled);
    return { status: answer.status(), text: (await shown.innerText()).trim() };
}

/** The model's entry in GET /api/v1/models, whichever shape the catalogue has (as app.js reads it). */
function findModel(catalogue: any, name: string): any {
    const models = catalogue.models ?? catalogue;
    const list = Array.isArray(models) ? models : Object.entries(models).map(([key, model]) => ({ name: key, ...(model as object) }));
    const found = list.find((model: any) => model?.name === name);
    if (!found) throw new Error(`${name} is not in the catalogue: ${JSON.stringify(catalogue).slice(0, 500)}`);
    return found;
}

/** What the page should show for a value the API returned. */
function expectedHeadline(model: Model, value: number): string {
    return model === "classifier" ? (value === 1 ? "Will churn" : "Will stay") : `${value.toFixed(2)} %`;
}

describe("self-signed certificate (the tutorial's default): click through the warning", () => {
    let topo: Topology;
    let context: BrowserContext;
    let origin: string;

    beforeAll(async () => {
        const [started, { browser }] = await Promise.all([startTopology({ replicas: 2 }), browserWithHome()]);
        topo = started;
        topologies.push(topo);
        origin = topo.httpsUrl.replace(/\/$/, "");
        context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    });

    /** The answer the API gives to the same payload, asked directly with the right trust anchor. */
    async function apiValue(model: Model, payload: Record<string, unknown>): Promise<number> {
        const response = await postJson(`${topo.httpsUrl}${MODEL_PATHS[model]}`, payload, { ca: topo.tls.trustPem });
        expect(response.status).toBe(200);
        const body = response.json();
        return Number(body.prediction ?? body[SEED_KEYS[model]]);
    }

    test("the overview loads over HTTPS with its CSP, and the health widget names a replica", async () => {
        const { page, problems } = await watchedPage(context);
        const securityState = await trackSecurityState(context, page);
        const response = await page.goto(topo.httpsUrl);
        expectPageHeaders(response, await response!.allHeaders());
        expect(new URL(page.url()).protocol).toBe("https:");
        // Clicked through: the page works, and the address bar says the certificate is not trusted.
        const state = await securityState();
        expect(state.securityState).toBe("insecure-broken");
        expect(state.certificateSecurityState?.certificateNetworkError).toMatch(/ERR_CERT_AUTHORITY_INVALID/);
        expect(await page.title()).toBe("ML Prediction API over HTTPS");
        // The widget asks /api/health on load; one click asks again.
        const replicaNames = topo.replicas.map((r) => r.name).join("|");
        await page.locator("#health-result").filter({ hasText: new RegExp(`Replica (${replicaNames}) answered`) }).waitFor();
        await page.locator("#health-check").click();
        await page.waitForFunction(
            () => [...document.querySelectorAll("#health-tally li")].reduce((sum, li) => sum + Number(/× (\d+)$/.exec(li.textContent ?? "")?.[1] ?? 0), 0) === 2,
        );
        for (const item of await page.locator("#health-tally li").allInnerTexts()) expect(item).toMatch(new RegExp(`^(${replicaNames}) × [12]$`));
        expect(await page.locator("#health-error").isHidden()).toBe(true);
        await shot(page, "self-signed-01-overview");
        expect(problems).toEqual([]);
        await page.close();
    });

    test.each(["classifier", "regressor"] as const)("%s: follow the link, predict with the prefilled values, then see readable errors", async (model) => {
        const { page, problems } = await watchedPage(context);
        await page.goto(topo.httpsUrl);
        const response = await follow(page, PAGES[model].link, PAGES[model].file);
        expectPageHeaders(response, await response.allHeaders());
        await formReady(page);
        // The choices offered are the API's own (its input schema replaces the page's fallback options).
        const catalogue = (await request(`${topo.httpsUrl}api/v1/models`, { ca: topo.tls.trustPem })).json();
        const schema = findModel(catalogue, `decision-tree-${model}`).input_schema;
        for (const [name, property] of Object.entries<{ enum?: unknown[] }>(schema.properties)) {
            if (!property.enum) continue;
            expect(await page.locator(`#${name} option`).allTextContents()).toEqual(property.enum.map(String));
        }
        expect(await page.locator("#result").isHidden()).toBe(true);
        expect(await page.locator("#error").isHidden()).toBe(true);
        await shot(page, `self-signed-${model}-01-form`);

        // First run: the seed's values, as prefilled.
        const seeded = await submit(page, model, "result");
        expect(seeded.status).toBe(200);
        const seedValue = await apiValue(model, SEED_PAYLOADS[model]);
        expect(seeded.text).toContain(expectedHeadline(model, seedValue));
        if (model === "classifier") {
            expect(seeded.text).toMatch(/Will (churn|stay)/);
            expect(seeded.text).toContain(`Class ${seedValue}`);
        } else {
            expect(seeded.text).toMatch(/-?\d+\.\d{2} %/);
        }
        await shot(page, `self-signed-${model}-02-result`);

        // Other valid values, typed and picked like a user would.
        let typed: Record<string, unknown>;
        if (model === "classifier") {
            typed = { monthly_fee: 250.5, customer_age: 71, support_calls: 9 };
            await page.locator("#monthly_fee").fill("250.5");
            await page.locator("#customer_age").fill("71");
            await page.locator("#support_calls").fill("9");
        } else {
            typed = { CustomerType: "Individual", BranchSubCounty: "Westlands", ProductCategoryName: "Desserts", QuantityOrdered: 3, PaymentDate: "2026-05-01" };
            await page.locator("#CustomerType").selectOption("Individual");
            await page.locator("#BranchSubCounty").selectOption("Westlands");
            await page.locator("#ProductCategoryName").selectOption("Desserts");
            await page.locator("#QuantityOrdered").fill("3");
            await page.locator("#PaymentDate").fill("2026-05-01");
        }
        const typedRun = await submit(page, model, "result");
        expect(typedRun.status).toBe(200);
        expect(typedRun.text).toContain(expectedHeadline(model, await apiValue(model, typed)));
        await shot(page, `self-signed-${model}-03-typed-result`);

        // Second run: bad values get a readable error that names the field.
        const badValues: Array<[string, string]> = model === "classifier" ? [["monthly_fee", "abc"]] : [["QuantityOrdered", "0"], ["QuantityOrdered", "-3"], ["QuantityOrdered", "abc"]];
        const good = await page.locator(`#${badValues[0][0]}`).inputValue();
        for (const [index, [field, value]] of badValues.entries()) {
            await page.locator(`#${field}`).fill(value);
            const rejected = await submit(page, model, "error");
            expect(rejected.status).toBe(400);
            expect(rejected.text).toMatch(new RegExp(`^Validation error — ${field}: \\S.*`));
            expect(rejected.text).not.toMatch(/[{}]|undefined|\[object|HTTP 400/);
            expect(await page.locator("#error").getAttribute("role")).toBe("alert");
            expect(await page.locator(`#${field}`).getAttribute("aria-invalid")).toBe("true");
            await shot(page, `self-signed-${model}-04-error-${index + 1}`);
        }
        // Correcting the value clears the error and the mark.
        await page.locator(`#${badValues[0][0]}`).fill(good);
        const corrected = await submit(page, model, "result");
        expect(corrected.status).toBe(200);
        expect(await page.locator(`#${badValues[0][0]}`).getAttribute("aria-invalid")).toBeNull();
        await shot(page, `self-signed-${model}-05-corrected`);

        expect(problems.filter((p) => !isExpectedRejection(p, origin, model))).toEqual([]);
        expect(problems.filter((p) => isExpectedRejection(p, origin, model))).toHaveLength(badValues.length);
        await page.close();
    });
});

describe("local CA: a browser that trusts the CA, as a user would, gets no certificate warning", () => {
    let topo: Topology;
    let trusted: { browser: Browser; home: string };
    let untrusted: { browser: Browser; home: string };

    beforeAll(async () => {
        topo = await startTopology({ replicas: 1, config: { tlsMode: "local-ca" } });
        topologies.push(topo);
        // The CA goes into the NSS database of the user running the browser, before it starts.
        [trusted, untrusted] = await Promise.all([browserWithHome(topo.trustFile), browserWithHome()]);
    });

    test("both certificate names load and a prediction works without ignoring certificate errors; without the CA they fail", async () => {
        expect(topo.tls.trustPem).not.toBe(topo.tls.certPem);
        expect(trustedCaFlags(trusted.home)).toBe("C,,");

        const context = await trusted.browser.newContext({ ignoreHTTPSErrors: false });
        for (const host of ["127.0.0.1", "localhost"]) {
            const { page, problems } = await watchedPage(context);
            const securityState = await trackSecurityState(context, page);
            const origin = `https://${host}:${topo.httpsPort}`;
            const response = await page.goto(`${origin}/`);
            expectPageHeaders(response, await response!.allHeaders());
            const security = await response!.securityDetails();
            expect(security?.issuer).toBe(`${topo.settings.certSubject.organization} local CA`);
            expect(["TLS 1.2", "TLS 1.3"]).toContain(security?.protocol);
            // The lock: Chromium itself judges the connection secure, with no certificate issue.
            const state = await securityState();
            expect(state.securityState).toBe("secure");
            expect(state.securityStateIssueIds).toEqual([]);
            expect(state.certificateSecurityState?.certificateNetworkError).toBeUndefined();
            expect(state.certificateSecurityState?.issuer).toBe(security?.issuer);
            await shot(page, `local-ca-${host}-01-overview`);

            if (host === "localhost") {
                await follow(page, PAGES.classifier.link, PAGES.classifier.file);
                await formReady(page);
                const answer = await submit(page, "classifier", "result");
                expect(answer.status).toBe(200);
                expect(answer.text).toMatch(/Will (churn|stay)/);
                await shot(page, `local-ca-${host}-02-result`);
            }
            expect(problems).toEqual([]);
            await page.close();
        }
        await context.close();

        // Negative control: the same browser without the CA in its NSS database is stopped by the warning.
        expect(trustedCaFlags(untrusted.home)).toBeUndefined();
        const plain = await untrusted.browser.newContext({ ignoreHTTPSErrors: false });
        for (const host of ["127.0.0.1", "localhost"]) {
            const page = await plain.newPage();
            await expect(page.goto(`https://${host}:${topo.httpsPort}/`)).rejects.toThrow(/net::ERR_CERT_AUTHORITY_INVALID/);
            await shot(page, `local-ca-${host}-03-untrusted-warning`);
            await page.close();
        }
        await plain.close();
    });
});
