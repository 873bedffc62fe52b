// Runs the real Pulumi program (index.ts) under Pulumi's mocks and records
// every resource it registers. The mock provider issues real keys and
// certificates (test/support/openssl.ts) and returns provider secrets as
// secrets, as the real tls provider does.
import * as crypto from "crypto";
import type * as pulumiType from "@pulumi/pulumi";
import { generateKey, selfSignedCert, certRequest, signCert } from "../support/openssl";
import { KeyAlgorithm } from "../../components/config";
import { certSubjectArgs } from "../../components/certificate";
import { providerProblems, TLS_KEY_USAGES } from "../support/providerRules";

export const PROJECT = "https-ml-api";
export const STACK = "dev";

/** The provider resource types the program registers, by short name. */
export const RESOURCE_TYPES = {
    key: "tls:index/privateKey:PrivateKey",
    selfSigned: "tls:index/selfSignedCert:SelfSignedCert",
    csr: "tls:index/certRequest:CertRequest",
    locallySigned: "tls:index/locallySignedCert:LocallySignedCert",
    image: "docker:index/image:Image",
    network: "docker:index/network:Network",
    volume: "docker:index/volume:Volume",
    container: "docker:index/container:Container",
    service: "docker:index/service:Service",
    secret: "docker:index/secret:Secret",
    serviceConfig: "docker:index/serviceConfig:ServiceConfig",
    dockerProvider: "pulumi:providers:docker",
};

export interface RecordedResource {
    type: string;
    name: string;
    inputs: Record<string, any>;
    state: Record<string, any>;
    /**
     * What the engine is told besides the inputs: how to replace it (the
     * deleteBeforeReplace option, and whether the program set it at all),
     * what it waits for (resource names), its provider's name if explicit.
     */
    options: { deleteBeforeReplace: boolean; deleteBeforeReplaceSet: boolean; dependencies: string[]; propertyDependencies: string[]; provider?: string };
}

export interface ProgramRun {
    resources: RecordedResource[];
    outputs: Record<string, { value: unknown; secret: boolean }>;
    ofType(type: string): RecordedResource[];
}

const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** True when a mocked input value arrived as a Pulumi secret. */
export function isSecretInput(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<string, unknown>)["4dabf18193072939515e22adb298388d"] === SECRET_SIG;
}

/** The plain value of a mocked input, secret or not. */
export function plain(value: any): any {
    return isSecretInput(value) ? value.value : value;
}

/** The inputs as the provider sees them: every secret, at any depth, unwrapped. */
export function plainDeep(value: any): any {
    const v = plain(value);
    if (Array.isArray(v)) return v.map(plainDeep);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainDeep(x)]));
    return v;
}

/** Thrown when the program gives a provider a value the real provider (or Docker) refuses. */
export class ProviderRefusal extends Error {
    constructor(readonly problems: string[]) {
        super(`the real providers would refuse this program:\n  - ${problems.join("\n  - ")}`);
    }
}

function keyAlgorithmOf(inputs: Record<string, any>): KeyAlgorithm {
    return inputs.algorithm === "RSA" ? (`RSA-${inputs.rsaBits}` as KeyAlgorithm) : (`ECDSA-${inputs.ecdsaCurve}` as KeyAlgorithm);
}


/**
 * The usages a certificate is issued with: those the provider knows. A run
 * with any other is refused by the provider rules; its certificate is still
 * made, so the program runs to its end and reports every refusal.
 */
function knownUses(uses: string[]): string[] {
    return uses.filter((u) => (TLS_KEY_USAGES as readonly string[]).includes(u));
}

/** Per docker.Image resource name, something that stands for a changed build context (see runProgram's `images`). */
let imageSalts: Record<string, string> = {};

/** The subnet of each mocked network, by Docker name, and the host number Docker hands out next in it. */
const subnets = new Map<string, string>();
const nextHost = new Map<string, number>();

/**
 * What the provider reads back of a container's networks (network_data):
 * Docker gives each attachment the next free address of the network's
 * subnet, after the gateway (host 1). Never the same one twice in a test
 * file, as no two containers share an address.
 */
function networkDatas(inputs: Record<string, any>): { networkName: string; ipAddress: string }[] {
    if (inputs.networkMode === "none") return [{ networkName: "none", ipAddress: "" }];
    // A user-defined network as the network mode: the container's one attachment.
    const mode = inputs.networkMode;
    const byMode = typeof mode === "string" && !["bridge", "host", "default"].includes(mode) && !mode.startsWith("container:") ? [{ name: mode }] : [];
    return [...byMode, ...(inputs.networksAdvanced ?? [])].map((n: { name: string }) => {
        const [base, bits] = (subnets.get(n.name) ?? "172.31.0.0/16").split("/");
        const host = nextHost.get(n.name) ?? 2;
        nextHost.set(n.name, host + 1);
        if (host >= 2 ** (32 - Number(bits)) - 1) throw new Error(`mock network ${n.name} is out of addresses`);
        const address = base.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0) + host;
        return { networkName: n.name, ipAddress: [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join(".") };
    });
}

/** Outputs the real tls provider marks secret. */
const SECRET_OUTPUTS = new Set(["privateKeyPem", "caPrivateKeyPem"]);

/** The provider state of a new resource, in plain values (secrets are wrapped by the caller). */
function mockState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    switch (type) {
        case "tls:index/privateKey:PrivateKey":
            return { ...inputs, privateKeyPem: generateKey(keyAlgorithmOf(inputs)) };
        case "tls:index/selfSignedCert:SelfSignedCert": {
            const certPem = selfSignedCert({
                keyPem: plain(inputs.privateKeyPem),
                subject: certSubjectArgs(inputs.subject),
                dnsNames: inputs.dnsNames,
                ipAddresses: inputs.ipAddresses,
                validityHours: inputs.validityPeriodHours,
                allowedUses: knownUses(inputs.allowedUses),
                isCa: inputs.isCaCertificate,
            });
            return { ...inputs, privateKeyPem: plain(inputs.privateKeyPem), certPem };
        }
        case "tls:index/certRequest:CertRequest":
            return {
                ...inputs,
                privateKeyPem: plain(inputs.privateKeyPem),
                certRequestPem: certRequest({ keyPem: plain(inputs.privateKeyPem), subject: certSubjectArgs(inputs.subject), dnsNames: inputs.dnsNames, ipAddresses: inputs.ipAddresses }),
            };
        case "tls:index/locallySignedCert:LocallySignedCert":
            return {
                ...inputs,
                caPrivateKeyPem: plain(inputs.caPrivateKeyPem),
                certPem: signCert({
                    csrPem: inputs.certRequestPem,
                    caCertPem: inputs.caCertPem,
                    caKeyPem: plain(inputs.caPrivateKeyPem),
                    validityHours: inputs.validityPeriodHours,
                    allowedUses: knownUses(inputs.allowedUses),
                }),
            };
        case "docker:index/image:Image": {
            // The build's content stands in for the context: a "new image" is a new `imageBuilds` salt.
            // Build arguments count too: the served image is built FROM the app image's ID.
            const digest = `sha256:${crypto.createHash("sha256").update(name).update(imageSalts[name] ?? "").update(JSON.stringify(inputs.build?.args ?? {})).digest("hex")}`;
            // A local image is known by its ID; a pushed one by its repository and manifest digest.
            return { ...inputs, repoDigest: inputs.skipPush === false ? `${String(inputs.imageName).replace(/:[^/:]+$/, "")}@${digest}` : digest };
        }
        case "docker:index/container:Container":
            return {
                ...inputs,
                networkDatas: networkDatas(inputs),
                // An attached one-shot container has run to its end: the deploy steps succeed under mocks.
                ...(inputs.attach ? { exitCode: 0, containerLogs: `${inputs.command?.[0]}: ok\n` } : {}),
            };
        case "docker:index/network:Network":
            subnets.set(inputs.name ?? `${name}-generated`, inputs.ipamConfigs?.[0]?.subnet ?? "172.31.0.0/16");
            return { ...inputs, name: inputs.name ?? `${name}-generated` };
        case "docker:index/volume:Volume":
            return { ...inputs, name: inputs.name ?? `${name}-generated` };
        default:
            return inputs;
    }
}

/**
 * The engine keeps a resource's state while its inputs stay the same: a
 * later run with the same inputs gets the same state (the same key and
 * certificate), so runs can be compared for what a change replaces.
 */
const states = new Map<string, Record<string, any>>();
function knownState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    const key = JSON.stringify([type, name, inputs, imageSalts[name] ?? ""]);
    if (!states.has(key)) states.set(key, mockState(type, name, inputs));
    return states.get(key)!;
}

/**
 * Records what each registration tells the engine besides the inputs (the
 * mocks' newResource does not see it): deleteBeforeReplace, the resources it
 * depends on (dependsOn and the resources behind its inputs), and those its
 * inputs' values come from, by name.
 */
function recordOptions(pulumi: typeof pulumiType, into: Map<string, RecordedResource["options"]>): void {
    const monitor = (pulumi.runtime as any).getMonitor();
    const register = monitor.registerResource.bind(monitor);
    const nameOfUrn = (urn: string) => urn.split("::").pop()!;
    monitor.registerResource = (req: any, callback: any) => {
        const byProperty: string[] = [];
        req.getPropertydependenciesMap().forEach((deps: any) => byProperty.push(...deps.getUrnsList().map(nameOfUrn)));
        const provider = req.getProvider() ? nameOfUrn(req.getProvider().split("::").slice(0, -1).join("::")) : undefined;
        into.set(`${req.getType()}::${req.getName()}`, {
            deleteBeforeReplace: req.getDeletebeforereplace(),
            deleteBeforeReplaceSet: req.getDeletebeforereplacedefined(),
            dependencies: [...new Set<string>(req.getDependenciesList().map(nameOfUrn))],
            propertyDependencies: [...new Set(byProperty)],
            ...(provider ? { provider } : {}),
        });
        return register(req, callback);
    };
}

async function resolve<T>(output: pulumiType.Output<T>): Promise<{ value: T; secret: boolean }> {
    const secret = await (output as any).isSecret;
    // The output's own promise: it rejects when a resource behind it failed.
    const value = (await (output as any).promise()) as T;
    return { value, secret };
}

/**
 * Runs index.ts with the given stack config (keys without the project
 * prefix), optionally at a given time, and with changed image builds
 * (`images`: resource name -> any string, e.g. { "images-app": "v2" }).
 */
export async function runProgram(config: Record<string, string> = {}, options: { now?: number; images?: Record<string, string>; stack?: string } = {}): Promise<ProgramRun> {
    imageSalts = options.images ?? {};
    const clock = options.now === undefined ? undefined : jest.spyOn(Date, "now").mockReturnValue(options.now);
    const resources: RecordedResource[] = [];
    const refused: string[] = [];
    const registered = new Map<string, RecordedResource["options"]>();

    let programExports: Record<string, unknown> = {};
    let pulumi!: typeof pulumiType;
    // Each isolated copy of Pulumi's runtime adds its leak reporter to process
    // "exit": room for it, so that a file of many runs warns of no leak.
    const exitListeners = process.listenerCount("exit");
    await jest.isolateModulesAsync(async () => {
        pulumi = await import("@pulumi/pulumi");
        await pulumi.runtime.setMocks(
            {
                newResource: (args) => {
                    // As strict as the real providers: every custom resource's inputs pass their rules.
                    const problems = args.custom ? providerProblems(args.type, plainDeep(args.inputs)) : [];
                    refused.push(...problems.map((p) => `${args.type} ${args.name}: ${p}`));
                    // The run fails at its end (see below) rather than here: a throw
                    // would surface from Pulumi's runtime as an unhandled rejection.
                    const state = knownState(args.type, args.name, args.inputs);
                    resources.push({ type: args.type, name: args.name, inputs: args.inputs, state, options: registered.get(`${args.type}::${args.name}`)! });
                    const returned = Object.fromEntries(
                        Object.entries(state).map(([key, value]) => [key, SECRET_OUTPUTS.has(key) && value !== undefined ? pulumi.secret(value) : value]),
                    );
                    return { id: `${args.name}-id`, state: returned };
                },
                call: (args) => args.inputs,
            },
            PROJECT,
            options.stack ?? STACK,
            false,
        );
        recordOptions(pulumi, registered);
        // After setMocks, which resets the runtime's options and config.
        pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`${PROJECT}:${k}`, v])));
        try {
            programExports = await import("../../index");
        } finally {
            clock?.mockRestore();
        }
    });
    process.setMaxListeners(process.getMaxListeners() + Math.max(0, process.listenerCount("exit") - exitListeners));
    const outputs: ProgramRun["outputs"] = {};
    try {
        // index.ts assigns its outputs to module.exports; `import()` adds them again as "default".
        for (const [key, value] of Object.entries(programExports).filter(([key]) => key !== "default")) {
            if (pulumi.Output.isInstance(value)) outputs[key] = await resolve(value as pulumiType.Output<unknown>);
            else outputs[key] = { value, secret: false };
        }
    } finally {
        // A refusal is what the real engine would have stopped on first.
        if (refused.length) throw new ProviderRefusal(refused);
    }
    return { resources, outputs, ofType: (type) => resources.filter((r) => r.type === type) };
}
