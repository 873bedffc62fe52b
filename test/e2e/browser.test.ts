// End-to-end in a real browser: Debian's headless Chromium, driven by
// playwright-core, uses the frontend Nginx serves in front of real Gunicorn
// replicas, as a person would: open the overview (which lists every model
// GET /api/v1/models serves), follow a model's link to the generic form
// (model.html?name=, built from the model's card), open the tutorial's
// /classifier.html and /regressor.html, submit the forms, read the answer or
// the error next to the field the API names. Also: no CSP violation or JS error
// on any page, and, with the local CA, a browser that trusts the CA in its
// NSS database (as a user does with certutil) gets no certificate warning.
// Screenshots of every step go to test-artifacts/browser/.
// test/e2e/frontend.test.ts checks the same pages against a stand-in API.
import * as fs from "fs";
import * as path from "path";
import { Browser, BrowserContext, Page, Response } from "playwright-core";
import { CONTENT_SECURITY_POLICY } from "../../components/nginxConfig";
import { PROJECT_ROOT, startTopology, Topology } from "./harness";
import { MODEL_PATHS, postJson, request } from "../support/http";
import { launchChromium, makeBrowserHome, trustCaForUser, trustedCaFlags } from "../support/browser";

jest.setTimeout(60_000);

const ARTIFACTS = path.join(PROJECT_ROOT, "test-artifacts", "browser");
fs.mkdirSync(ARTIFACTS, { recursive: true });

type Model = keyof typeof MODEL_PATHS;
/** The tutorial's models: their names in the catalogue and the page addresses the tutorial gives. */
const TUTORIAL: Record<Model, { name: string; page: string }> = {
    classifier: { name: "decision-tree-classifier", page: "/classifier.html" },
    regressor: { name: "decision-tree-regressor", page: "/regressor.html" },
};
const formPath = (name: string) => `/model.html?name=${encodeURIComponent(name)}`;

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

/** Waits until app.js has built the form from the model's card and wired it (it fills the curl preview). */
async function formReady(page: Page, name: string): Promise<void> {
    await page.locator("#model-page[data-ready=true]").waitFor({ state: "attached" });
    await page.locator("#prediction-form").waitFor({ state: "visible" });
    expect(await page.locator("#model-title").innerText()).toBe(name);
    await page.waitForFunction(() => (document.getElementById("curl-preview")?.textContent ?? "").includes("curl"));
}

/** Clicks Predict and waits for the API's answer and for the page to show it (result or error). */
async function submit(page: Page, model: Model, outcome: "result" | "error"): Promise<{ status: number; text: string; sent: Record<string, unknown> }> {
    const [answer] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === `/${MODEL_PATHS[model]}`),
        page.locator("#predict").click(),
    ]);
    const shown = page.locator(`#${outcome}`);
    await shown.waitFor({ state: "visible" });
    await page.locator(`#${outcome === "result" ? "error" : "result"}`).waitFor({ state: "hidden" });
    await page.waitForFunction(() => !(document.getElementById("predict") as HTMLButtonElement).disabled);
    return { status: answer.status(), text: (await shown.innerText()).replace(/\n+/g, "\n").trim(), sent: answer.request().postDataJSON() };
}

/** The catalogue's models: GET /api/v1/models answers {"models": [...]}. */
function modelsOf(catalogue: any): any[] {
    expect(Array.isArray(catalogue.models)).toBe(true);
    return catalogue.models;
}

function findModel(catalogue: any, name: string): any {
    const found = modelsOf(catalogue).find((model: any) => model?.name === name);
    if (!found) throw new Error(`${name} is not in the catalogue: ${JSON.stringify(catalogue).slice(0, 500)}`);
    return found;
}

/** What the page shows for a value the API returned: a class as it is, a number with at most 4 decimals. */
function expectedHeadline(card: any, value: unknown): string {
    return card.task === "classification" ? String(value) : Number(value).toLocaleString("en", { maximumFractionDigits: 4, useGrouping: false });
}

/** The form control of a card field, by its label (the field's name), as a user or a screen reader finds it. */
function control(page: Page, name: string) {
    return page.getByLabel(name, { exact: true });
}

/** Other valid values for every field of the card: the middle of a range, the last category, the earliest date. */
function otherValues(card: any): Record<string, string | number> {
    const values: Record<string, string | number> = {};
    for (const input of card.inputs) {
        if (input.type === "number" || input.type === "integer") {
            const [min, max] = [input.minimum ?? 0, input.maximum ?? (input.minimum ?? 0) + 10];
            const middle = (min + max) / 2;
            values[input.name] = input.type === "integer" ? Math.round(middle) : Math.round(middle * 10) / 10;
        } else if (input.type === "category") {
            const choices: string[] = input.categories ?? Object.keys(input.encoding).sort((a, b) => input.encoding[a] - input.encoding[b]);
            values[input.name] = choices[choices.length - 1];
        } else if (input.type === "date") {
            values[input.name] = input.minimum ?? "2026-05-01";
        }
    }
    return values;
}

/** Values the API must refuse, by field: below the minimum, and a fraction for a whole number. */
function badValues(card: any): Array<[string, string]> {
    const numeric = card.inputs.find((input: any) => (input.type === "number" || input.type === "integer") && typeof input.minimum === "number");
    if (!numeric) throw new Error(`${card.name} has no number field with a minimum`);
    const bad: Array<[string, string]> = [[numeric.name, String(numeric.minimum - 1)]];
    const integer = card.inputs.find((input: any) => input.type === "integer");
    if (integer) bad.push([integer.name, String((integer.minimum ?? 0) + 0.5)]);
    return bad;
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
    async function apiValue(model: Model, payload: Record<string, unknown>): Promise<unknown> {
        const response = await postJson(`${topo.httpsUrl}${MODEL_PATHS[model]}`, payload, { ca: topo.tls.trustPem });
        expect(response.status).toBe(200);
        const body = response.json();
        expect(body.prediction).toBeDefined();
        return body.prediction;
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
        // Every model the API serves is listed, with its form, endpoint and a curl example.
        const models = modelsOf((await request(`${topo.httpsUrl}api/v1/models`, { ca: topo.tls.trustPem })).json());
        expect(models.map((m) => m.name)).toEqual(expect.arrayContaining(Object.values(TUTORIAL).map((t) => t.name)));
        await page.locator("#model-list .model-card").nth(models.length - 1).waitFor();
        expect(await page.locator("#model-list .model-card").count()).toBe(models.length);
        for (const card of models) {
            const item = page.locator(`#model-list .model-card[data-model="${card.name}"]`);
            const text = await item.innerText();
            for (const part of [card.name, `version ${card.version}`, card.task, card.description, card.endpoint]) expect(text).toContain(part);
            expect(await page.getByRole("link", { name: `Open the form for ${card.name}`, exact: true }).getAttribute("href")).toBe(formPath(card.name));
            expect(await item.locator(".curl-example").innerText()).toContain(`curl --insecure -X POST ${origin}${card.endpoint}`);
        }
        expect(await page.locator("#models-error").isHidden()).toBe(true);
        await shot(page, "self-signed-01-overview");
        expect(problems).toEqual([]);
        await page.close();
    });

    test.each(["classifier", "regressor"] as const)("%s: follow the overview's link, predict with the prefilled values, then see the errors by their fields", async (model) => {
        const { page, problems } = await watchedPage(context);
        const { name } = TUTORIAL[model];
        await page.goto(topo.httpsUrl);
        const response = await follow(page, new RegExp(`^Open the form for ${name}$`), "/model.html");
        expectPageHeaders(response, await response.allHeaders());
        expect(new URL(page.url()).searchParams.get("name")).toBe(name);
        await formReady(page, name);
        // The form is the card's: one labelled control per field, the API's choices and ranges.
        const card = findModel((await request(`${topo.httpsUrl}api/v1/models`, { ca: topo.tls.trustPem })).json(), name);
        expect(await page.locator("#form-fields label").allInnerTexts()).toEqual(card.inputs.map((i: any) => i.name));
        for (const [field, property] of Object.entries<{ enum?: unknown[]; minimum?: number; maximum?: number }>(card.input_schema.properties)) {
            const input = control(page, field);
            if (property.enum) expect(await input.locator("option").allTextContents()).toEqual(property.enum.map(String));
            if (property.minimum !== undefined) expect(await input.getAttribute("min")).toBe(String(property.minimum));
            if (property.maximum !== undefined) expect(await input.getAttribute("max")).toBe(String(property.maximum));
        }
        expect(await page.locator("#result").isHidden()).toBe(true);
        expect(await page.locator("#error").isHidden()).toBe(true);
        await shot(page, `self-signed-${model}-01-form`);

        // First run: the card's examples, as prefilled; the page shows what the API answers to the same record.
        const seeded = await submit(page, model, "result");
        expect(seeded.status).toBe(200);
        expect(Object.keys(seeded.sent)).toEqual(card.inputs.map((i: any) => i.name));
        expect(seeded.text).toContain(`\n${expectedHeadline(card, await apiValue(model, seeded.sent))}\n`);
        expect(seeded.text).toContain(`version ${card.version}`);
        if (model === "classifier") expect(card.classes.map(String)).toContain(seeded.text.split("\n")[1]);
        else expect(seeded.text.split("\n")[1]).toMatch(/^-?\d+(\.\d{1,4})?$/);
        await shot(page, `self-signed-${model}-02-result`);

        // Other valid values, typed and picked like a user would.
        const typed = otherValues(card);
        for (const input of card.inputs) {
            if (input.type === "category") await control(page, input.name).selectOption(String(typed[input.name]));
            else await control(page, input.name).fill(String(typed[input.name]));
        }
        const typedRun = await submit(page, model, "result");
        expect(typedRun.status).toBe(200);
        expect(typedRun.sent).toEqual(typed);
        expect(typedRun.text).toContain(`\n${expectedHeadline(card, await apiValue(model, typed))}\n`);
        await shot(page, `self-signed-${model}-03-typed-result`);

        // Bad values: a readable summary, and the API's problem shown next to the field it names.
        const bad = badValues(card);
        for (const [index, [field, value]] of bad.entries()) {
            const good = await control(page, field).inputValue();
            await control(page, field).fill(value);
            const rejected = await submit(page, model, "error");
            expect(rejected.status).toBe(400);
            expect(rejected.text).toMatch(new RegExp(`^Validation error — ${field}: \\S.*`));
            expect(rejected.text).not.toMatch(/[{}]|undefined|\[object|HTTP 400/);
            expect(await page.locator("#error").getAttribute("role")).toBe("alert");
            expect(await control(page, field).getAttribute("aria-invalid")).toBe("true");
            const byField = page.locator(`.field[data-field="${field}"] .field-error`);
            expect(await byField.isVisible()).toBe(true);
            expect(rejected.text).toContain(`${field}: ${await byField.innerText()}`);
            await shot(page, `self-signed-${model}-04-error-${index + 1}`);
            // Correcting the value clears the error and the mark.
            await control(page, field).fill(good);
            const corrected = await submit(page, model, "result");
            expect(corrected.status).toBe(200);
            expect(await control(page, field).getAttribute("aria-invalid")).toBeNull();
            expect(await byField.isHidden()).toBe(true);
        }
        await shot(page, `self-signed-${model}-05-corrected`);

        expect(problems.filter((p) => !isExpectedRejection(p, origin, model))).toEqual([]);
        expect(problems.filter((p) => isExpectedRejection(p, origin, model))).toHaveLength(bad.length);
        await page.close();
    });

    test.each(["classifier", "regressor"] as const)("%s: the tutorial's page address opens the same form, no redirect", async (model) => {
        const { page, problems } = await watchedPage(context);
        const { name, page: address } = TUTORIAL[model];
        const response = await page.goto(`${origin}${address}`);
        expectPageHeaders(response, await response!.allHeaders());
        await formReady(page, name);
        expect(new URL(page.url()).pathname).toBe(address);
        const answer = await submit(page, model, "result");
        expect(answer.status).toBe(200);
        expect(answer.text).toContain(`\n${expectedHeadline(findModel((await request(`${topo.httpsUrl}api/v1/models`, { ca: topo.tls.trustPem })).json(), name), await apiValue(model, answer.sent))}\n`);
        expect(problems).toEqual([]);
        await page.close();
    });

    test("an unknown model name lists the models the API serves", async () => {
        const { page, problems } = await watchedPage(context);
        await page.goto(`${origin}${formPath("no-such-model")}`);
        await page.locator("#model-missing").waitFor({ state: "visible" });
        expect(await page.locator("#model-missing-text").innerText()).toContain("There is no model named “no-such-model”");
        const models = modelsOf((await request(`${topo.httpsUrl}api/v1/models`, { ca: topo.tls.trustPem })).json());
        expect(await page.locator("#model-choices a").allInnerTexts()).toEqual(models.map((m) => m.name));
        expect(await page.locator("#prediction-form").isHidden()).toBe(true);
        await shot(page, "self-signed-06-unknown-model");
        expect(problems).toEqual([]);
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
                await follow(page, new RegExp(`^Open the form for ${TUTORIAL.classifier.name}$`), "/model.html");
                await formReady(page, TUTORIAL.classifier.name);
                const answer = await submit(page, "classifier", "result");
                expect(answer.status).toBe(200);
                expect(answer.text).toMatch(/^Predicted Class\n\S+\n/i);
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
