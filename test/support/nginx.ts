import { spawnSync } from "child_process";

/** The version of the `nginx` on PATH (it prints `nginx version: nginx/1.22.1` on stderr). */
export function hostNginxVersion(): string {
    const result = spawnSync("nginx", ["-v"], { encoding: "utf8" });
    const match = /nginx\/(\d+\.\d+\.\d+)/.exec(result.stderr);
    if (!match) throw new Error(`cannot tell the Nginx version from: ${result.stderr || result.error}`);
    return match[1];
}
