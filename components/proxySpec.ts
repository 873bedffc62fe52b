// What every Nginx of the stack runs with, on either platform: its
// hardening and health check. The Docker
// platform's containers (docker/reverseProxy.ts) and the swarm's proxy
// service (swarm/proxyService.ts) both take them from here.
import { Hardening } from "./hardening";
import { PROXY_ACTIVE_SLOT, PROXY_FRONT_DIR, PROXY_HTTP_PORT, PROXY_KEY_GROUP, PROXY_USER } from "./layout";

export function proxyHardening(memoryMb: number): Hardening {
    return { user: PROXY_USER, groups: [PROXY_KEY_GROUP], memoryMb, maxProcesses: 256, tmpfs: { "/tmp": "rw,noexec,nosuid,size=64m" } };
}

/** The pid files of the proxy's front and active slot (nginx/bin/mlapi-proxy). */
export const PROXY_MASTER_PID_FILES = [`${PROXY_FRONT_DIR}/nginx.pid`, `${PROXY_ACTIVE_SLOT}/nginx.pid`];

/** Healthy when this container's front and active slot run workers and the HTTP port answers (nginx/bin/mlapi-healthcheck). */
export const PROXY_HEALTHCHECK = {
    tests: ["CMD", "mlapi-healthcheck", "http", String(PROXY_HTTP_PORT), ...PROXY_MASTER_PID_FILES],
    // Docker runs the first probe one interval after start: keep it short,
    // since `pulumi up` waits for health.
    interval: "5s",
    timeout: "3s",
    startPeriod: "5s",
    retries: 3,
};
