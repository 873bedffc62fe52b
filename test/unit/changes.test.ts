// What each kind of change does to the resources, under mocks: the inputs of
// every resource before and after. The docker provider replaces a container
// on nearly any change of its inputs (they are ForceNew), so a resource whose
// inputs change is one the engine replaces. The proxy container must change
// only for a new proxy image; everything else reaches it through the
// one-shot install and reload steps.
import { DEFAULTS } from "../../components/config";
import { renewalGeneration } from "../../components/certificate";
import { ProgramRun, plainDeep, runProgram } from "./program";

jest.setTimeout(120_000);

const DAY = 24 * 3600 * 1000;
const periodDays = DEFAULTS.certValidityDays - DEFAULTS.certRenewalDays;
/** The start of a renewal generation, so a day later is the same one. */
const NOW = (renewalGeneration(Date.UTC(2026, 11, 1), DEFAULTS) + 1) * periodDays * DAY;

/** Every custom resource's inputs (secrets unwrapped), by resource name. */
function inputsByName(run: ProgramRun): Map<string, string> {
    return new Map(run.resources.filter((r) => !r.type.startsWith("mlapi:")).map((r) => [r.name, JSON.stringify(plainDeep(r.inputs))]));
}

/** Resources created, deleted, or whose inputs changed (replaced) from one run to the next. */
function changes(before: ProgramRun, after: ProgramRun) {
    const [a, b] = [inputsByName(before), inputsByName(after)];
    return {
        created: [...b.keys()].filter((n) => !a.has(n)).sort(),
        deleted: [...a.keys()].filter((n) => !b.has(n)).sort(),
        replaced: [...b.keys()].filter((n) => a.has(n) && a.get(n) !== b.get(n)).sort(),
    };
}

let baseline: ProgramRun;
beforeAll(async () => {
    baseline = await runProgram({}, { now: NOW });
});

afterEach(() => {
    // resetModules keeps factories given to doMock: drop them too.
    for (const module of ["../../components/proxyConfig"]) jest.dontMock(module);
    jest.resetModules();
});

const STEPS = ["proxy-install", "proxy-reload"];

test("the same stack a day later changes nothing", async () => {
    expect(changes(baseline, await runProgram({}, { now: NOW + DAY }))).toEqual({ created: [], deleted: [], replaced: [] });
});

test.each([
    ["replicas 2 -> 3", { replicas: "3" }],
    ["replicas 2 -> 1", { replicas: "1" }],
])("%s: replicas come and go, the new config is installed and reloaded, the proxy stays", async (_label, config) => {
    const change = changes(baseline, await runProgram(config, { now: NOW }));
    expect(change.replaced).toEqual(expect.arrayContaining(STEPS));
    expect(change.replaced).not.toContain("proxy-nginx");
    if (config.replicas === "3") expect(change.created).toEqual(["app-3"]);
    else expect(change.deleted).toEqual(["app-2"]);
});

test.each([
    ["a changed limit (maxBodyKb)", { maxBodyKb: "96" }],
    ["a changed rate limit", { rateLimitPerSecond: "50" }],
])("%s: only the install and reload steps (and the app replicas, which read the limit) change", async (_label, config) => {
    const change = changes(baseline, await runProgram(config, { now: NOW }));
    expect(change.created).toEqual([]);
    expect(change.deleted).toEqual([]);
    expect(change.replaced.filter((n) => !n.startsWith("app-"))).toEqual(STEPS);
});

test("a renewed certificate: a new key and certificate, installed and reloaded; the proxy and the replicas stay", async () => {
    const change = changes(baseline, await runProgram({}, { now: NOW + periodDays * DAY }));
    expect(change.created.filter((n) => !n.startsWith("server-"))).toEqual([]);
    expect(change.deleted.filter((n) => !n.startsWith("server-"))).toEqual([]);
    expect(change.created.length).toBe(2);
    expect(change.replaced).toEqual(STEPS);
});

test("a changed frontend file: only the install and reload steps change", async () => {
    jest.doMock("../../components/proxyConfig", () => {
        const actual = jest.requireActual("../../components/proxyConfig");
        return {
            ...actual,
            frontendFiles: () => actual.frontendFiles().map((f: any) => (f.path === "index.html" ? { ...f, content: `${f.content}<!-- changed -->` } : f)),
        };
    });
    expect(changes(baseline, await runProgram({}, { now: NOW }))).toEqual({ created: [], deleted: [], replaced: STEPS });
});

test("a new app image: the replicas are replaced (one after the other), the proxy stays", async () => {
    const change = changes(baseline, await runProgram({}, { now: NOW, images: { "images-app": "v2" } }));
    expect(change).toEqual({ created: [], deleted: [], replaced: ["app-1", "app-2"] });
});

test("a new proxy image is the one change that replaces the proxy container (and re-runs both steps)", async () => {
    const change = changes(baseline, await runProgram({}, { now: NOW, images: { "images-proxy": "v2" } }));
    expect(change).toEqual({ created: [], deleted: [], replaced: ["proxy-install", "proxy-nginx", "proxy-reload"] });
});
