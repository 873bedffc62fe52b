// What every app replica runs with, on either platform: its environment,
// health check, hardening and the settings they come from. The Docker
// platform's containers (docker/appTier.ts) and the swarm's service
// (swarm/appService.ts) both take them from here.
import { StackSettings } from "./config";
import { Hardening } from "./hardening";
import { APP_METRICS_PORT, APP_PORT, APP_USER, PROXY_SLOT_DRAIN_SECONDS } from "./layout";

/** The replica settings of a stack configuration. */
export interface ReplicaSettings {
    replicas: number;
    memoryMb: number;
    /** Gunicorn processes per replica; 0: the replica's share of the host's CPUs. */
    workers: number;
    maxBodyBytes: number;
}

/** Gunicorn processes assumed per replica when their number follows the CPUs (appWorkers 0). */
const AUTO_WORKERS_ASSUMED = 8;

/** Tasks of one gevent worker: its own thread and gevent's thread pool (at most 10, started on demand). */
const TASKS_PER_WORKER = 11;

/**
 * Processes and threads all replicas may run together (RLIMIT_NPROC counts
 * every process of the app's user ID on the host): per worker its tasks,
 * per replica the arbiter and a margin for probes; twice that, since while a
 * new image rolls out every replica briefly has its successor beside it.
 */
function appProcessBudget(args: Pick<ReplicaSettings, "replicas" | "workers">): number {
    const workers = args.workers > 0 ? args.workers : AUTO_WORKERS_ASSUMED;
    return 2 * args.replicas * (workers * TASKS_PER_WORKER + 16);
}

/** The hardening of every replica: its memory limit and the process budget of the whole tier. */
export function appHardening(args: Pick<ReplicaSettings, "replicas" | "workers" | "memoryMb">): Hardening {
    return { user: APP_USER, memoryMb: args.memoryMb, maxProcesses: appProcessBudget(args), tmpfs: { "/tmp": "rw,noexec,nosuid,size=16m" } };
}

/**
 * The environment of a replica: Gunicorn and app settings, nothing secret.
 * GUNICORN_REPLICAS tells each replica how many share the host's CPUs
 * (`replicasPerHost`), so that by default the replicas together run one
 * process per CPU; null when nobody knows (a swarm places the tasks).
 */
export function appEnvironment(args: Pick<ReplicaSettings, "replicas" | "workers" | "maxBodyBytes">, replicasPerHost: number | null = args.replicas): string[] {
    return [
        `GUNICORN_BIND=0.0.0.0:${APP_PORT}`,
        `MLAPI_METRICS_PORT=${APP_METRICS_PORT}`,
        ...(replicasPerHost === null ? [] : [`GUNICORN_REPLICAS=${replicasPerHost}`]),
        ...(args.workers > 0 ? [`GUNICORN_WORKERS=${args.workers}`] : []),
        `MLAPI_MAX_BODY_BYTES=${args.maxBodyBytes}`,
        // A replica a change removes answers until the proxy's replaced slot, which may still send to it, has quit.
        `MLAPI_STOP_DELAY_SECONDS=${APP_STOP_DELAY_SECONDS}`,
    ];
}

/** How long a stopping replica keeps serving (gunicorn.conf.py's stop_delay): the proxy's slot drain, and a second more. */
export const APP_STOP_DELAY_SECONDS = PROXY_SLOT_DRAIN_SECONDS + 1;

/** The replica settings of a stack configuration: what index.ts gives the AppTier (the tests and the bench reuse it). */
export function replicaSettings(settings: StackSettings): Pick<ReplicaSettings, "replicas" | "workers" | "memoryMb" | "maxBodyBytes"> {
    return { replicas: settings.replicas, workers: settings.appWorkers, memoryMb: settings.appMemoryMb, maxBodyBytes: settings.maxBodyKb * 1024 };
}

/** Readiness probe: the image's own (`/api/health` on loopback, ignoring any http_proxy), needing no curl. */
export const APP_HEALTHCHECK = {
    tests: ["CMD", "python3", "-m", "mlapi.healthcheck"],
    interval: "10s",
    timeout: "3s",
    startPeriod: "5s",
    retries: 3,
};

/**
 * A replica as the proxy reaches it: by its container name, which the
 * engine's DNS resolves on the app network. Not by address: the engine hands
 * out new addresses when it restarts the containers (an engine restart, a
 * reboot), and a config of addresses would then point at the wrong replicas.
 */
export interface ReplicaEndpoint {
    name: string;
}
