// The containers' hardening (hardening.ts) as a Swarm task takes it. What a
// service spec of the docker provider cannot carry is listed, so docs/swarm.md
// and the tests say the same: no-new-privileges (Swarm has it from Docker
// API 1.46 on, the provider has no field), the process limit (no ulimits in
// the provider's service spec), the swap limit (Swarm sets memory only) and
// the tmpfs mount options (size and mode only, and no sticky bit).
import { DROPPED_CAPABILITIES, Hardening, LOG_OPTIONS } from "../hardening";

/** Hardening settings a swarm task does not get, and why. */
export const NOT_IN_SWARM = {
    noNewPrivileges: "the provider's service spec has no field for it (Docker API 1.46+ has)",
    maxProcesses: "the provider's service spec has no ulimits",
    memorySwap: "Swarm limits memory only; a node with swap lets a task swap",
    tmpfsFlags: "a Swarm tmpfs mount takes a size and a mode, not noexec/nosuid (and the provider drops a sticky bit)",
};

const MIB = 1024 * 1024;

/** The size of a tmpfs from Docker's option string ("rw,noexec,size=16m"). */
export function tmpfsSizeBytes(options: string): number {
    const size = /(?:^|,)size=(\d+)([kmg]?)(?:,|$)/i.exec(options);
    if (!size) throw new Error(`tmpfs options ${JSON.stringify(options)} have no size`);
    return Number(size[1]) * { "": 1, k: 1024, m: MIB, g: 1024 * MIB }[size[2].toLowerCase() as "" | "k" | "m" | "g"];
}

/** A swarm task's share of the hardening: its container spec's part and the task spec's. */
export function swarmTaskHardening(h: Hardening) {
    return {
        containerSpec: {
            user: h.user,
            ...(h.groups?.length ? { groups: h.groups } : {}),
            readOnly: true,
            capDrops: DROPPED_CAPABILITIES,
            // World-writable: the provider reads a mode back without its sticky
            // bit, so 1777 would show a change on every refresh (one user per task anyway).
            mounts: Object.entries(h.tmpfs).map(([target, options]) => ({ type: "tmpfs", target, readOnly: false, tmpfsOptions: { sizeBytes: tmpfsSizeBytes(options), mode: 0o777 } })),
        },
        taskSpec: {
            resources: { limits: { memoryBytes: h.memoryMb * MIB } },
            // A task that exits is replaced; Swarm keeps the replica count.
            // Every field given: the provider reads the unset ones back and
            // would show a change on every preview (pulumi-docker#1285).
            restartPolicy: { condition: "any", delay: "2s", maxAttempts: 0, window: "0s" },
            logDriver: { name: "json-file", options: LOG_OPTIONS },
        },
    };
}

/**
 * How Swarm rolls a service: one task at a time, in `order`; a task that
 * fails within `monitor` rolls the whole service back (and a failing
 * rollback pauses). `pulumi up` waits until every task runs, and fails on a
 * rollback (converge_config).
 */
export function rollingUpdates(order: "start-first" | "stop-first", monitor: string) {
    return {
        updateConfig: { parallelism: 1, order, failureAction: "rollback", monitor, delay: "0s", maxFailureRatio: "0" },
        rollbackConfig: { parallelism: 1, order, failureAction: "pause", monitor, delay: "0s", maxFailureRatio: "0" },
        convergeConfig: { delay: "2s", timeout: "5m" },
    };
}
