// What the swarm-mode suites look at on a deployed swarm stack: the app
// service's running tasks (from the manager, by node ID), which of them
// answer through the proxy, and the certificate an edge node serves.
import * as tls from "tls";
import { request } from "./http";
import { engineApi } from "./swarmReplay";

export interface AppTask {
    /** Swarm node ID (the test swarm's nodes share one hostname). */
    node: string;
    container: string;
    /** Its address on the app network. */
    address: string;
    image: string;
}

/** The running tasks of `service`, with their addresses on `network`. */
export async function runningTasks(api: ReturnType<typeof engineApi>, service: string, network: string): Promise<AppTask[]> {
    const tasks: any[] = await api("GET", `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [service], "desired-state": ["running"] }))}`);
    return tasks
        .filter((t) => t.Status.State === "running")
        .map((t) => ({
            node: t.NodeID,
            container: t.Status.ContainerStatus.ContainerID,
            address: String(t.NetworksAttachments.find((n: any) => n.Network.Spec.Name === network).Addresses[0]).split("/")[0],
            image: t.Spec.ContainerSpec.Image,
        }));
}

/** The replicas (their hostnames: short container IDs) that answered `count` health checks through the proxy at `url`. */
export async function answeringReplicas(url: string, ca: string, count: number): Promise<Set<string>> {
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
        const response = await request(`${url}api/health`, { ca, timeoutMs: 5000 });
        if (response.status === 200) seen.add(response.json().replica);
    }
    return seen;
}

/** The certificate served on host:443, verified against `ca` for the name `localhost`. */
export function servedCertificate(host: string, ca: string): Promise<tls.PeerCertificate> {
    return new Promise((resolve, reject) => {
        const socket = tls.connect({ host, port: 443, servername: "localhost", ca }, () => {
            resolve(socket.getPeerCertificate());
            socket.end();
        });
        socket.on("error", reject);
    });
}
