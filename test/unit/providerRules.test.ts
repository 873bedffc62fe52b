// The mock provider is as strict as the real ones: each value below is one the
// real tls or docker provider (or the Docker engine behind it) refuses, set on
// the inputs the program really gives that resource. Each must be refused by
// the rules, and a program that gives such a value must fail under the mocks.
import { PROXY_FILES } from "../../components/layout";
import { providerProblems, CHECKED_TYPES } from "../support/providerRules";
import { ProgramRun, ProviderRefusal, plainDeep, runProgram, RESOURCE_TYPES as T } from "./program";

jest.setTimeout(60_000);

const role = (run: ProgramRun, name: string) =>
    run.ofType(T.container).find((c) => c.inputs.labels.some((l: any) => l.label === "mlapi.role" && l.value === name))!;

/** A recorded resource's inputs as the provider sees them (a copy, secrets unwrapped). */
const inputsOf = (resource: { inputs: Record<string, any> }): Record<string, any> => plainDeep(resource.inputs);

let defaults: ProgramRun;
let localCa: ProgramRun;
beforeAll(async () => {
    defaults = await runProgram();
    localCa = await runProgram({ tlsMode: "local-ca", keyAlgorithm: "ECDSA-P256" });
});

test("every resource the program registers passes its provider's rules, in every TLS mode", () => {
    for (const run of [defaults, localCa]) {
        for (const r of run.resources.filter((r) => !r.type.startsWith("mlapi:"))) {
            expect(CHECKED_TYPES).toContain(r.type);
            expect([r.name, providerProblems(r.type, inputsOf(r))]).toEqual([r.name, []]);
        }
    }
});

type Case = [label: string, pick: (run: ProgramRun) => { type: string; inputs: Record<string, any> }, mutate: (i: Record<string, any>) => void, expected: RegExp];

const server = (run: ProgramRun) => ({ type: T.selfSigned, inputs: inputsOf(run.ofType(T.selfSigned)[0]) });
const key = (run: ProgramRun) => ({ type: T.key, inputs: inputsOf(run.ofType(T.key)[0]) });
const caSigned = (run: ProgramRun) => ({ type: T.locallySigned, inputs: inputsOf(run.ofType(T.locallySigned)[0]) });
const csr = (run: ProgramRun) => ({ type: T.csr, inputs: inputsOf(run.ofType(T.csr)[0]) });
const app = (run: ProgramRun) => ({ type: T.container, inputs: inputsOf(role(run, "app")) });
const proxy = (run: ProgramRun) => ({ type: T.container, inputs: inputsOf(role(run, "proxy")) });
const ports = (run: ProgramRun) => ({ type: T.container, inputs: inputsOf(role(run, "proxy-ports")) });
const loader = (run: ProgramRun) => ({ type: T.container, inputs: inputsOf(role(run, "proxy-install")) });
const network = (run: ProgramRun) => ({ type: T.network, inputs: inputsOf(run.ofType(T.network).find((n) => n.inputs.internal)!) });
const image = (run: ProgramRun) => ({ type: T.image, inputs: inputsOf(run.ofType(T.image)[0]) });

const caCert = () => ({ type: T.selfSigned, inputs: inputsOf(localCa.ofType(T.selfSigned).find((c) => c.inputs.isCaCertificate)!) });

const keyUpload = (i: Record<string, any>) => i.uploads.find((u: any) => u.file === PROXY_FILES.certificateKey);

const CASES: Case[] = [
    // tls
    ["key usage in camelCase (serverAuth)", server, (i) => (i.allowedUses = ["serverAuth", "digital_signature"]), /allowed_uses\[0\] value must be one of: \[.*"server_auth".*\], got: "serverAuth"/],
    ["key usage in camelCase (keyEncipherment)", server, (i) => (i.allowedUses[2] = "keyEncipherment"), /allowed_uses\[2\] value must be one of.*got: "keyEncipherment"/],
    ["CA usage in camelCase (certSigning)", caCert, (i) => (i.allowedUses = ["certSigning"]), /got: "certSigning"/],
    ["CA-signed usage in camelCase (digitalSignature)", () => caSigned(localCa), (i) => (i.allowedUses = ["digitalSignature"]), /got: "digitalSignature"/],
    ["no allowed uses", server, (i) => delete i.allowedUses, /"allowed_uses" is required/],
    ["negative validity", server, (i) => (i.validityPeriodHours = -1), /validity_period_hours value must be at least 0/],
    ["validity as a string", server, (i) => (i.validityPeriodHours = "2160"), /validity_period_hours: expected a whole number/],
    ["negative early renewal", server, (i) => (i.earlyRenewalHours = -24), /early_renewal_hours value must be at least 0/],
    ["max path length below -1", caCert, (i) => (i.maxPathLength = -2), /max_path_length value must be at least -1/],
    ["an IP address that does not parse", server, (i) => (i.ipAddresses = ["127.0.0.300"]), /Invalid IP address. Failed to parse "127.0.0.300"/],
    ["an empty IP address", () => csr(localCa), (i) => (i.ipAddresses = [""]), /ip_addresses\[0\].*at least 1 character/],
    ["no private key", server, (i) => delete i.privateKeyPem, /"private_key_pem" is required/],
    ["a certificate where the CA key belongs", () => caSigned(localCa), (i) => (i.certRequestPem = "not a pem"), /Failed to parse certificate request PEM/],
    ["key algorithm in lower case", key, (i) => (i.algorithm = "rsa"), /algorithm value must be one of: \["RSA" "ECDSA" "ED25519"\], got: "rsa"/],
    ["ECDSA curve with a dash (P-256)", key, (i) => Object.assign(i, { algorithm: "ECDSA", ecdsaCurve: "P-256" }), /ecdsa_curve value must be one of: \["P224" "P256" "P384" "P521"\], got: "P-256"/],
    ["RSA key below 1024 bits", key, (i) => (i.rsaBits = 512), /rsa_bits value must be at least 1024/],
    // docker.Container
    ["upload with an owner (Docker 20.10 cannot resolve it)", loader, (i) => (keyUpload(i).owner = "33"), /upload\[2\]\.owner: Unable to upload volume content.*getent unable to find entry/],
    ["upload with a group", loader, (i) => (keyUpload(i).group = "33"), /upload\[2\]\.group: Unable to upload/],
    ["upload permissions without the leading 0", loader, (i) => (keyUpload(i).permissions = "640"), /upload\[2\]\.permissions: "640" must match/],
    ["upload permissions as a number", loader, (i) => (keyUpload(i).permissions = 0o640), /upload\[2\]\.permissions: 416 must match/],
    ["upload with two contents", loader, (i) => (keyUpload(i).contentBase64 = "aGk="), /exactly one of 'content', 'content_base64', or 'source'/],
    ["uploads into a read-only root filesystem", loader, (i) => (i.readOnly = true), /container rootfs is marked read-only/],
    ["restart policy misspelt", app, (i) => (i.restart = "unless_stopped"), /restart: "unless_stopped" must match/],
    ["healthcheck interval without a unit", app, (i) => (i.healthcheck.interval = "10"), /healthcheck.interval: '10' is not a valid duration/],
    ["negative healthcheck timeout", app, (i) => (i.healthcheck.timeout = "-3s"), /healthcheck.timeout: '-3s' duration must not be negative/],
    ["healthcheck start period in words", app, (i) => (i.healthcheck.startPeriod = "5 seconds"), /healthcheck.start_period: '5 seconds' is not a valid duration/],
    ["negative retries", app, (i) => (i.healthcheck.retries = -1), /healthcheck.retries value must be at least 0/],
    ["healthcheck test not starting with CMD", app, (i) => (i.healthcheck.tests = ["python3", "-m", "mlapi.healthcheck"]), /healthcheck.test\[0\]: the engine expects "CMD"/],
    ["wait without a healthcheck", app, (i) => delete i.healthcheck, /wait: you have supplied a 'wait' argument/],
    ["port above 65535", ports, (i) => (i.ports[0].external = 70000), /ports\[0\]\.external value must be between 0 and 65535/],
    ["internal port 0", ports, (i) => (i.ports[1].internal = 0), /ports\[1\]\.internal value must be between 1 and 65535/],
    ["port protocol in capitals", ports, (i) => (i.ports[0].protocol = "TCP"), /ports\[0\]\.protocol: "TCP" is not a protocol/],
    ["port bound to a host name", ports, (i) => (i.ports[0].ip = "localhost"), /ports\[0\]\.ip: "localhost" is not an IP address/],
    ["fixed address that is not IPv4", app, (i) => (i.networksAdvanced[0].ipv4Address = "10.213.77.300"), /networks_advanced\[0\]\.ipv4_address/],
    ["network without a name", app, (i) => delete i.networksAdvanced[0].name, /networks_advanced\[0\]\.name: The argument "name" is required/],
    ["mount type misspelt", proxy, (i) => (i.mounts[0].type = "volumes"), /mounts\[0\]\.type: "volumes" must match/],
    ["swap below -1", app, (i) => (i.memorySwap = -2), /memory_swap value must be at least -1/],
    ["memory in megabytes as a string", app, (i) => (i.memory = "256m"), /memory: expected a whole number/],
    ["ulimit soft above hard", app, (i) => (i.ulimits[0].soft = i.ulimits[0].hard + 1), /ulimit\[0\]: the soft limit is above the hard limit/],
    ["ports on the Nginx container, which joins the holder's network namespace", proxy, (i) => (i.ports = [{ internal: 8443, external: 443, ip: "127.0.0.1", protocol: "tcp" }]), /conflicting options: port publishing and the container type network mode/],
    ["a host name on the Nginx container", proxy, (i) => (i.hostname = "proxy"), /conflicting options: hostname and the network mode/],
    ["networks on the Nginx container", proxy, (i) => (i.networksAdvanced = [{ name: "mlapi-dev-app" }]), /conflicting options: networks and the container type network mode/],
    ["unknown stop signal", proxy, (i) => (i.stopSignal = "SIGGRACEFUL"), /stop_signal: "SIGGRACEFUL" is not a signal/],
    ["security option with the deprecated ':' separator", app, (i) => (i.securityOpts = ["no-new-privileges:true"]), /security_opts\[0\]: "no-new-privileges:true" is not a security option/],
    ["capability in lower case", app, (i) => (i.capabilities.drops = ["all"]), /capabilities.drop\[0\]: "all" is not a capability name/],
    ["added capability without its CAP_ prefix (drift on refresh)", app, (i) => (i.capabilities.adds = ["CHOWN"]), /capabilities.add\[0\]: "CHOWN" reads back from Docker as CAP_<NAME>/],
    ["label without a value", app, (i) => delete i.labels[0].value, /labels\[0\]\.value: The argument "value" is required/],
    ["container without an image", app, (i) => delete i.image, /"image" is required/],
    // docker.Network
    ["subnet that does not parse", network, (i) => (i.ipamConfigs[0].subnet = "10.213.77.0"), /ipam_config\[0\]\.subnet: invalid CIDR address/],
    ["address range outside the subnet", network, (i) => (i.ipamConfigs[0].ipRange = "10.214.0.0/28"), /ip-range 10.214.0.0\/28 is not in subnet/],
    // docker.Image
    ["Dockerfile relative to the context instead of the working directory", image, (i) => (i.build.dockerfile = "Dockerfile"), /could not open dockerfile at relative path "Dockerfile". Try setting `dockerfile` to "(app|nginx)\/Dockerfile"/],
    ["build context that does not exist", image, (i) => (i.build.context = "no-such-dir"), /build.context: error resolving context/],
    ["platform without the OS", image, (i) => (i.build.platform = "amd64"), /build.platform: "amd64" is not a platform/],
    ["unknown builder version", image, (i) => (i.build.builderVersion = "BuildKit"), /builder_version value must be one of: \["BuilderV1" "BuilderBuildKit"\]/],
];

test.each(CASES)("refused: %s", (_label, pick, mutate, expected) => {
    const { type, inputs } = pick(defaults);
    expect(providerProblems(type, inputs)).toEqual([]);
    mutate(inputs);
    expect(providerProblems(type, inputs).join("\n")).toMatch(expected);
});

test("a resource type without rules is refused, so a new resource cannot bypass them", () => {
    expect(providerProblems("docker:index/service:Service", { name: "x" })).toEqual([expect.stringContaining("no provider rules")]);
});

describe("the program under mocks fails on a value the real provider refuses", () => {
    afterEach(() => {
        // resetModules keeps factories given to doMock: drop them too.
        for (const module of ["../../components/certificate", "../../components/proxyConfig"]) jest.dontMock(module);
        jest.resetModules();
    });

    test("camelCase key usages (the first real `pulumi up`'s first fault)", async () => {
        jest.doMock("../../components/certificate", () => ({
            ...jest.requireActual("../../components/certificate"),
            serverCertUses: () => ["serverAuth", "digitalSignature", "keyEncipherment"],
        }));
        await expect(runProgram()).rejects.toThrow(ProviderRefusal);
        await expect(runProgram()).rejects.toThrow(/allowed_uses\[0\] value must be one of.*got: "serverAuth"/);
    });

    test("an upload owner (the first real `pulumi up`'s second fault)", async () => {
        jest.doMock("../../components/proxyConfig", () => {
            const actual = jest.requireActual("../../components/proxyConfig");
            // What the program did before: the key owned by Nginx's user.
            class NginxConfig extends actual.NginxConfig {
                constructor(...args: any[]) {
                    super(...args);
                    this.uploads = this.uploads.map((u: any) => (u.file === PROXY_FILES.certificateKey ? { ...u, owner: "33", group: "33" } : u));
                }
            }
            return { ...actual, NginxConfig };
        });
        await expect(runProgram()).rejects.toThrow(/upload\[2\]\.owner: Unable to upload volume content/);
    });
});
