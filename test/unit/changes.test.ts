// What each kind of change does to the resources, under mocks: the inputs of
// every resource before and after. The docker provider replaces a container
// on nearly any change of its inputs (they are ForceNew), so a resource whose
// inputs change is one the engine replaces. The proxy container must change
// only for a new proxy image; everything else reaches it through the
// one-shot install and reload steps. The engine's steps (enginePlan) show the
// order: replicas start before the config that lists them is loaded, and
// stop only after the config that drops them is.
import { DEFAULTS } from "../../components/config";
import { renewalGeneration } from "../../components/certificate";
import { describeStep, enginePlan } from "../support/enginePlan";
import { ProgramRun, plainDeep, RESOURCE_TYPES, runProgram } from "./program";

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

/** The engine's steps on containers, as lines ("create app-1", "delete app-1 (replaced)"). */
function containerSteps(before: ProgramRun, after: ProgramRun): string[] {
    return enginePlan(before.resources, after.resources)
        .filter((s) => (s.op === "delete" ? s.old : s.resource).type === RESOURCE_TYPES.container)
        .map(describeStep);
}

/**
 * What keeps traffic flowing, for any change: a replica is created (and
 * healthy: `wait`) before the install step that lists it, and deleted only
 * after the reload that dropped it; no replica is deleted before its
 * successor exists; the proxy container is never touched.
 */
function expectServingOrder(steps: string[]) {
    const [installed, reloaded] = [steps.indexOf("create proxy-install"), steps.indexOf("create proxy-reload")];
    expect(installed).toBeGreaterThan(-1);
    expect(reloaded).toBeGreaterThan(installed);
    const misplaced = steps.filter((line, i) => (/^create app-/.test(line) && i > installed) || (/^delete app-/.test(line) && i < reloaded));
    expect(misplaced).toEqual([]);
    expect(steps.filter((l) => l.includes("proxy-nginx"))).toEqual([]);
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
    const after = await runProgram(config, { now: NOW });
    const change = changes(baseline, after);
    expect(change.replaced).toEqual(expect.arrayContaining(STEPS));
    expect(change.replaced).not.toContain("proxy-nginx");
    if (config.replicas === "3") expect(change.created).toEqual(["app-3"]);
    else expect(change.deleted).toEqual(["app-2"]);
    expectServingOrder(containerSteps(baseline, after));
});

test.each([
    ["a changed limit (maxBodyKb)", { maxBodyKb: "96" }],
    ["a changed rate limit", { rateLimitPerSecond: "50" }],
])("%s: only the install and reload steps (and the app replicas, which read the limit) change", async (_label, config) => {
    const after = await runProgram(config, { now: NOW });
    const change = changes(baseline, after);
    expect(change.created).toEqual([]);
    expect(change.deleted).toEqual([]);
    expect(change.replaced.filter((n) => !n.startsWith("app-"))).toEqual(STEPS);
    expectServingOrder(containerSteps(baseline, after));
});

test("a renewed certificate: a new key and certificate, installed and reloaded; the proxy and the replicas stay", async () => {
    const after = await runProgram({}, { now: NOW + periodDays * DAY });
    const change = changes(baseline, after);
    expect(change.created.filter((n) => !n.startsWith("server-"))).toEqual([]);
    expect(change.deleted.filter((n) => !n.startsWith("server-"))).toEqual([]);
    expect(change.created.length).toBe(2);
    expect(change.replaced).toEqual(STEPS);
    expect(containerSteps(baseline, after)).toEqual(["delete proxy-reload (replaced)", "delete proxy-install (replaced)", "create proxy-install", "create proxy-reload"]);
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

test("a new app image: each replica's successor starts (one after the other) before the proxy switches to them; the old ones stop last", async () => {
    const after = await runProgram({}, { now: NOW, images: { "images-app": "v2" } });
    // The served image is rebuilt FROM the new app image. The keeper runs from the app image too; it serves no client, so it is replaced delete-then-create, in no order with the rest.
    expect(changes(baseline, after)).toEqual({ created: [], deleted: [], replaced: ["app-1", "app-2", "images-models", "proxy-install", "proxy-keeper", "proxy-reload"] });
    const steps = containerSteps(baseline, after);
    expect(steps.filter((s) => s.includes("proxy-keeper"))).toEqual(["delete proxy-keeper (replaced)", "create proxy-keeper"]);
    expect(steps.filter((s) => !s.includes("proxy-keeper"))).toEqual([
        "create app-1",
        "create app-2",
        "delete proxy-reload (replaced)",
        "delete proxy-install (replaced)",
        "create proxy-install",
        "create proxy-reload",
        "delete app-2 (replaced)",
        "delete app-1 (replaced)",
    ]);
});

test("a new app image with one replica: the new replica serves before the old one stops", async () => {
    const [one, next] = [await runProgram({ replicas: "1" }, { now: NOW }), await runProgram({ replicas: "1" }, { now: NOW, images: { "images-app": "v2" } })];
    const [oldName, newName] = [one, next].map((r) => r.resources.find((x) => x.name === "app-1")!.inputs.name);
    expect(newName).not.toBe(oldName);
    expectServingOrder(containerSteps(one, next));
});

test("a new proxy image is the one change that replaces the Nginx container: the new one starts beside the old, which stops last; the ports stay", async () => {
    const after = await runProgram({}, { now: NOW, images: { "images-proxy": "v2" } });
    expect(changes(baseline, after)).toEqual({ created: [], deleted: [], replaced: ["proxy-exporter", "proxy-install", "proxy-nginx", "proxy-reload"] });
    expect(containerSteps(baseline, after)).toEqual([
        // The exporter's address is fixed: the old one goes first (no client uses it).
        "delete proxy-exporter (replaced)",
        "create proxy-exporter",
        "delete proxy-reload (replaced)",
        "delete proxy-install (replaced)",
        "create proxy-install",
        "create proxy-nginx",
        "create proxy-reload",
        "delete proxy-nginx (replaced)",
    ]);
});

test("a new port replaces the port holder, and with it Nginx (the one change that closes the listening ports)", async () => {
    const after = await runProgram({ httpsPort: "8443" }, { now: NOW });
    expect(changes(baseline, after).replaced).toEqual(expect.arrayContaining(["proxy-ports"]));
    // Nginx runs in the holder's network namespace: the engine deletes it before the old holder.
    const steps = containerSteps(baseline, after);
    expect(steps.indexOf("delete proxy-nginx (replaced)")).toBeGreaterThan(-1);
    expect(steps.indexOf("delete proxy-nginx (replaced)")).toBeLessThan(steps.indexOf("delete proxy-ports (replaced)"));
    expect(steps.indexOf("create proxy-ports")).toBeLessThan(steps.indexOf("create proxy-nginx"));
});
