// The users' smoke command, run against the end-to-end topology: it passes on
// a healthy stack and turns red when a replica is missing.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startTopology, Topology, PROJECT_ROOT, waitFor } from "./harness";
import { runSmoke } from "../../scripts/smoke";

jest.setTimeout(120_000);

let topo: Topology;
beforeAll(async () => {
    topo = await startTopology({ replicas: 2 });
});
afterAll(async () => topo?.stop());

const tsx = path.join(PROJECT_ROOT, "node_modules", ".bin", "tsx");
const smokeScript = path.join(PROJECT_ROOT, "scripts", "smoke.ts");

test("the smoke command passes on a healthy stack and prints its report", () => {
    const out = execFileSync(tsx, [smokeScript, "--url", topo.httpsUrl, "--ca", topo.trustFile, "--replicas", "2"], { encoding: "utf8" });
    expect(out).toMatch(/PASS\s+TLS\s+TLSv1\.3, ALPN h2, certificate verified, 89 days left/);
    expect(out).toMatch(/PASS\s+prediction \(classifier\)/);
    expect(out).toMatch(/PASS\s+prediction \(regressor\)/);
    expect(out).toMatch(/PASS\s+replicas\s+2 of 2 answered: e2e-app-1, e2e-app-2/);
    expect(out).toContain("5 passed, 0 failed");
});

test("it fails without the trust anchor, and when a replica is missing", async () => {
    const untrusted = spawnSync(tsx, [smokeScript, "--url", topo.httpsUrl, "--replicas", "2"], { encoding: "utf8" });
    expect(untrusted.status).toBe(1);
    expect(untrusted.stdout).toMatch(/FAIL\s+TLS/);

    await topo.replicas[1].kill();
    const checks = await runSmoke({ url: topo.httpsUrl, trustPem: topo.tls.trustPem, replicas: topo.replicas.map((r) => r.name) });
    const replicas = checks.find((c) => c.name === "replicas")!;
    expect(replicas.ok).toBe(false);
    expect(replicas.detail).toContain("missing e2e-app-2");
    await topo.replicas[1].start();
    // Nginx takes the replica back after fail_timeout.
    await waitFor("the replica back in rotation", async () => {
        const again = await runSmoke({ url: topo.httpsUrl, trustPem: topo.tls.trustPem, replicas: topo.replicas.map((r) => r.name) });
        return again.every((c) => c.ok) ? true : undefined;
    }, 15_000);
});

test("without flags it reads url, trust anchor and replica names from `pulumi stack output`", () => {
    // A stand-in `pulumi` that prints what the real one prints for this stack.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "mlapi-fake-pulumi-"));
    const outputs = { url: topo.httpsUrl, certificatePem: topo.tls.certPem, replicaNames: topo.replicas.map((r) => r.name) };
    fs.writeFileSync(path.join(bin, "pulumi"), `#!/bin/sh\n[ "$*" = "stack output --json --stack dev" ] || exit 3\ncat <<'JSON'\n${JSON.stringify(outputs)}\nJSON\n`, { mode: 0o755 });
    try {
        const result = spawnSync(tsx, [smokeScript], { encoding: "utf8", env: { ...process.env, STACK: "dev", PATH: `${bin}:${process.env.PATH}` } });
        expect(result.stdout).toMatch(/PASS\s+TLS\s+.*certificate verified/);
        expect(result.stdout).toContain("5 passed, 0 failed");
        expect(result.status).toBe(0);
    } finally {
        fs.rmSync(bin, { recursive: true, force: true });
    }
});
