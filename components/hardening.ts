// Container hardening shared by every container of the stack, as data: the
// stack passes it to docker.Container, and the image tests turn the same data
// into `docker run` flags, so what is tested is what is deployed.
import * as docker from "@pulumi/docker";

export interface Hardening {
    user: string;
    /** Supplementary groups of the user (the proxy's reads its key through one). */
    groups?: string[];
    memoryMb: number;
    /**
     * Cap on processes and threads via RLIMIT_NPROC (the provider has no
     * pids limit). The kernel counts them per user ID across the host, so
     * the cap covers every container running as that user together.
     */
    maxProcesses: number;
    /** Writable tmpfs mounts on an otherwise read-only root filesystem. */
    tmpfs: Record<string, string>;
}

export const LOG_OPTIONS = { "max-size": "10m", "max-file": "3" };
// "always", not "unless-stopped": after the engine itself is killed, 20.10
// brings back "always" containers but leaves "unless-stopped" ones exited.
export const RESTART_POLICY = "always";
// "=" is the separator the engine documents; "name:value" still works but is logged as deprecated.
export const SECURITY_OPTIONS = ["no-new-privileges=true"];
export const DROPPED_CAPABILITIES = ["ALL"];

/** The docker.Container arguments that harden a container. */
export function hardenedContainerArgs(h: Hardening) {
    return {
        user: h.user,
        // Unset rather than empty when there are none: what the provider reads back.
        ...(h.groups?.length ? { groupAdds: h.groups } : {}),
        readOnly: true,
        tmpfs: h.tmpfs,
        securityOpts: SECURITY_OPTIONS,
        capabilities: { drops: DROPPED_CAPABILITIES },
        memory: h.memoryMb,
        // Equal to memory: no swap, so the limit is a real limit.
        memorySwap: h.memoryMb,
        ulimits: [{ name: "nproc", soft: h.maxProcesses, hard: h.maxProcesses }],
        restart: RESTART_POLICY,
        logDriver: "json-file",
        logOpts: LOG_OPTIONS,
    } satisfies Partial<docker.ContainerArgs>;
}

/**
 * The same hardening as `docker run` flags, translated from
 * hardenedContainerArgs itself (for the image tests): dropping a setting
 * there drops its flag here.
 */
export function dockerRunFlags(h: Hardening): string[] {
    const args = hardenedContainerArgs(h);
    return [
        `--user=${args.user}`,
        ...(args.groupAdds ?? []).map((g) => `--group-add=${g}`),
        ...(args.readOnly ? ["--read-only"] : []),
        ...Object.entries(args.tmpfs).map(([path, options]) => `--tmpfs=${path}${options ? `:${options}` : ""}`),
        ...args.securityOpts.map((o) => `--security-opt=${o}`),
        ...args.capabilities.drops.map((c) => `--cap-drop=${c}`),
        `--memory=${args.memory}m`,
        `--memory-swap=${args.memorySwap}m`,
        ...args.ulimits.map((u) => `--ulimit=${u.name}=${u.soft}:${u.hard}`),
        `--restart=${args.restart}`,
        `--log-driver=${args.logDriver}`,
        ...Object.entries(args.logOpts).map(([k, v]) => `--log-opt=${k}=${v}`),
    ];
}
