import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

/** The version of the `nginx` on PATH (it prints `nginx version: nginx/1.22.1` on stderr). */
export function hostNginxVersion(): string {
    const result = spawnSync("nginx", ["-v"], { encoding: "utf8" });
    const match = /nginx\/(\d+\.\d+\.\d+)/.exec(result.stderr);
    if (!match) throw new Error(`cannot tell the Nginx version from: ${result.stderr || result.error}`);
    return match[1];
}

/** `nginx -t` of a config, written to `file` in `dir` (its startup log to dir/error.log): whether it passed, and what Nginx said. */
export function nginxConfigTest(config: string, dir: string, file = "nginx.conf"): { ok: boolean; output: string } {
    const written = path.join(dir, file);
    fs.writeFileSync(written, config);
    const result = spawnSync("nginx", ["-t", "-c", written, "-e", path.join(dir, "error.log")], { encoding: "utf8" });
    return { ok: result.status === 0, output: result.stderr };
}
