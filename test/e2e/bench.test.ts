// The benchmark's smoke run (seconds, no thresholds): it keeps bench/ from
// rotting. The full run and its figures are in BENCHMARKS.md.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PROJECT_ROOT } from "./harness";

jest.setTimeout(240_000);

test("bench/run.ts --quick runs every case end to end and writes its results", () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-bench-smoke-"));
    try {
        const run = spawnSync(path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), ["bench/run.ts", "--quick", "--no-images", "--no-profile", "--out", out], {
            cwd: PROJECT_ROOT,
            encoding: "utf8",
            timeout: 200_000,
        });
        expect(`${run.status} ${run.stderr.slice(-2000)}`).toMatch(/^0 /);
        const results = JSON.parse(fs.readFileSync(path.join(out, "latest.json"), "utf8"));
        const labels = new Set<string>(results.cases.map((c: { label: string }) => c.label));
        expect(labels.size).toBeGreaterThanOrEqual(5);
        for (const c of results.cases) for (const r of c.runs) expect(r.requests).toBeGreaterThan(0);
        expect(fs.statSync(path.join(out, "latest.png")).size).toBeGreaterThan(1000);
        expect(fs.readFileSync(path.join(out, "latest.md"), "utf8")).toContain("| case |");
    } finally {
        fs.rmSync(out, { recursive: true, force: true });
    }
});
