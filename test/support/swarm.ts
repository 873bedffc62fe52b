// A real multi-node Docker Swarm on this one machine, for the swarm tests:
// N Docker daemons, each in its own network namespace, joined by veth pairs
// to one host bridge on a private subnet, plus a registry (Debian's
// `docker-registry`) in a namespace of its own that every node pulls from:
// HTTPS with a CA made per swarm, and basic auth with a random password.
//
// Everything a cluster makes is named by one id: namespaces
// `mlswarm-<id>-n<i>` and `mlswarm-<id>-reg`, links `mlswarm<id>b` (the
// bridge) and `mlswarm<id>h<i>` (host ends of the veths), the iptables rule
// commented `mlswarm-<id>`, cgroups `mlswarm-<id>-n<i>` (each daemon's
// cgroup-parent), the directory `<tmp>/mlswarm-<id>` (data roots, exec
// roots, sockets, configs, logs, the CLI's config, the registry's storage,
// keys and certificates) and the registry's CA in
// `/etc/docker/certs.d/<address:port>/`, marked by a file `mlswarm-<id>` beside
// its ca.crt (docker reads only *.crt, *.cert and *.key there). teardown()
// removes all of it; sweepSwarms() removes whatever an earlier run whose
// process is gone left behind (a crash, a SIGKILL), so it never poisons the
// next one.
//
// What this machine needs (checked by swarmProblems()): root, dockerd,
// docker-proxy, nsenter, ip, iptables, docker-registry, skopeo, openssl and
// perl (Debian packages docker.io, util-linux, iproute2, iptables,
// docker-registry, skopeo, openssl, perl-base), and a host Docker engine
// holding the images to push.
//
// Why it is made this way:
// - daemons start under `nsenter --net=...`, not `ip netns exec`, which
//   remounts /sys in a new mount namespace and hides the cgroup mounts
//   ("Devices cgroup isn't mounted"). So the daemons share the host's mount
//   namespace: their overlay and nsfs mounts are visible here and are
//   unmounted by teardown when a daemon could not do it itself;
// - `--bridge none --iptables=false`: the node daemons never touch the host's
//   firewall or docker0; the only rule made is one ACCEPT within the bridge
//   in DOCKER-USER, since the host engine's FORWARD policy is DROP and bridged
//   traffic goes through iptables here. With no default bridge, a task only
//   has a network (and a `mode=host` published port only gets its
//   docker-proxy) when the service joins an overlay network;
// - the node namespaces have no default route: their tasks reach nothing but
//   the bridge's subnet; all traffic stays on this machine;
// - this kernel has no IPVS: Swarm's virtual IPs and the ingress routing
//   mesh do not work, `--endpoint-mode dnsrr` and `mode=host` ports do;
// - every daemon reports this machine's hostname: nodes are told apart by
//   their ID and the node label `mlswarm.node=n<i>`, never by hostname;
// - the registry's CA goes in /etc/docker/certs.d/<address:port>/ca.crt:
//   every daemon here (the host engine and the nodes share /etc/docker) reads
//   that directory on each connection, so all of them trust the registry
//   without a restart, and no daemon lists it in insecure-registries (the
//   host engine's config is never touched);
// - the htpasswd line is bcrypt made by libcrypt through perl's crypt()
//   (perl-base is always there; apache2-utils' htpasswd and python's
//   deprecated crypt module may not be);
// - images go from the host engine to the registry with `skopeo copy
//   docker-daemon:... docker://...` (measured: 4.4 s for the 174 MB app
//   image, against 17 s for `docker save` into a node daemon, `docker load`
//   and `docker push` from there); the host engine's own `docker push` works
//   too (the CA is in certs.d), as the Pulumi program's docker.Image uses it;
// - Swarm's ports between the namespaces (2377/tcp, 7946/tcp+udp, 4789/udp
//   VXLAN) need nothing beyond the one bridge rule; the veths keep MTU 1500,
//   so the overlay's 1450 fits;
// - measured here (3 nodes, the 174 MB app image): create 2-2.5 s, push of
//   the app and base images 5-9 s, teardown 3-5 s with `tmpfsSize` (2-12 s
//   more on this machine's disk, deleting the pulled layers).
import { ChildProcess, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { docker, dockerAsync } from "./docker";
import { EngineEvent, EngineRestart } from "./engineRestart";
import { request } from "./http";
import { killPids, sleep, startGroup, stopGroup, waitFor } from "./processes";

export const SWARM_PREFIX = "mlswarm";
/** The node label that names each node (n0, n1, ...): the only reliable way to tell them apart. */
export const NODE_LABEL = "mlswarm.node";
export const REGISTRY_PORT = 5000;
export const REGISTRY_USER = "mlswarm";
/** Where every Docker daemon on this machine looks up a registry's CA, per connection. */
const CERTS_DIR = "/etc/docker/certs.d";
/** The underlay subnets are 10.231.X.0/24; overlay networks come from this pool instead. */
const UNDERLAY_PREFIX = "10.231";
export const OVERLAY_ADDRESS_POOL = "10.232.0.0/16";
const HOST_OCTET = 1;
const REGISTRY_OCTET = 5;
const NODE_OCTET_BASE = 11;
const CGROUP_ROOT = "/sys/fs/cgroup";
const NETNS_DIR = "/var/run/netns";

/** Program and package for every command the harness runs. */
const TOOLS: Record<string, string> = {
    dockerd: "docker.io",
    "docker-proxy": "docker.io",
    docker: "docker.io",
    nsenter: "util-linux",
    ip: "iproute2",
    iptables: "iptables",
    "docker-registry": "docker-registry",
    skopeo: "skopeo",
    openssl: "openssl",
    perl: "perl-base",
    mount: "mount",
    umount: "mount",
};

export interface SwarmOptions {
    /** Daemons in the swarm (default 3). */
    nodes?: number;
    /** How many of them are managers (default 1; n0 .. n<managers-1>). */
    managers?: number;
    /**
     * Puts the cluster's directory (data roots, registry storage) on a tmpfs of
     * this size (e.g. "4g"): faster pulls and a teardown that does not wait on
     * deleting every layer from disk, for memory.
     */
    tmpfsSize?: string;
    /** Seconds a daemon gets to stop after SIGTERM before SIGKILL (default 20). */
    stopGraceSeconds?: number;
}

export interface SwarmNode {
    /** n0, n1, ...: also its `mlswarm.node` label. */
    name: string;
    role: "manager" | "worker";
    /** Its address on the bridge (advertise and data-path address). */
    address: string;
    netns: string;
    /** `unix://...`, for `docker -H`. */
    host: string;
    dir: string;
    /** Swarm node ID. */
    id: string;
    pid: number;
}

export interface Swarm {
    id: string;
    dir: string;
    bridge: string;
    subnet: string;
    /** The host's own address on the bridge. */
    hostAddress: string;
    /**
     * `address:port` of the registry, as image references name it. It serves
     * HTTPS with a certificate of `registryCaPem`'s, which every daemon here
     * (the host engine too) trusts from /etc/docker/certs.d, and wants
     * `registryAuth`. The host engine pushes to it as docker.Image does
     * (`registry: { server: registry, ...registryAuth }`), or from its CLI with
     * a config directory of the caller's own, never ~/.docker:
     * `docker --config <dir> login --username <u> --password-stdin <registry>`
     * (the password on stdin), then `docker --config <dir> push <registry>/<repo>:<tag>`
     * (DOCKER_CONFIG=<dir> does the same as --config).
     */
    registry: string;
    /** The swarm's own CA (PEM), issuer of the registry's certificate. */
    registryCaPem: string;
    /** The registry's only user and its random password. */
    registryAuth: { username: string; password: string };
    /**
     * The docker CLI config directory `docker()` and `dockerAsync()` use: logged
     * in to the registry (through the manager), so `service create
     * --with-registry-auth` and `pull` on any node send the credentials.
     */
    dockerConfig: string;
    nodes: SwarmNode[];
    manager: SwarmNode;
    /** `docker --config <dockerConfig> -H <node> ...args`, synchronously (trimmed stdout; throws with stderr). */
    docker(node: SwarmNode, args: string[], input?: string | Buffer): string;
    /** The same, without blocking the event loop. */
    dockerAsync(node: SwarmNode, args: string[]): Promise<string>;
    /** Copies `hostImage` from the host engine to the registry as `name` (repo:tag); returns the reference nodes pull. */
    pushImage(hostImage: string, name: string): Promise<string>;
    /**
     * Stops one node's daemon by its PID (a node loss): SIGTERM stops it as an
     * operator would, SIGKILL as a crash would (its tasks' processes are left
     * to teardown). Resolves once the daemon has exited.
     */
    stopNode(node: SwarmNode, signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
    /**
     * Does one event of a host's life to a node's engine, as engineRestart.ts
     * does to the host's: "graceful" (SIGTERM, as systemctl restart does),
     * "crash" (its dockerd and containerd killed) or "reboot" (those, its
     * docker-proxies, shims and every container process killed); then starts
     * its daemon again with the same command line. Resolves once it answers.
     */
    restartNode(node: SwarmNode, event: EngineEvent): Promise<EngineRestart>;
    /** Seconds each phase of createSwarm took. */
    timings: Record<string, number>;
    /** Stops and removes everything; never throws for one step, throws at the end with what is left. Idempotent. */
    teardown(): Promise<TeardownReport>;
}

export interface TeardownReport {
    seconds: number;
    /** Seconds from the start of the teardown at which each step ended. */
    phases: Record<string, number>;
    /** Daemons that needed SIGKILL. */
    killed: string[];
    /** What remained afterwards (empty when clean). */
    leftovers: string[];
    errors: string[];
}

function run(command: string, args: string[], options: { input?: string; allowFail?: boolean; timeoutMs?: number } = {}): { code: number; stdout: string; stderr: string } {
    const result = spawnSync(command, args, { input: options.input, encoding: "utf8", timeout: options.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 });
    const code = result.status ?? -1;
    if (code !== 0 && !options.allowFail) {
        throw new Error(`${command} ${args.join(" ")} failed (${result.status ?? result.signal}): ${(result.stderr || String(result.error ?? "")).trim()}`);
    }
    return { code, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

function onPath(program: string): boolean {
    return run("sh", ["-c", `command -v ${program}`], { allowFail: true }).code === 0;
}

/** Why a swarm cannot be made here (undefined when it can): not root, a missing program (with its Debian package), no host engine. */
export function swarmProblems(): string | undefined {
    if (process.platform !== "linux") return "needs Linux (network namespaces)";
    if (process.getuid?.() !== 0) return "needs root (network namespaces, veths, iptables, dockerd)";
    const missing = Object.entries(TOOLS).filter(([program]) => !onPath(program));
    if (missing.length) return `missing ${missing.map(([p, pkg]) => `${p} (Debian package ${pkg})`).join(", ")}`;
    if (run("docker", ["info"], { allowFail: true, timeoutMs: 20_000 }).code !== 0) return "no host Docker engine answers (docker info failed)";
    return undefined;
}

const names = (id: string) => ({
    dir: path.join(os.tmpdir(), `${SWARM_PREFIX}-${id}`),
    bridge: `${SWARM_PREFIX}${id}b`,
    hostVeth: (n: string) => `${SWARM_PREFIX}${id}h${n}`,
    peerVeth: (n: string) => `${SWARM_PREFIX}${id}p${n}`,
    netns: (n: string) => `${SWARM_PREFIX}-${id}-${n}`,
    cgroup: (n: string) => `${SWARM_PREFIX}-${id}-${n}`,
    comment: `${SWARM_PREFIX}-${id}`,
    caMarker: `${SWARM_PREFIX}-${id}`,
});

/** The chain the bridge rule goes in: DOCKER-USER when the host engine made it (it jumps there before its DROP), else FORWARD. */
function forwardChain(): string {
    return run("iptables", ["-S", "DOCKER-USER"], { allowFail: true }).code === 0 ? "DOCKER-USER" : "FORWARD";
}

function bridgeRule(id: string): string[] {
    const n = names(id);
    return ["-i", n.bridge, "-o", n.bridge, "-m", "comment", "--comment", n.comment, "-j", "ACCEPT"];
}

/** A free 10.231.X.0/24: no route of the host's falls in it. */
function freeSubnet(): string {
    const routes = run("ip", ["-4", "route", "show"]).stdout;
    for (let attempt = 0; attempt < 64; attempt++) {
        const x = crypto.randomInt(0, 256);
        if (!routes.includes(`${UNDERLAY_PREFIX}.${x}.`)) return `${UNDERLAY_PREFIX}.${x}`;
    }
    throw new Error(`no free ${UNDERLAY_PREFIX}.X.0/24 among the host's routes`);
}

/** A namespace joined to the bridge by a veth pair, its end named eth0, with `address`/24 and loopback up. */
function addNamespace(id: string, node: string, address: string): string {
    const n = names(id);
    const netns = n.netns(node);
    run("ip", ["netns", "add", netns]);
    run("ip", ["link", "add", n.hostVeth(node), "type", "veth", "peer", "name", n.peerVeth(node)]);
    run("ip", ["link", "set", n.peerVeth(node), "netns", netns]);
    run("ip", ["link", "set", n.hostVeth(node), "master", n.bridge, "up"]);
    run("ip", ["-n", netns, "link", "set", n.peerVeth(node), "name", "eth0"]);
    run("ip", ["-n", netns, "addr", "add", `${address}/24`, "dev", "eth0"]);
    run("ip", ["-n", netns, "link", "set", "eth0", "up"]);
    run("ip", ["-n", netns, "link", "set", "lo", "up"]);
    return netns;
}

function logTail(file: string, chars = 3000): string {
    try {
        return fs.readFileSync(file, "utf8").slice(-chars);
    } catch {
        return "(no log)";
    }
}


function ownerFile(dir: string): string {
    return path.join(dir, "owner.pid");
}

/** A CA for this swarm and the registry's key and certificate from it, for its address (an IP SAN: everything names it by address). */
function makeRegistryCerts(id: string, dir: string, address: string): { caPem: string; certificate: string; key: string } {
    fs.mkdirSync(dir, { mode: 0o700 });
    const file = (name: string) => path.join(dir, name);
    const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run("openssl", [
        "req", "-x509", ...newKey, "-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "2",
        "-subj", `/CN=${SWARM_PREFIX}-${id} registry CA`,
        "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run("openssl", ["req", ...newKey, "-keyout", file("registry.key"), "-out", file("registry.csr"), "-subj", `/CN=${address}`]);
    fs.writeFileSync(
        file("registry.ext"),
        [
            "basicConstraints = critical, CA:FALSE",
            "keyUsage = critical, digitalSignature",
            "extendedKeyUsage = serverAuth",
            `subjectAltName = IP:${address}`,
            "subjectKeyIdentifier = hash",
            "authorityKeyIdentifier = keyid",
            "",
        ].join("\n"),
    );
    run("openssl", [
        "x509", "-req", "-in", file("registry.csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"),
        "-set_serial", `0x${crypto.randomBytes(8).toString("hex")}`, "-days", "2", "-extfile", file("registry.ext"), "-out", file("registry.crt"),
    ]);
    return { caPem: fs.readFileSync(file("ca.crt"), "utf8"), certificate: file("registry.crt"), key: file("registry.key") };
}

const BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * An htpasswd line as `htpasswd -B` writes it, the password going to perl on
 * stdin. Cost 4, bcrypt's least: the registry checks the hash on every
 * request, and the password is random.
 */
function htpasswdLine(username: string, password: string): string {
    // 22 characters carry the 128-bit salt; the last one's low 4 bits are unused, so it is . O e or u.
    const salt = Array.from({ length: 21 }, () => BCRYPT_ALPHABET[crypto.randomInt(64)]).join("") + ".Oeu"[crypto.randomInt(4)];
    const hash = run("perl", ["-e", "chomp(my $p = <STDIN>); print crypt($p, $ARGV[0]) // ''", `$2y$04$${salt}`], { input: `${password}\n` }).stdout;
    if (!/^\$2y\$04\$[./A-Za-z0-9]{53}$/.test(hash)) throw new Error(`perl's crypt() made no bcrypt hash (${JSON.stringify(hash)}): this libcrypt has no bcrypt (Debian's libcrypt1 has)`);
    return `${username}:${hash}\n`;
}

/** Installs the swarm's CA for `registry` where every daemon here reads it; the marker goes first, so no CA is ever unmarked. */
function installRegistryCa(id: string, registry: string, caPem: string): void {
    const dir = path.join(CERTS_DIR, registry);
    if (fs.existsSync(dir)) throw new Error(`${dir} exists and is not this swarm's: not replacing it`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, names(id).caMarker), `made by test/support/swarm.ts for ${names(id).dir}\n`);
    fs.writeFileSync(path.join(dir, "ca.crt"), caPem);
}

/** The directories in /etc/docker/certs.d that cluster `id` installed (those holding its marker). */
function clusterCertDirs(id: string): string[] {
    try {
        return fs.readdirSync(CERTS_DIR).map((entry) => path.join(CERTS_DIR, entry)).filter((dir) => fs.existsSync(path.join(dir, names(id).caMarker)));
    } catch {
        return [];
    }
}

/**
 * Makes a swarm of `nodes` daemons (n0 .. n<managers-1> managers, the rest
 * workers) and its registry. Sweeps earlier runs' leftovers first. On any
 * failure it tears down what it made and rethrows.
 */
export async function createSwarm(options: SwarmOptions = {}): Promise<Swarm> {
    const nodeCount = options.nodes ?? 3;
    const managerCount = options.managers ?? 1;
    if (nodeCount < 1 || nodeCount > 9 || managerCount < 1 || managerCount > nodeCount) throw new Error(`bad swarm shape: ${nodeCount} nodes, ${managerCount} managers`);
    await sweepSwarms();

    const id = crypto.randomBytes(2).toString("hex");
    const n = names(id);
    const timings: Record<string, number> = {};
    let phaseStart = Date.now();
    const phase = (name: string) => {
        timings[name] = (Date.now() - phaseStart) / 1000;
        phaseStart = Date.now();
    };
    const base = freeSubnet();
    const subnet = `${base}.0/24`;
    const hostAddress = `${base}.${HOST_OCTET}`;
    const registry = `${base}.${REGISTRY_OCTET}:${REGISTRY_PORT}`;
    const children = new Map<string, ChildProcess>();
    const nodes: SwarmNode[] = [];
    const grace = (options.stopGraceSeconds ?? 20) * 1000;

    let tornDown: Promise<TeardownReport> | undefined;
    const teardown = () => (tornDown ??= teardownCluster(id, children, grace));

    fs.mkdirSync(n.dir, { mode: 0o700 });
    try {
        if (options.tmpfsSize) run("mount", ["-t", "tmpfs", "-o", `size=${options.tmpfsSize},mode=0700`, `${SWARM_PREFIX}-${id}`, n.dir]);
        fs.writeFileSync(ownerFile(n.dir), `${process.pid}\n`);
        // The network: a bridge on the host, accepted within itself.
        run("ip", ["link", "add", n.bridge, "type", "bridge"]);
        run("ip", ["addr", "add", `${hostAddress}/24`, "dev", n.bridge]);
        run("ip", ["link", "set", n.bridge, "up"]);
        run("iptables", ["-I", forwardChain(), ...bridgeRule(id)]);

        // The registry, in its own namespace, HTTPS and htpasswd, storage in the cluster's directory.
        const regDir = path.join(n.dir, "registry");
        fs.mkdirSync(path.join(regDir, "data"), { recursive: true });
        const tls = makeRegistryCerts(id, path.join(regDir, "tls"), `${base}.${REGISTRY_OCTET}`);
        installRegistryCa(id, registry, tls.caPem);
        const registryAuth = { username: REGISTRY_USER, password: crypto.randomBytes(18).toString("base64url") };
        fs.writeFileSync(path.join(regDir, "htpasswd"), htpasswdLine(registryAuth.username, registryAuth.password), { mode: 0o600 });
        fs.writeFileSync(
            path.join(regDir, "config.yml"),
            [
                "version: 0.1",
                "log:",
                "  level: warn",
                "storage:",
                "  filesystem:",
                `    rootdirectory: ${path.join(regDir, "data")}`,
                "  delete:",
                "    enabled: true",
                "auth:",
                "  htpasswd:",
                `    realm: ${n.comment}`,
                `    path: ${path.join(regDir, "htpasswd")}`,
                "http:",
                `  addr: ${registry}`,
                `  secret: ${crypto.randomBytes(16).toString("hex")}`,
                "  tls:",
                `    certificate: ${tls.certificate}`,
                `    key: ${tls.key}`,
                "",
            ].join("\n"),
        );
        const regNetns = addNamespace(id, "reg", `${base}.${REGISTRY_OCTET}`);
        const regLog = path.join(regDir, "registry.log");
        children.set(
            "registry",
            startGroup("nsenter", [`--net=${NETNS_DIR}/${regNetns}`, "docker-registry", "serve", path.join(regDir, "config.yml")], { logFile: regLog }),
        );

        /** Starts (or starts again) a node's daemon in its namespace, with its own roots, socket, config and cgroup parent. */
        const startDaemon = (node: SwarmNode) => {
            const child = startGroup(
                "nsenter",
                [
                    `--net=${NETNS_DIR}/${node.netns}`,
                    "dockerd",
                    "--data-root", path.join(node.dir, "data"),
                    "--exec-root", path.join(node.dir, "exec"),
                    "--pidfile", path.join(node.dir, "docker.pid"),
                    "-H", node.host,
                    "--config-file", path.join(node.dir, "daemon.json"),
                    "--bridge", "none",
                    "--iptables=false",
                ],
                { logFile: path.join(node.dir, "dockerd.log") },
            );
            children.set(node.name, child);
            node.pid = child.pid!;
        };
        const daemonAnswers = (node: SwarmNode) =>
            waitFor(
                `dockerd ${node.name} to answer`,
                async () => {
                    const child = children.get(node.name)!;
                    if (child.exitCode !== null) throw new Error(`dockerd ${node.name} exited (${child.exitCode}): ${logTail(path.join(node.dir, "dockerd.log"))}`);
                    return (await dockerAsync(["-H", node.host, "version", "--format", "{{.Server.Version}}"]).catch(() => undefined)) ? true : undefined;
                },
                60_000,
            );

        // The daemons.
        for (let i = 0; i < nodeCount; i++) {
            const name = `n${i}`;
            const address = `${base}.${NODE_OCTET_BASE + i}`;
            const netns = addNamespace(id, name, address);
            const dir = path.join(n.dir, name);
            fs.mkdirSync(dir);
            const config = path.join(dir, "daemon.json");
            fs.writeFileSync(
                config,
                JSON.stringify(
                    {
                        "cgroup-parent": `/${n.cgroup(name)}`,
                        labels: [`${NODE_LABEL}=${name}`],
                        "shutdown-timeout": 2,
                        "log-level": "warn",
                    },
                    null,
                    2,
                ),
            );
            const host = `unix://${path.join(dir, "docker.sock")}`;
            const node: SwarmNode = { name, role: i < managerCount ? "manager" : "worker", address, netns, host, dir, id: "", pid: 0 };
            startDaemon(node);
            nodes.push(node);
        }
        phase("network, registry and daemons started");

        await waitFor(
            "the registry to answer",
            async () => {
                const reg = children.get("registry")!;
                if (reg.exitCode !== null) throw new Error(`docker-registry exited (${reg.exitCode}): ${logTail(regLog)}`);
                return (await request(`https://${registry}/v2/`, { ca: tls.caPem, timeoutMs: 2000 })).status === 401 ? true : undefined;
            },
            20_000,
        );
        await Promise.all(nodes.map(daemonAnswers));
        phase("daemons answering");

        // The swarm: init on the first manager, the rest join with their token.
        const [first, ...rest] = nodes;
        docker([
            "-H", first.host, "swarm", "init",
            "--advertise-addr", first.address,
            "--listen-addr", `${first.address}:2377`,
            "--data-path-addr", first.address,
            "--default-addr-pool", OVERLAY_ADDRESS_POOL,
        ]);
        const tokens = {
            manager: docker(["-H", first.host, "swarm", "join-token", "-q", "manager"]),
            worker: docker(["-H", first.host, "swarm", "join-token", "-q", "worker"]),
        };
        for (const node of rest) {
            docker([
                "-H", node.host, "swarm", "join",
                "--token", tokens[node.role],
                "--advertise-addr", node.address,
                "--listen-addr", `${node.address}:2377`,
                "--data-path-addr", node.address,
                `${first.address}:2377`,
            ]);
        }
        for (const node of nodes) node.id = docker(["-H", node.host, "info", "--format", "{{.Swarm.NodeID}}"]);
        await waitFor(
            `${nodeCount} nodes Ready`,
            () => {
                const lines = docker(["-H", first.host, "node", "ls", "--format", "{{.ID}} {{.Status}}"]).split("\n");
                return lines.filter((l) => l.endsWith(" Ready")).length === nodeCount ? true : undefined;
            },
            60_000,
        );
        for (const node of nodes) docker(["-H", first.host, "node", "update", "--label-add", `${NODE_LABEL}=${node.name}`, node.id]);
        phase("swarm formed");

        // The CLI's config is the swarm's own, never ~/.docker: the login (checked by the manager's
        // daemon, so it proves that daemon trusts the CA) lands there, and every docker() call sends it.
        const dockerConfig = path.join(n.dir, "cli");
        fs.mkdirSync(dockerConfig, { mode: 0o700 });
        const nodeDocker = (node: SwarmNode, args: string[]) => ["--config", dockerConfig, "-H", node.host, ...args];
        docker(nodeDocker(first, ["login", "--username", registryAuth.username, "--password-stdin", registry]), registryAuth.password);
        phase("manager logged in to the registry");

        const swarm: Swarm = {
            id,
            dir: n.dir,
            bridge: n.bridge,
            subnet,
            hostAddress,
            registry,
            registryCaPem: tls.caPem,
            registryAuth,
            dockerConfig,
            nodes,
            manager: first,
            timings,
            docker: (node, args, input) => docker(nodeDocker(node, args), input),
            dockerAsync: (node, args) => dockerAsync(nodeDocker(node, args)),
            pushImage: async (hostImage, name) => {
                const reference = `${registry}/${name}`;
                const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
                    const child = startGroup(
                        "skopeo",
                        [
                            "copy", "--quiet",
                            // The CA as the daemons trust it (skopeo takes the *.crt there; it ignores the marker).
                            "--dest-cert-dir", path.join(CERTS_DIR, registry),
                            "--dest-creds", `${registryAuth.username}:${registryAuth.password}`,
                            `docker-daemon:${hostImage}`, `docker://${reference}`,
                        ],
                        { logFile: "pipe" },
                    );
                    let stderr = "";
                    child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
                    child.stdout?.resume();
                    child.once("error", reject);
                    child.once("close", (code) => resolve({ code, stderr }));
                });
                if (result.code !== 0) throw new Error(`skopeo copy ${hostImage} -> ${reference} failed (${result.code}): ${result.stderr.trim()}`);
                return reference;
            },
            stopNode: async (node, signal = "SIGTERM") => {
                const child = children.get(node.name);
                if (!child) throw new Error(`no daemon ${node.name} in swarm ${id}`);
                await stopGroup(child, signal, grace);
            },
            restartNode: async (node, event) => {
                const child = children.get(node.name);
                if (!child) throw new Error(`no daemon ${node.name} in swarm ${id}`);
                const found = nodeProcesses(id, node);
                const stoppedAt = Date.now();
                if (event === "graceful") {
                    await stopGroup(child, "SIGTERM", grace);
                } else {
                    const exited = child.exitCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", resolve));
                    // A reboot takes the daemon's whole process group (its docker-proxies too).
                    const victims = event === "crash" ? [child.pid!, ...found.containerd] : [-child.pid!, ...found.containerd, ...found.shims, ...found.containers];
                    killPids(victims, "SIGKILL");
                    await exited;
                }
                await waitFor(`${node.name}'s containerd to exit`, () => (found.containerd.every((pid) => !pidAlive(pid)) ? true : undefined), 30_000, 100);
                // A dead containerd's pid file makes the next dockerd wait on it in vain (a reboot's fresh /run has none).
                if (event !== "graceful") fs.rmSync(path.join(node.dir, "exec", "containerd", "containerd.pid"), { force: true });
                startDaemon(node);
                await daemonAnswers(node);
                const killed = `${found.containerd.length} containerd, ${found.shims.length} shims, ${found.containers.length} container processes found`;
                return { event, stoppedAt, answeringAt: Date.now(), killed };
            },
            teardown,
        };
        return swarm;
    } catch (error) {
        const report = await teardown().catch((e: unknown) => ({ leftovers: [String(e)] }) as TeardownReport);
        throw new Error(`createSwarm failed: ${error instanceof Error ? error.message : String(error)}${report.leftovers.length ? `; left: ${report.leftovers.join("; ")}` : ""}`);
    }
}

async function teardownCluster(id: string, children: Map<string, ChildProcess>, graceMs: number): Promise<TeardownReport> {
    const started = Date.now();
    const killed: string[] = [];
    const errors: string[] = [];
    const phases: Record<string, number> = {};
    // Daemons first, all at once: SIGTERM lets each stop its containers and unmount what it mounted.
    await Promise.all(
        [...children].filter(([name]) => name !== "registry").map(async ([name, child]) => {
            const timer = setTimeout(() => killed.push(name), graceMs);
            await stopGroup(child, "SIGTERM", graceMs).catch((e: unknown) => errors.push(`stopping ${name}: ${String(e)}`));
            clearTimeout(timer);
            phases[`stop ${name}`] = (Date.now() - started) / 1000;
        }),
    );
    const registry = children.get("registry");
    if (registry) await stopGroup(registry, "SIGTERM", 5000).catch((e: unknown) => errors.push(`stopping the registry: ${String(e)}`));
    phases["processes stopped"] = (Date.now() - started) / 1000;
    // Then whatever is left, as for a crashed run.
    errors.push(...(await removeCluster(id)));
    phases["removed"] = (Date.now() - started) / 1000;
    const left = leftovers(id);
    return { seconds: (Date.now() - started) / 1000, phases, killed, leftovers: left, errors };
}

/** Processes whose command line names the cluster's directory (dockerd, containerd, shims, docker-proxy, the registry). */
function clusterProcesses(id: string): number[] {
    const needle = names(id).dir + "/";
    const pids: number[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
        try {
            const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
            if (cmdline.includes(needle)) pids.push(Number(entry));
        } catch {
            /* gone */
        }
    }
    return pids;
}

/** A node's containerd, its shims and its containers' processes. */
function nodeProcesses(id: string, node: SwarmNode): { containerd: number[]; shims: number[]; containers: number[] } {
    const needle = path.join(node.dir, "exec", "containerd") + "/";
    const containerd: number[] = [];
    const shims: number[] = [];
    for (const pid of clusterProcesses(id)) {
        const cmdline = safeRead(`/proc/${pid}/cmdline`).replace(/\0/g, " ");
        if (!cmdline.includes(needle)) continue;
        (cmdline.includes("containerd-shim") ? shims : containerd).push(pid);
    }
    const cgroup = `/${names(id).cgroup(node.name)}`;
    // Every v1 controller lists the same processes.
    const containers = [...new Set(clusterCgroups(id).filter((dir) => dir.endsWith(cgroup) || dir.includes(`${cgroup}/`)).flatMap(cgroupPids))];
    return { containerd, shims, containers };
}

/** The cluster's cgroup directories (every v1 controller, or the v2 tree), deepest first. */
function clusterCgroups(id: string): string[] {
    const prefix = `${SWARM_PREFIX}-${id}-`;
    const roots = fs.existsSync(path.join(CGROUP_ROOT, "cgroup.controllers"))
        ? [CGROUP_ROOT]
        : fs.readdirSync(CGROUP_ROOT).map((c) => path.join(CGROUP_ROOT, c)).filter((p) => {
              try {
                  return fs.statSync(p).isDirectory() && !fs.lstatSync(p).isSymbolicLink();
              } catch {
                  return false;
              }
          });
    const found: string[] = [];
    const walk = (dir: string) => {
        found.push(dir);
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(path.join(dir, entry.name));
    };
    for (const root of roots) {
        let entries: fs.Dirent[];
        try {
            entries = fs.readdirSync(root, { withFileTypes: true });
        } catch {
            continue;
        }
        for (const entry of entries) if (entry.isDirectory() && entry.name.startsWith(prefix)) walk(path.join(root, entry.name));
    }
    return found.sort((a, b) => b.length - a.length);
}

function cgroupPids(dir: string): number[] {
    try {
        return fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
    } catch {
        return [];
    }
}

/** Mount points under the cluster's directory, deepest first. */
function clusterMounts(id: string): string[] {
    const dir = names(id).dir;
    return fs
        .readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .map((line) => line.split(" ")[4])
        .filter((point): point is string => !!point && (point === dir || point.startsWith(dir + "/")))
        .map((point) => point.replace(/\\040/g, " "))
        .sort((a, b) => b.length - a.length);
}

function clusterNamespaces(id: string): string[] {
    try {
        return fs.readdirSync(NETNS_DIR).filter((name) => name.startsWith(`${SWARM_PREFIX}-${id}-`));
    } catch {
        return [];
    }
}

function linkNames(): string[] {
    return run("ip", ["-o", "link", "show"])
        .stdout.split("\n")
        .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1])
        .filter((name): name is string => !!name);
}

function clusterLinks(id: string): string[] {
    return linkNames().filter((name) => name.startsWith(`${SWARM_PREFIX}${id}`));
}

function iptablesRules(): { chain: string; rule: string }[] {
    const rules: { chain: string; rule: string }[] = [];
    for (const chain of ["DOCKER-USER", "FORWARD"]) {
        const listed = run("iptables", ["-S", chain], { allowFail: true });
        if (listed.code !== 0) continue;
        for (const line of listed.stdout.split("\n")) if (line.startsWith(`-A ${chain} `)) rules.push({ chain, rule: line });
    }
    return rules;
}

function clusterRules(id: string): { chain: string; rule: string }[] {
    const comment = names(id).comment;
    return iptablesRules().filter(({ rule }) => new RegExp(`--comment "?${comment}"?( |$)`).test(rule));
}

/** True while `pid` runs (a zombie, killed and waiting for a parent to reap it, counts as gone). */
function pidAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
    } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
    }
    const stat = safeRead(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) [ZX] /s.test(stat);
}

/** Everything of cluster `id` that still exists, one line each (empty when nothing is left). */
export function leftovers(id: string): string[] {
    const n = names(id);
    const found: string[] = [];
    for (const pid of clusterProcesses(id)) found.push(`process ${pid}: ${safeRead(`/proc/${pid}/cmdline`).replace(/\0/g, " ").slice(0, 120)}`);
    for (const dir of clusterCgroups(id)) {
        const pids = cgroupPids(dir);
        found.push(`cgroup ${dir}${pids.length ? ` with processes ${pids.join(",")}` : ""}`);
    }
    for (const point of clusterMounts(id)) found.push(`mount ${point}`);
    for (const netns of clusterNamespaces(id)) found.push(`network namespace ${netns}`);
    for (const link of clusterLinks(id)) found.push(`link ${link}`);
    for (const { rule } of clusterRules(id)) found.push(`iptables ${rule}`);
    for (const dir of clusterCertDirs(id)) found.push(`registry CA ${dir}`);
    if (fs.existsSync(n.dir)) found.push(`directory ${n.dir}`);
    return found;
}

function safeRead(file: string): string {
    try {
        return fs.readFileSync(file, "utf8");
    } catch {
        return "";
    }
}

async function killAndWait(pids: number[], signal: NodeJS.Signals, timeoutMs: number): Promise<number[]> {
    killPids(pids, signal);
    const deadline = Date.now() + timeoutMs;
    let alive = pids.filter(pidAlive);
    while (alive.length && Date.now() < deadline) {
        await sleep(100);
        alive = alive.filter(pidAlive);
    }
    return alive;
}

/** Removes everything of cluster `id`, whatever state it is in; returns the errors met (it carries on past each). */
async function removeCluster(id: string): Promise<string[]> {
    const n = names(id);
    const errors: string[] = [];
    const attempt = (what: string, action: () => void) => {
        try {
            action();
        } catch (error) {
            errors.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
        }
    };
    // Processes: daemons get SIGTERM first (a clean stop unmounts), then everything SIGKILL. Zombies
    // of our own children are reaped by Node, so only those still alive count.
    let pids = clusterProcesses(id);
    if (pids.length) {
        const daemons = pids.filter((pid) => /dockerd|docker-registry/.test(safeRead(`/proc/${pid}/cmdline`).split("\0")[0]));
        await killAndWait(daemons, "SIGTERM", 15_000);
        pids = clusterProcesses(id);
        const still = await killAndWait(pids, "SIGKILL", 5000);
        if (still.length) errors.push(`processes survived SIGKILL: ${still.join(", ")}`);
    }
    // Container processes live in the daemons' cgroups.
    for (let round = 0; round < 3; round++) {
        const inCgroups = clusterCgroups(id).flatMap(cgroupPids);
        if (!inCgroups.length) break;
        await killAndWait(inCgroups, "SIGKILL", 5000);
    }
    for (const dir of clusterCgroups(id)) attempt(`rmdir ${dir}`, () => fs.rmdirSync(dir));
    // Mounts a killed daemon left (overlay roots, nsfs bind mounts of its sandboxes, its data root).
    for (const point of clusterMounts(id)) {
        const result = run("umount", [point], { allowFail: true });
        if (result.code !== 0) attempt(`umount -l ${point}`, () => run("umount", ["-l", point], { allowFail: !fs.existsSync(point) }));
    }
    for (const netns of clusterNamespaces(id)) attempt(`ip netns delete ${netns}`, () => run("ip", ["netns", "delete", netns]));
    // A deleted namespace's veths vanish asynchronously; delete the host ends (and the bridge) outright.
    for (const link of clusterLinks(id)) {
        attempt(`ip link delete ${link}`, () => {
            const result = run("ip", ["link", "delete", link], { allowFail: true });
            if (result.code !== 0 && !/Cannot find device/.test(result.stderr)) throw new Error(result.stderr.trim());
        });
    }
    for (const { chain, rule } of clusterRules(id)) {
        attempt(`iptables ${rule}`, () => run("iptables", ["-D", chain, ...splitRule(rule).slice(2)]));
    }
    for (const dir of clusterCertDirs(id)) attempt(`rm -rf ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
    try {
        // certs.d itself too once empty (rmdir refuses otherwise): no daemon needs an empty one.
        fs.rmdirSync(CERTS_DIR);
    } catch {
        /* not empty, or not there */
    }
    if (fs.existsSync(n.dir)) {
        if (clusterMounts(id).length) errors.push(`${n.dir} still has mounts; not removed`);
        else attempt(`rm -rf ${n.dir}`, () => run("rm", ["-rf", "--one-file-system", n.dir], { timeoutMs: 120_000 }));
    }
    // Wait briefly for the kernel to finish destroying namespaces (their veths go with them).
    await waitFor("the cluster's links to go", () => (clusterLinks(id).length ? undefined : true), 5000, 100).catch(() => undefined);
    return errors;
}

/** `iptables -S` output back into arguments (its only quoting is "..." around comments). */
function splitRule(rule: string): string[] {
    return [...rule.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

/** Ids of every cluster that has left anything on this machine. */
export function clusterIds(): string[] {
    const ids = new Set<string>();
    const idPattern = new RegExp(`^${SWARM_PREFIX}-?([0-9a-f]{4})(?:[-bhp]|$)`);
    const add = (name: string) => {
        const match = idPattern.exec(name);
        if (match) ids.add(match[1]);
    };
    try {
        for (const entry of fs.readdirSync(os.tmpdir())) add(entry);
    } catch {
        /* no tmp */
    }
    try {
        for (const entry of fs.readdirSync(NETNS_DIR)) add(entry);
    } catch {
        /* no namespaces */
    }
    for (const link of linkNames()) add(link);
    try {
        for (const entry of fs.readdirSync(CERTS_DIR, { withFileTypes: true })) {
            if (entry.isDirectory()) for (const file of fs.readdirSync(path.join(CERTS_DIR, entry.name))) add(file);
        }
    } catch {
        /* no certs.d */
    }
    for (const { rule } of iptablesRules()) {
        const comment = new RegExp(`--comment "?(${SWARM_PREFIX}-[0-9a-f]{4})"?`).exec(rule);
        if (comment) add(comment[1]);
    }
    try {
        const v2 = fs.existsSync(path.join(CGROUP_ROOT, "cgroup.controllers"));
        const roots = v2 ? [CGROUP_ROOT] : fs.readdirSync(CGROUP_ROOT).map((c) => path.join(CGROUP_ROOT, c));
        for (const root of roots) {
            try {
                for (const entry of fs.readdirSync(root)) add(entry);
            } catch {
                /* not a directory */
            }
        }
    } catch {
        /* no cgroups */
    }
    return [...ids].sort();
}

/** True while the process that made cluster `id` is alive (its directory names it). */
function clusterOwned(id: string): boolean {
    const pid = Number(safeRead(ownerFile(names(id).dir)).trim());
    return Number.isInteger(pid) && pid > 0 && pidAlive(pid);
}

/**
 * Removes the leftovers of every cluster whose making process is gone (or
 * of every cluster with `all`); returns, per cluster removed, what it found.
 * Throws when something could not be removed.
 */
export async function sweepSwarms(options: { all?: boolean } = {}): Promise<Record<string, string[]>> {
    const swept: Record<string, string[]> = {};
    const failures: string[] = [];
    for (const id of clusterIds()) {
        if (!options.all && clusterOwned(id)) continue;
        swept[id] = leftovers(id);
        const errors = await removeCluster(id);
        const left = leftovers(id);
        if (left.length) failures.push(`cluster ${id}: ${left.join("; ")}${errors.length ? ` (${errors.join("; ")})` : ""}`);
    }
    if (failures.length) throw new Error(`sweepSwarms could not remove: ${failures.join(" | ")}`);
    return swept;
}
