// The mock provider is as strict as the real ones: each value below is one the
// real tls or docker provider (or the Docker engine behind it) refuses, set on
// the inputs the program really gives that resource. Each must be refused by
// the rules, and a program that gives such a value must fail under the mocks.
import { PROXY_FILES } from "../../components/layout";
import { providerProblems, CHECKED_TYPES, goDurationString, goStdBase64Length, parseGoDuration, shortDur } from "../support/providerRules";
import { ProgramRun, ProviderRefusal, plainDeep, runProgram, RESOURCE_TYPES as T } from "./program";

jest.setTimeout(60_000);

const role = (run: ProgramRun, name: string) =>
    run.ofType(T.container).find((c) => c.inputs.labels.some((l: any) => l.label === "mlapi.role" && l.value === name))!;

/** A recorded resource's inputs as the provider sees them (a copy, secrets unwrapped). */
const inputsOf = (resource: { inputs: Record<string, any> }): Record<string, any> => plainDeep(resource.inputs);

let defaults: ProgramRun;
let localCa: ProgramRun;
let swarm: Record<string, { type: string; inputs: Record<string, any> }>;
beforeAll(async () => {
    defaults = await runProgram();
    localCa = await runProgram({ tlsMode: "local-ca", keyAlgorithm: "ECDSA-P256" });
    swarm = await registered(swarmSpec);
});

/**
 * Registers resources with the real @pulumi/docker SDK under Pulumi's mocks
 * and returns each one's inputs as the mock provider receives them (so the
 * provider resource's JSON-encoded registryAuth, a Secret's secret data).
 */
async function registered(build: (pulumi: any, docker: any) => { urn: any }[]): Promise<Record<string, { type: string; inputs: Record<string, any> }>> {
    const seen: Record<string, { type: string; inputs: Record<string, any> }> = {};
    await jest.isolateModulesAsync(async () => {
        const pulumi = await import("@pulumi/pulumi");
        await pulumi.runtime.setMocks(
            {
                newResource: (args) => {
                    seen[args.name] = { type: args.type, inputs: plainDeep(args.inputs) };
                    return { id: `${args.name}-id`, state: args.inputs };
                },
                call: (args) => args.inputs,
            },
            "swarm-rules",
            "test",
            false,
        );
        const docker = await import("@pulumi/docker");
        const resources = build(pulumi, docker);
        await Promise.all(resources.map((r) => new Promise((resolve) => r.urn.apply(resolve))));
    });
    return seen;
}

const DIGEST = `sha256:${"3f".repeat(32)}`;

/** A Swarm-mode deployment the provider and a Docker 20.10 swarm accept: every rule below starts from it. */
function swarmSpec(pulumi: any, docker: any) {
    const provider = new docker.Provider("swarm-provider", {
        host: "unix:///var/run/docker.sock",
        registryAuth: [{ address: "localhost:5000", username: "ci", password: pulumi.secret("registry-password") }],
    });
    const opts = { provider };
    const secret = new docker.Secret("tls-key", { name: "mlapi-tls-key-3f2a9c1", data: pulumi.secret(Buffer.from("-----BEGIN PRIVATE KEY-----\n").toString("base64")) }, opts);
    const config = new docker.ServiceConfig("nginx-conf", { name: "mlapi-nginx-conf-7d01be4", data: Buffer.from("events {}\n").toString("base64"), labels: [{ label: "mlapi.role", value: "proxy" }] }, opts);
    const network = new docker.Network("swarm-net", { name: "mlapi-swarm", driver: "overlay", attachable: true }, opts);
    const service = new docker.Service(
        "app-service",
        {
            name: "mlapi-dev-app",
            labels: [{ label: "mlapi.role", value: "app" }],
            taskSpec: {
                containerSpec: {
                    image: `localhost:5000/mlapi-app@${DIGEST}`,
                    commands: ["python3", "-m", "mlapi"],
                    user: "10001:10001",
                    readOnly: true,
                    capDrops: ["ALL"],
                    capAdds: ["CAP_NET_BIND_SERVICE"],
                    stopSignal: "SIGTERM",
                    stopGracePeriod: "10s",
                    healthcheck: { tests: ["CMD", "python3", "-m", "mlapi.healthcheck"], interval: "10s", timeout: "3s", startPeriod: "5s", retries: 3 },
                    mounts: [
                        { type: "tmpfs", target: "/tmp", tmpfsOptions: { sizeBytes: 16 * 1024 * 1024 } },
                        { type: "volume", source: "mlapi-models", target: "/models", readOnly: true },
                    ],
                    secrets: [{ secretId: secret.id, secretName: secret.name, fileName: "tls.key", fileMode: 0o400 }],
                    configs: [{ configId: config.id, configName: config.name, fileName: "/etc/nginx/nginx.conf" }],
                    hosts: [{ host: "registry.local", ip: "10.213.77.5" }],
                },
                networksAdvanceds: [{ id: network.id, aliases: ["app"] }],
                resources: { limits: { nanoCpus: 500_000_000, memoryBytes: 256 * 1024 * 1024 }, reservation: { memoryBytes: 64 * 1024 * 1024 } },
                restartPolicy: { condition: "on-failure", delay: "5s", maxAttempts: 3, window: "1m" },
                placement: { constraints: ["node.role==manager"], prefs: ["node.labels.zone"], maxReplicas: 2 },
            },
            mode: { replicated: { replicas: 2 } },
            updateConfig: { parallelism: 1, delay: "5s", failureAction: "rollback", monitor: "10s", maxFailureRatio: "0.5", order: "start-first" },
            rollbackConfig: { parallelism: 1, delay: "0s", failureAction: "pause", monitor: "10s", maxFailureRatio: "0.0", order: "stop-first" },
            endpointSpec: { mode: "vip", ports: [{ targetPort: 8443, publishedPort: 443, protocol: "tcp", publishMode: "ingress" }] },
            convergeConfig: { delay: "7s", timeout: "3m" },
        },
        opts,
    );
    // DNS round robin with a host-mode port: swarmkit accepts it (only ingress ports are refused with dnsrr).
    const dnsrr = new docker.Service(
        "dnsrr-service",
        {
            name: "mlapi-dev-proxy",
            taskSpec: { containerSpec: { image: `nginx:1.27@${DIGEST}` }, networksAdvanceds: [{ id: network.id }] },
            mode: { global: true },
            endpointSpec: { mode: "dnsrr", ports: [{ targetPort: 8443, publishedPort: 443, publishMode: "host" }] },
        },
        opts,
    );
    const rawConfig = new docker.ServiceConfig("raw-conf", { name: "mlapi-raw-conf-1", dataRaw: "worker_processes 1;\n" }, opts);
    return [provider, secret, config, network, service, dnsrr, rawConfig];
}

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

/** The Swarm-mode resources of swarmSpec, by resource name (a copy each time). */
const ofSwarm = (name: string) => () => ({ type: swarm[name].type, inputs: structuredClone(swarm[name].inputs) });
const service = ofSwarm("app-service");
const dnsrrService = ofSwarm("dnsrr-service");
const secret = ofSwarm("tls-key");
const config = ofSwarm("nginx-conf");
const rawConfig = ofSwarm("raw-conf");
const provider = ofSwarm("swarm-provider");

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
    ["upload with an owner (Docker 20.10 cannot resolve it)", loader, (i) => (keyUpload(i).owner = "33"), /upload\[3\]\.owner: Unable to upload volume content.*getent unable to find entry/],
    ["upload with a group", loader, (i) => (keyUpload(i).group = "33"), /upload\[3\]\.group: Unable to upload/],
    ["upload permissions without the leading 0", loader, (i) => (keyUpload(i).permissions = "640"), /upload\[3\]\.permissions: "640" must match/],
    ["upload permissions as a number", loader, (i) => (keyUpload(i).permissions = 0o640), /upload\[3\]\.permissions: 416 must match/],
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
    // docker.Service: the schema's Required and ValidateDiagFunc
    ["service without a name", service, (i) => delete i.name, /^name: The argument "name" is required/m],
    ["service without a task spec", service, (i) => delete i.taskSpec, /task_spec: The argument "task_spec" is required/],
    ["service without an image", service, (i) => delete i.taskSpec.containerSpec.image, /task_spec\.container_spec\.image: The argument "image" is required/],
    ["update delay without a unit", service, (i) => (i.updateConfig.delay = "5"), /update_config\.delay: '5' is not a valid duration/],
    ["negative update monitor", service, (i) => (i.updateConfig.monitor = "-5s"), /update_config\.monitor: '-5s' duration must not be negative/],
    ["converge delay in words", service, (i) => (i.convergeConfig.delay = "7 seconds"), /converge_config\.delay: '7 seconds' is not a valid duration/],
    ["negative converge timeout", service, (i) => (i.convergeConfig.timeout = "-3m"), /converge_config\.timeout: '-3m' duration must not be negative/],
    ["healthcheck interval without a unit", service, (i) => (i.taskSpec.containerSpec.healthcheck.interval = "10"), /healthcheck\.interval: '10' is not a valid duration/],
    ["healthcheck timeout below a millisecond", service, (i) => (i.taskSpec.containerSpec.healthcheck.timeout = "500us"), /healthcheck\.timeout: .*Timeout in HealthConfig cannot be less than 1ms/],
    ["healthcheck start period negative", service, (i) => (i.taskSpec.containerSpec.healthcheck.startPeriod = "-1s"), /healthcheck\.start_period: '-1s' duration must not be negative/],
    ["negative healthcheck retries", service, (i) => (i.taskSpec.containerSpec.healthcheck.retries = -1), /healthcheck\.retries: '-1' cannot be lower than 0/],
    ["healthcheck test without CMD", service, (i) => (i.taskSpec.containerSpec.healthcheck.tests = ["python3", "-m", "mlapi.healthcheck"]), /healthcheck\.test\[0\]: the engine expects "CMD", "CMD-SHELL" or "NONE" first/],
    ["a duration Docker reads back in another spelling (drift)", service, (i) => (i.updateConfig.monitor = "60s"), /update_config\.monitor: '60s' reads back from Docker as "1m"/],
    ["a healthcheck interval Docker reads back in another spelling (drift)", service, (i) => (i.taskSpec.containerSpec.healthcheck.interval = "1m0s"), /healthcheck\.interval: '1m0s' reads back from Docker as "1m"/],
    ["update order with an underscore", service, (i) => (i.updateConfig.order = "start_first"), /update_config\.order: 'start_first' doesn't match the pattern '\^\(stop-first\|start-first\)\$'/],
    ["update failure action misspelt", service, (i) => (i.updateConfig.failureAction = "roll-back"), /update_config\.failure_action: 'roll-back' doesn't match the pattern/],
    ["rollback failure action rollback", service, (i) => (i.rollbackConfig.failureAction = "rollback"), /rollback_config\.failure_action: 'rollback' doesn't match the pattern '\(pause\|continue\)'/],
    ["rollback failure action that only contains pause (passes the provider, not the daemon)", service, (i) => (i.rollbackConfig.failureAction = "pause-all"), /rollback_config\.failure_action: Error response from daemon: unrecognized update failure action pause-all/],
    ["rollback order misspelt", service, (i) => (i.rollbackConfig.order = "stop_first"), /rollback_config\.order: 'stop_first' doesn't match the pattern '\(stop-first\|start-first\)'/],
    ["max failure ratio as a percentage", service, (i) => (i.updateConfig.maxFailureRatio = "50%"), /update_config\.max_failure_ratio: '50%' is not a float/],
    ["max failure ratio above 1", service, (i) => (i.rollbackConfig.maxFailureRatio = "1.5"), /rollback_config\.max_failure_ratio: '1.5' has to be between 0.0 and 1.0/],
    ["max failure ratio as a number", service, (i) => (i.updateConfig.maxFailureRatio = 0.5), /update_config\.max_failure_ratio: '0.5' is not a string/],
    ["max failure ratio with two decimals (drift)", service, (i) => (i.updateConfig.maxFailureRatio = "0.25"), /max_failure_ratio: '0.25' reads back from Docker as "0.2"/],
    ["negative parallelism", service, (i) => (i.updateConfig.parallelism = -1), /update_config\.parallelism: '-1' cannot be lower than 0/],
    ["endpoint mode in capitals", service, (i) => (i.endpointSpec.mode = "VIP"), /endpoint_spec\.mode: 'VIP' doesn't match the pattern '\^\(vip\|dnsrr\)\$'/],
    ["an ingress port with dnsrr", service, (i) => (i.endpointSpec.mode = "dnsrr"), /endpoint_spec\.ports\[0\]: .*port published with ingress mode can't be used with dnsrr mode/],
    ["a port with the default (ingress) publish mode and dnsrr", dnsrrService, (i) => delete i.endpointSpec.ports[0].publishMode, /ports\[0\]: .*ingress mode can't be used with dnsrr mode/],
    ["port protocol in capitals", service, (i) => (i.endpointSpec.ports[0].protocol = "TCP"), /endpoint_spec\.ports\[0\]\.protocol: 'TCP' doesn't match the pattern '\^\(tcp\|udp\|sctp\)\$'/],
    ["publish mode misspelt", service, (i) => (i.endpointSpec.ports[0].publishMode = "routing-mesh"), /ports\[0\]\.publish_mode: 'routing-mesh' doesn't match the pattern '\^\(host\|ingress\)\$'/],
    ["port without a target", service, (i) => delete i.endpointSpec.ports[0].targetPort, /ports\[0\]\.target_port: The argument "target_port" is required/],
    ["two ports published on one port", service, (i) => i.endpointSpec.ports.push({ targetPort: 8080, publishedPort: 443, protocol: "tcp", publishMode: "ingress" }), /ports\[1\]: .*duplicate published ports provided/],
    ["restart condition always (the container word)", service, (i) => (i.taskSpec.restartPolicy.condition = "always"), /restart_policy\.condition: 'always' doesn't match the pattern '\^\(none\|on-failure\|any\)\$'/],
    ["negative restart attempts", service, (i) => (i.taskSpec.restartPolicy.maxAttempts = -1), /restart_policy\.max_attempts: '-1' cannot be lower than 0/],
    ["restart window in words", service, (i) => (i.taskSpec.restartPolicy.window = "a minute"), /restart_policy\.window: 'a minute' is not a valid duration/],
    ["negative max replicas per node", service, (i) => (i.taskSpec.placement.maxReplicas = -1), /placement\.max_replicas: '-1' cannot be lower than 0/],
    ["placement constraint with one =", service, (i) => (i.taskSpec.placement.constraints = ["node.role=manager"]), /placement\.constraints\[0\]: .*constraint expected one operator from ==, !=/],
    ["placement preference with the CLI's spread= prefix", service, (i) => (i.taskSpec.placement.prefs = ["spread=node.labels.zone"]), /placement\.prefs\[0\]: "spread=node\.labels\.zone" is not a spread descriptor the scheduler uses/],
    ["mount type npipe", service, (i) => (i.taskSpec.containerSpec.mounts[1].type = "npipe"), /mounts\[1\]\.type: 'npipe' doesn't match the pattern '\^\(bind\|volume\|tmpfs\)\$'/],
    ["bind mount without a source", service, (i) => i.taskSpec.containerSpec.mounts.push({ type: "bind", target: "/etc/mlapi" }), /mounts\[2\]: task rejected: invalid mount config for type "bind": field Source must not be empty/],
    ["tmpfs mount with a source", service, (i) => (i.taskSpec.containerSpec.mounts[0].source = "scratch"), /mounts\[0\]: task rejected: invalid mount config for type "tmpfs": field Source must not be specified/],
    ["two mounts on one target", service, (i) => (i.taskSpec.containerSpec.mounts[1].target = "/tmp"), /mounts\[1\]: .*duplicate mount point: \/tmp/],
    ["bind propagation misspelt", service, (i) => i.taskSpec.containerSpec.mounts.push({ type: "bind", source: "/srv", target: "/srv", bindOptions: { propagation: "private-r" } }), /mounts\[2\]\.bind_options\.propagation: 'private-r' doesn't match/],
    ["CPU limit below a thousandth of a CPU", service, (i) => (i.taskSpec.resources.limits.nanoCpus = 1000), /resources\.limits\.nano_cpus: .*invalid cpu value 0.000001: Must be at least 0.001/],
    ["memory reservation below 4 MiB", service, (i) => (i.taskSpec.resources.reservation.memoryBytes = 1024 * 1024), /resources\.reservation\.memory_bytes: .*invalid memory value 1048576: Must be at least 4MiB/],
    ["memory limit as a string", service, (i) => (i.taskSpec.resources.limits.memoryBytes = "256m"), /resources\.limits\.memory_bytes: expected a whole number/],
    ["generic resource without =", service, (i) => (i.taskSpec.resources.reservation.genericResources = { discreteResourcesSpecs: ["gpu"] }), /discrete_resources_spec\[0\]: "gpu" must be KIND=<integer>/],
    ["a network given by name (deprecated: a warning on every up)", service, (i) => (i.taskSpec.networksAdvanceds[0] = { name: "mlapi-swarm" }), /networks_advanced\[0\]\.name: Argument is deprecated: Use the id attribute/],
    ["a network with neither id nor name", service, (i) => (i.taskSpec.networksAdvanceds[0] = { aliases: ["app"] }), /networks_advanced\[0\]: network 'name' or 'id' must be specified/],
    ["the ingress network attached explicitly", service, (i) => (i.taskSpec.networksAdvanceds[0].id = "ingress"), /Service cannot be explicitly attached to the ingress network/],
    ["global mode with a converge config", dnsrrService, (i) => (i.convergeConfig = { delay: "7s", timeout: "3m" }), /converge_config: "converge_config": conflicts with mode\.0\.global/],
    ["global: false beside replicated (ConflictsWith sees the explicit false)", service, (i) => (i.mode.global = false), /mode\.global: "mode\.0\.global": conflicts with mode\.0\.replicated/],
    ["negative replicas", service, (i) => (i.mode.replicated.replicas = -1), /mode\.replicated\.replicas: '-1' cannot be lower than 0/],
    ["a secret reference without the secret's name", service, (i) => delete i.taskSpec.containerSpec.secrets[0].secretName, /secrets\[0\]\.secret_name: .*malformed secret reference/],
    ["a secret reference without its id", service, (i) => delete i.taskSpec.containerSpec.secrets[0].secretId, /secrets\[0\]\.secret_id: The argument "secret_id" is required/],
    ["a config reference without a file name", service, (i) => delete i.taskSpec.containerSpec.configs[0].fileName, /configs\[0\]\.file_name: The argument "file_name" is required/],
    ["a config reference without the config's name", service, (i) => delete i.taskSpec.containerSpec.configs[0].configName, /configs\[0\]\.config_name: .*malformed config reference/],
    ["two secrets on one file", service, (i) => i.taskSpec.containerSpec.secrets.push({ ...i.taskSpec.containerSpec.secrets[0], secretId: "other-id", secretName: "other" }), /secrets\[1\]: .*secret references 'mlapi-tls-key-3f2a9c1' and 'other' have a conflicting target: 'tls.key'/],
    ["negative secret file mode", service, (i) => (i.taskSpec.containerSpec.secrets[0].fileMode = -1), /secrets\[0\]\.file_mode: '-1' cannot be lower than 0/],
    ["an unknown capability", service, (i) => (i.taskSpec.containerSpec.capAdds = ["CAP_NET_BIND"]), /cap_add\[0\]: task rejected: .*unknown capability: "CAP_NET_BIND"/],
    ["an unknown capability to drop, without the prefix", service, (i) => (i.taskSpec.containerSpec.capDrops = ["net_bind"]), /cap_drop\[0\]: .*unknown capability: "CAP_NET_BIND"/],
    ["isolation misspelt", service, (i) => (i.taskSpec.containerSpec.isolation = "hyper-v"), /isolation: 'hyper-v' doesn't match/],
    ["runtime plugin with a container spec", service, (i) => (i.taskSpec.runtime = "plugin"), /task_spec\.runtime: mismatched runtime with container spec/],
    ["negative force_update", service, (i) => (i.taskSpec.forceUpdate = -1), /force_update: '-1' cannot be lower than 0/],
    ["stop grace period without a unit", service, (i) => (i.taskSpec.containerSpec.stopGracePeriod = "10"), /stop_grace_period: '10' is not a valid duration/],
    ["extra host that is not an IP", service, (i) => (i.taskSpec.containerSpec.hosts[0].ip = "registry"), /hosts\[0\]\.ip: "registry" is not an IP address/],
    ["an image that is not a reference (upper case)", service, (i) => (i.taskSpec.containerSpec.image = "localhost:5000/MLAPI-app:1"), /image: .*"localhost:5000\/MLAPI-app:1" is not a valid repository\/tag/],
    ["an image without a tag (the client adds :latest: drift)", service, (i) => (i.taskSpec.containerSpec.image = "localhost:5000/mlapi-app"), /image: "localhost:5000\/mlapi-app" reads back from Docker as "localhost:5000\/mlapi-app:latest"/],
    ["an image with docker.io/library (the client shortens it: drift)", service, (i) => (i.taskSpec.containerSpec.image = `docker.io/library/nginx:1.27@${DIGEST}`), /reads back from Docker as "nginx:1\.27@sha256:/],
    ["an image ID (docker.Image's repoDigest when it does not push)", service, (i) => (i.taskSpec.containerSpec.image = DIGEST), /image: "sha256:3f3f.*" is an image ID, not a pushed image: Swarm nodes never pull an image given by ID/],
    ["an image by tag only (pinned at create, unpinned at the next update)", service, (i) => (i.taskSpec.containerSpec.image = "localhost:5000/mlapi-app:1"), /image: "localhost:5000\/mlapi-app:1" is pinned to its registry digest when the service is created/],
    ["a service name with a dot", service, (i) => (i.name = "mlapi.app"), /^name: .*name must be valid as a DNS name component/m],
    ["a service name of 64 characters", service, (i) => (i.name = "a".repeat(64)), /name must be 63 characters or fewer/],
    ["a service label without a value", service, (i) => delete i.labels[0].value, /labels\[0\]\.value: The argument "value" is required/],
    ["auth without a server address", service, (i) => (i.auth = { username: "ci", password: "x" }), /auth\.server_address: The argument "server_address" is required/],
    // docker.Secret
    ["secret without data", secret, (i) => delete i.data, /data: The argument "data" is required/],
    ["secret without a name", secret, (i) => delete i.name, /name: The argument "name" is required/],
    ["secret data not base64", secret, (i) => (i.data = "-----BEGIN PRIVATE KEY-----"), /data: '<sensitive value>' is not base64 decodeable/],
    ["secret data URL-safe base64 (the provider decodes the standard alphabet)", secret, (i) => (i.data = Buffer.from([0xfb, 0xff, 0xbf]).toString("base64url")), /is not base64 decodeable/],
    ["secret data without its padding", secret, (i) => (i.data = "aGk"), /is not base64 decodeable/],
    ["secret data of 500 KiB", secret, (i) => (i.data = Buffer.alloc(500 * 1024).toString("base64")), /secret data must be larger than 0 and less than 512000 bytes/],
    ["secret name with a colon", secret, (i) => (i.name = "mlapi:tls-key"), /^name: .*invalid name, only 64 \[a-zA-Z0-9-_.\] characters allowed/m],
    ["secret name ending in a dash", secret, (i) => (i.name = "mlapi-tls-key-"), /invalid name, only 64/],
    ["secret name of 65 characters", secret, (i) => (i.name = "a".repeat(65)), /invalid name, only 64/],
    // docker.ServiceConfig
    ["config without data or data_raw", config, (i) => delete i.data, /"data": one of `data,data_raw` must be specified/],
    ["config with both data and data_raw", config, (i) => (i.dataRaw = "events {}"), /"data": only one of `data,data_raw` can be specified/],
    ["config data not base64", config, (i) => (i.data = "events {}"), /data: 'events \{\}' is not base64 decodeable/],
    ["config data of 1000 KiB", config, (i) => (i.data = Buffer.alloc(1000 * 1024).toString("base64")), /config data must be larger than 0 and less than 1024000 bytes/],
    ["empty raw config", rawConfig, (i) => (i.dataRaw = ""), /config data must be larger than 0/],
    ["config name with a slash", config, (i) => (i.name = "mlapi/nginx.conf"), /invalid name, only 64/],
    ["config label without a label", config, (i) => delete i.labels[0].label, /labels\[0\]\.label: The argument "label" is required/],
    // the provider resource
    ["provider host without a scheme", provider, (i) => (i.host = "/var/run/docker.sock"), /host: unable to parse docker host `\/var\/run\/docker.sock`/],
    ["provider host as a named pipe on Linux", provider, (i) => (i.host = "npipe:////./pipe/docker_engine"), /host: protocol not available/],
    ["provider host with a relative socket", provider, (i) => (i.host = "unix://docker.sock"), /host: unix socket path "docker.sock" is not absolute/],
    ["provider host with an unknown scheme", provider, (i) => (i.host = "docker://swarm-manager:2376"), /host: "docker" is not a scheme the Docker client dials/],
    ["provider tcp host without a port", provider, (i) => (i.host = "tcp://swarm-manager"), /host: "tcp:\/\/swarm-manager" has no host:port/],
    ["provider ssh host with a query", provider, (i) => (i.host = "ssh://deploy@swarm-manager?socket=x"), /host: ssh host connection is not valid/],
    ["provider with a context beside the host", provider, (i) => (i.context = "swarm"), /context: the provider uses the context's endpoint and ignores host/],
    ["provider with a client certificate but no key or CA", provider, (i) => (i.certMaterial = "-----BEGIN CERTIFICATE-----"), /certMaterial, keyMaterial, and caMaterial must all be specified/],
    ["provider with raw certificates and a cert path", provider, (i) => Object.assign(i, { certMaterial: "c", keyMaterial: "k", caMaterial: "a", certPath: "/etc/docker/certs" }), /when using raw certificates, certPath must not be specified/],
    ["registry auth with an empty address", provider, (i) => (i.registryAuth = JSON.stringify([{ address: "", username: "ci", password: "x" }])), /registry_auth\[0\]\.address: expected "address" to not be an empty string/],
    ["registry auth config content that is not JSON", provider, (i) => (i.registryAuth = JSON.stringify([{ address: "localhost:5000", configFileContent: "auths: {}" }])), /registry_auth\[0\]\.config_file_content: Error loading registry auth config: Error parsing docker registry config json/],
    ["registry auth that is not JSON-encoded as the SDK sends it", provider, (i) => (i.registryAuth = "[{address: localhost}]"), /registry_auth: expected JSON/],
];

test.each(CASES)("refused: %s", (_label, pick, mutate, expected) => {
    const { type, inputs } = pick(defaults);
    expect(providerProblems(type, inputs)).toEqual([]);
    mutate(inputs);
    expect(providerProblems(type, inputs).join("\n")).toMatch(expected);
});

test("a resource type without rules is refused, so a new resource cannot bypass them", () => {
    expect(providerProblems("docker:index/plugin:Plugin", { name: "x" })).toEqual([expect.stringContaining("no provider rules")]);
});

describe("Swarm mode", () => {
    test("the Swarm-mode resources arrive as the SDK sends them (the provider's nested inputs JSON-encoded, a secret's data unwrapped)", () => {
        expect(Object.fromEntries(Object.entries(swarm).map(([name, r]) => [name, r.type]))).toEqual({
            "swarm-provider": "pulumi:providers:docker",
            "tls-key": "docker:index/secret:Secret",
            "nginx-conf": "docker:index/serviceConfig:ServiceConfig",
            "raw-conf": "docker:index/serviceConfig:ServiceConfig",
            "swarm-net": "docker:index/network:Network",
            "app-service": "docker:index/service:Service",
            "dnsrr-service": "docker:index/service:Service",
        });
        expect(typeof swarm["swarm-provider"].inputs.registryAuth).toBe("string");
        expect(typeof swarm["tls-key"].inputs.data).toBe("string");
        expect(swarm["app-service"].inputs.taskSpec.containerSpec.secrets[0]).toMatchObject({ secretId: "tls-key-id", secretName: "mlapi-tls-key-3f2a9c1" });
    });

    test("a good Swarm spec passes every rule, as does DNS round robin with a host-mode port", () => {
        for (const [name, r] of Object.entries(swarm)) {
            expect(CHECKED_TYPES).toContain(r.type);
            expect([name, providerProblems(r.type, r.inputs)]).toEqual([name, []]);
        }
    });

    test("the provider's defaults and the SDK's encodings pass: no host (the provider defaults it), ssh with options", () => {
        const { type, inputs } = provider();
        expect(providerProblems(type, { ...inputs, host: undefined })).toEqual([]);
        expect(providerProblems("pulumi:providers:docker", { host: "ssh://deploy@swarm-manager:2222", sshOpts: JSON.stringify(["-o", "StrictHostKeyChecking=yes"]) })).toEqual([]);
        expect(providerProblems("pulumi:providers:docker", { host: "tcp://10.213.77.2:2376", certMaterial: "c", keyMaterial: "k", caMaterial: "a" })).toEqual([]);
    });

    test("capabilities are accepted in any spelling the engine normalizes (a service reads them back as given: no drift)", () => {
        const { type, inputs } = service();
        inputs.taskSpec.containerSpec.capAdds = ["NET_BIND_SERVICE", "cap_chown", "CAP_SETUID"];
        inputs.taskSpec.containerSpec.capDrops = ["all"];
        expect(providerProblems(type, inputs)).toEqual([]);
    });

    test("secrets and configs at the size limits: just under passes", () => {
        const s = secret();
        s.inputs.data = Buffer.alloc(500 * 1024 - 1).toString("base64");
        expect(providerProblems(s.type, s.inputs)).toEqual([]);
        const c = config();
        c.inputs.data = Buffer.alloc(1000 * 1024 - 1).toString("base64");
        expect(providerProblems(c.type, c.inputs)).toEqual([]);
        // Go's decoder skips line breaks, as in `base64 -w 76` output.
        c.inputs.data = Buffer.from("x".repeat(200)).toString("base64").replace(/(.{76})/g, "$1\n");
        expect(providerProblems(c.type, c.inputs)).toEqual([]);
    });

    test("Go's durations and the provider's shortDur, as Docker reads them back", () => {
        expect(["0", "5s", "1m30s", "1.5h", "300ms", "2h45m", ".5s", "1µs", "1us"].map(parseGoDuration)).toEqual([0, 5e9, 90e9, 5.4e12, 3e8, 9.9e12, 5e8, 1e3, 1e3]);
        expect(["5", "", "s", "1d", "5 s", "1.s5"].map(parseGoDuration)).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
        expect([0, 1500, 3e8, 1.5e9, 60e9, 90e9, 3.6e12, 5.4e12].map(goDurationString)).toEqual(["0s", "1.5µs", "300ms", "1.5s", "1m0s", "1m30s", "1h0m0s", "1h30m0s"]);
        expect([60e9, 3.6e12, 5.4e12, 3.6e12 + 5e9, 0].map(shortDur)).toEqual(["1m", "1h", "1h30m", "1h0m5s", "0s"]);
        expect(["aGk=", "aGk", "aG=k", "a+/=", "a-_=", "", "aGk=\r\n"].map(goStdBase64Length)).toEqual([2, undefined, undefined, 2, undefined, 0, 2]);
    });
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
        await expect(runProgram()).rejects.toThrow(/upload\[3\]\.owner: Unable to upload volume content/);
    });
});
