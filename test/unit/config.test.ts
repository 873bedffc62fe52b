// Every bad value stops the program with a message naming the key, the value
// and what is allowed; the defaults reproduce the tutorial's stack.
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import { RunError } from "@pulumi/pulumi";
import { CONFIG_KEYS, ConfigError, DEFAULTS, hostImagePlatform, parseSettings } from "../../components/config";

const parse = (values: Record<string, unknown>) => parseSettings((key) => values[key], "https-ml-api:");

function problemsOf(values: Record<string, unknown>): string[] {
    try {
        parse(values);
    } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as ConfigError).problems;
    }
    throw new Error(`expected ${JSON.stringify(values)} to be rejected`);
}

test("no config gives the tutorial's stack", () => {
    expect(parse({})).toEqual(DEFAULTS);
    expect(DEFAULTS).toMatchObject({ replicas: 2, keyAlgorithm: "RSA-2048", certValidityDays: 90, bindAddress: "127.0.0.1", httpsPort: 443, httpPort: 80 });
});

test("values arrive as strings, numbers or lists", () => {
    const settings = parse({ replicas: "4", httpsPort: 8443, certDnsNames: ["a.example", "b.example"], certIpAddresses: "127.0.0.1, ::1", keyAlgorithm: "ECDSA-P256" });
    expect(settings).toMatchObject({ replicas: 4, httpsPort: 8443, certDnsNames: ["a.example", "b.example"], certIpAddresses: ["127.0.0.1", "::1"], keyAlgorithm: "ECDSA-P256" });
});

test.each([
    [{ replicas: "0" }, 'https-ml-api:replicas is "0": expected a whole number from 1 to 32'],
    [{ replicas: "-1" }, 'https-ml-api:replicas is "-1": expected a whole number from 1 to 32'],
    [{ replicas: "2.5" }, 'https-ml-api:replicas is "2.5": expected a whole number from 1 to 32'],
    [{ replicas: "two" }, 'https-ml-api:replicas is "two": expected a whole number from 1 to 32'],
    [{ replicas: 2.5 }, "https-ml-api:replicas is 2.5: expected a whole number from 1 to 32"],
    [{ httpsPort: "0" }, 'https-ml-api:httpsPort is "0": expected a whole number from 1 to 65535'],
    [{ httpPort: "70000" }, 'https-ml-api:httpPort is "70000": expected a whole number from 1 to 65535'],
    [{ keyAlgorithm: "DSA-1024" }, 'https-ml-api:keyAlgorithm is "DSA-1024": expected one of RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384'],
    [{ keyAlgorithm: "rsa-2048" }, 'https-ml-api:keyAlgorithm is "rsa-2048": expected one of RSA-2048'],
    [{ certIpAddresses: "127.0.0.300" }, 'https-ml-api:certIpAddresses has "127.0.0.300": expected an IPv4 or IPv6 address'],
    [{ certDnsNames: "local_host" }, 'https-ml-api:certDnsNames has "local_host": expected a DNS name'],
    [{ certDnsNames: '["-bad.example"]' }, 'https-ml-api:certDnsNames has "-bad.example": expected a DNS name'],
    [{ certValidityDays: "30", certRenewalDays: "30" }, "https-ml-api:certRenewalDays is 30 but https-ml-api:certValidityDays is 30: the renewal window must be shorter than the validity"],
    [{ certValidityDays: "10" }, "https-ml-api:certRenewalDays is 30 but https-ml-api:certValidityDays is 10"],
    [{ bindAddress: "localhost" }, 'https-ml-api:bindAddress is "localhost": expected an IPv4 or IPv6 address'],
    [{ tlsMode: "letsencrypt" }, 'https-ml-api:tlsMode is "letsencrypt": expected one of self-signed, local-ca, csr, provided'],
    [{ tlsMode: "provided" }, "https-ml-api:tlsCertificatePem is not set"],
    [{ tlsCertificatePem: "hello" }, 'https-ml-api:tlsCertificatePem is "hello": expected a PEM certificate'],
    [{ certCountry: "Kenya" }, 'https-ml-api:certCountry is "Kenya": expected a two-letter ISO 3166 country code'],
    [{ baseImage: "Debian Trixie" }, 'https-ml-api:baseImage is "Debian Trixie": expected an image reference'],
    [{ imagePlatform: "amd64" }, 'https-ml-api:imagePlatform is "amd64": expected a Linux platform of the Docker engine such as linux/amd64'],
    [{ imagePlatform: "windows/amd64" }, 'https-ml-api:imagePlatform is "windows/amd64": expected a Linux platform'],
    [{ appSubnet: "8.8.8.0/24" }, 'https-ml-api:appSubnet is "8.8.8.0/24": expected a private (RFC 1918) subnet'],
    [{ appSubnet: "10.0.0.1/24" }, "the address has host bits set"],
    // 32 addresses, 3 Docker's own, 2 for the proxy and a spare: 13 replicas, each with room for its successor.
    [{ appSubnet: "10.0.0.0/27", replicas: "14" }, "https-ml-api:replicas is 14 but https-ml-api:appSubnet 10.0.0.0/27 has room for 13 replicas"],
    [{ appSubnet: "10.0.0.0/28" }, 'https-ml-api:appSubnet is "10.0.0.0/28": expected a prefix length from /16 to /27'],
    [{ httpsPort: "8080", httpPort: "8080" }, "https-ml-api:httpsPort and https-ml-api:httpPort are both 8080"],
    [{ certDnsNames: "", certIpAddresses: "" }, "are both empty"],
    [{ operatorPort: "443" }, "https-ml-api:operatorPort and https-ml-api:httpsPort are both 443: expected a port of its own"],
    [{ httpPort: "9180" }, "https-ml-api:operatorPort and https-ml-api:httpPort are both 9180"],
    [{ operatorPort: "-1" }, 'https-ml-api:operatorPort is "-1": expected a whole number from 0 to 65535'],
    [{ engineSocket: "docker.sock" }, 'https-ml-api:engineSocket is "docker.sock": expected the absolute path of the Docker engine\'s socket on its host'],
    [{ engineSocket: "unix:///var/run/docker.sock" }, "expected the absolute path of the Docker engine's socket"],
    [{ buildCaCertFile: "/nonexistent/ca.pem" }, 'https-ml-api:buildCaCertFile is "/nonexistent/ca.pem": expected the path of a readable PEM file'],
    [{ proxyWorkers: "-1" }, 'https-ml-api:proxyWorkers is "-1": expected a whole number from 0 to 64'],
    [{ appWorkers: "65" }, 'https-ml-api:appWorkers is "65": expected a whole number from 0 to 64'],
    [{ rateLimitPerSecond: "fast" }, 'https-ml-api:rateLimitPerSecond is "fast": expected a whole number from 1 to 1000000'],
])("%j is rejected", (values, message) => {
    expect(problemsOf(values).join("\n")).toContain(message);
});

/** The problems of a stack whose config sets exactly these keys (as `pulumi config set` would). */
function problemsOfStack(values: Record<string, unknown>): string[] {
    try {
        parseSettings((key) => values[key], "https-ml-api:", Object.keys(values));
    } catch (error) {
        return (error as ConfigError).problems;
    }
    return [];
}

const SWARM = { platform: "swarm", registryAddress: "10.0.0.5:5000" };

test("a swarm stack needs a registry, and its keys are checked", () => {
    expect(problemsOfStack(SWARM)).toEqual([]);
    expect(parse({ ...SWARM, swarmManagerHost: "ssh://admin@manager-1", proxyReplicas: "2", proxyConstraint: "node.labels.edge==true" })).toMatchObject({
        platform: "swarm",
        registryAddress: "10.0.0.5:5000",
        swarmManagerHost: "ssh://admin@manager-1",
        proxyReplicas: 2,
        proxyConstraint: "node.labels.edge==true",
        edgeAddress: "127.0.0.1",
        frontSubnet: "10.213.78.0/24",
    });
    expect(parse({ ...SWARM, frontSubnet: "10.213.76.0/24" }).frontSubnet).toBe("10.213.76.0/24");
    expect(problemsOfStack({ platform: "swarm" }).join("\n")).toContain("https-ml-api:registryAddress is not set: platform swarm pushes the images to a registry every node pulls from");
    expect(problemsOfStack({ platform: "kubernetes" }).join("\n")).toContain('https-ml-api:platform is "kubernetes": expected one of docker, swarm');
});

test.each([
    [{ registryAddress: "https://10.0.0.5:5000" }, 'https-ml-api:registryAddress is "https://10.0.0.5:5000": expected host[:port][/path] without a scheme'],
    [{ registryAddress: "10.0.0.5:99999" }, 'https-ml-api:registryAddress is "10.0.0.5:99999": expected host[:port][/path]'],
    [{ registryAddress: "registry.example/Team" }, "(lower-case path)"],
    [{ swarmManagerHost: "manager-1" }, 'https-ml-api:swarmManagerHost is "manager-1": expected a Docker endpoint such as unix:///var/run/docker.sock'],
    [{ proxyConstraint: "role=manager" }, 'https-ml-api:proxyConstraint is "role=manager": expected a Swarm placement constraint'],
    [{ proxyReplicas: "0" }, 'https-ml-api:proxyReplicas is "0": expected a whole number from 1 to 32'],
    [{ frontSubnet: "10.213.77.128/25" }, "https-ml-api:frontSubnet 10.213.77.128/25 overlaps https-ml-api:appSubnet 10.213.77.0/24: expected two separate subnets"],
    [{ frontSubnet: "10.0.0.0/16", appSubnet: "10.0.5.0/24" }, "https-ml-api:frontSubnet 10.0.0.0/16 overlaps https-ml-api:appSubnet 10.0.5.0/24"],
    [{ frontSubnet: "172.15.0.0/24" }, 'https-ml-api:frontSubnet is "172.15.0.0/24": expected a private (RFC 1918) subnet'],
    [{ registryUsername: "deploy" }, "https-ml-api:registryUsername and https-ml-api:registryPassword go together"],
    [{ registryPassword: "[secret]" }, "https-ml-api:registryUsername and https-ml-api:registryPassword go together"],
    [{ edgeAddress: "10.0.0.10" }, "https-ml-api:edgeAddress is 10.0.0.10 but the certificate names only localhost, customized-ubuntu-server-smm, 127.0.0.1: add it to https-ml-api:certIpAddresses"],
    [{ bindAddress: "0.0.0.0" }, "https-ml-api:bindAddress is set but https-ml-api:platform is swarm: it sets the host address one Docker host publishes on"],
    [{ operatorPort: "9180" }, "https-ml-api:operatorPort is set but https-ml-api:platform is swarm"],
    [{ engineSocket: "/var/run/docker.sock" }, "https-ml-api:engineSocket is set but https-ml-api:platform is swarm"],
])("swarm stack %j is rejected", (values, message) => {
    expect(problemsOfStack({ ...SWARM, ...values }).join("\n")).toContain(message);
});

test("a docker stack refuses the swarm's keys, naming what they are for", () => {
    expect(problemsOfStack({ registryAddress: "10.0.0.5:5000" })).toEqual([
        "https-ml-api:registryAddress is set but https-ml-api:platform is docker: it sets the swarm's registry, which only platform swarm has; remove it with `pulumi config rm https-ml-api:registryAddress`",
    ]);
    expect(problemsOfStack({ platform: "docker", proxyReplicas: "2" }).join("\n")).toContain("https-ml-api:proxyReplicas is set but https-ml-api:platform is docker");
});

test("every problem is reported at once", () => {
    const problems = problemsOf({ replicas: "0", httpsPort: "70000", keyAlgorithm: "X", certIpAddresses: "nope" });
    expect(problems).toHaveLength(4);
    expect(problems.map((p) => p.split(" ")[0])).toEqual([
        "https-ml-api:replicas", "https-ml-api:httpsPort", "https-ml-api:certIpAddresses", "https-ml-api:keyAlgorithm",
    ]);
});

test("a /27 holds 13 replicas and their successors", () => {
    expect(parse({ appSubnet: "10.0.0.0/27", replicas: "13" }).replicas).toBe(13);
});

test("an unknown key (a typo) is refused, with the likely key", () => {
    expect(() => parseSettings(() => undefined, "https-ml-api:", ["replica"])).toThrow(
        "https-ml-api:replica is not a setting of this stack (did you mean https-ml-api:replicas?)",
    );
    expect(() => parseSettings(() => undefined, "https-ml-api:", ["toString"])).toThrow("https-ml-api:toString is not a setting of this stack");
});

test("a key of an earlier version is refused with what replaced it", () => {
    expect(() => parseSettings(() => undefined, "https-ml-api:", ["appThreads"])).toThrow(
        "https-ml-api:appThreads is no longer a setting: each Gunicorn process now serves its connections from one gevent event loop, without threads; " +
            "appWorkers sets the processes per replica; remove it with `pulumi config rm https-ml-api:appThreads`",
    );
});

test("Pulumi.dev.yaml documents every key with its default", () => {
    const file = yaml.load(fs.readFileSync(path.resolve(__dirname, "../../Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
    const values = Object.fromEntries(Object.entries(file.config).map(([k, v]) => [k.replace(/^https-ml-api:/, ""), Array.isArray(v) ? v : String(v)]));
    // imagePlatform's default is the machine's own, so the file only mentions it in a comment.
    const withoutDefault = ["tlsCertificatePem", "tlsPrivateKeyPem", "buildCaCertFile", "imagePlatform"];
    // A docker stack refuses the swarm's keys: the file shows them in comments, with their defaults.
    const swarmOnly = ["registryAddress", "registryUsername", "registryPassword", "swarmManagerHost", "edgeAddress", "proxyReplicas", "proxyConstraint", "frontSubnet"];
    expect(Object.keys(values).sort()).toEqual(CONFIG_KEYS.filter((k) => !withoutDefault.includes(k) && !swarmOnly.includes(k)).sort());
    expect(parseSettings((key) => values[key])).toEqual(DEFAULTS);
    const text = fs.readFileSync(path.resolve(__dirname, "../../Pulumi.dev.yaml"), "utf8");
    for (const key of swarmOnly) expect(text).toMatch(new RegExp(`^  #   pulumi config set (--secret )?${key}\\b`, "m"));
    for (const key of ["edgeAddress", "proxyReplicas", "proxyConstraint", "frontSubnet"] as const) expect(text).toContain(`set ${key} ${DEFAULTS[key]} `);
});

test("the README's configuration table lists every key", () => {
    const readme = fs.readFileSync(path.resolve(__dirname, "../../README.md"), "utf8");
    const missing = CONFIG_KEYS.filter((key) => !readme.includes(`| \`${key}\` |`));
    expect(missing).toEqual([]);
});

test("a bad value is a Pulumi RunError: the CLI prints the message alone, without a stack trace", () => {
    let error: unknown;
    try {
        parse({ replicas: "two" });
    } catch (e) {
        error = e;
    }
    expect(RunError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('https-ml-api:replicas is "two": expected a whole number from 1 to 32');
});

test("the default image platform is the machine's, in Docker's names", () => {
    expect(hostImagePlatform("x64")).toBe("linux/amd64");
    expect(hostImagePlatform("arm64")).toBe("linux/arm64");
    expect(parse({ imagePlatform: "linux/arm64" }).imagePlatform).toBe("linux/arm64");
});
