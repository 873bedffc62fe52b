// Certificate renewal on a plain `pulumi up`: the key and certificate carry a
// renewal generation in their names, so once a certificate is inside its
// renewal window the next run issues a new one and rolls Nginx.
import { DEFAULTS } from "../../components/config";
import { renewalGeneration } from "../../components/certificate";
import { PROXY_FILES } from "../../components/layout";
import { plain, runProgram } from "./program";

const DAY = 24 * 3600 * 1000;
const T0 = Date.UTC(2026, 10, 28);

const names = (run: Awaited<ReturnType<typeof runProgram>>) => run.resources.filter((r) => r.type.startsWith("tls:")).map((r) => r.name).sort();
const uploadedCert = (run: Awaited<ReturnType<typeof runProgram>>) => {
    const loader = run.ofType("docker:index/container:Container").find((c) => c.inputs.name.endsWith("-proxy-install"))!;
    return plain(loader.inputs.uploads).find((u: any) => u.file === PROXY_FILES.certificate).content as string;
};

test("any certificate is replaced by the first run inside its renewal window, and at most once per period", () => {
    const validity = DEFAULTS.certValidityDays;
    const windowStart = validity - DEFAULTS.certRenewalDays;
    for (let issuedHours = 0; issuedHours < 24 * 200; issuedHours += 7) {
        const issued = T0 + issuedHours * 3600 * 1000;
        const generation = renewalGeneration(issued, DEFAULTS);
        // Inside the renewal window, whenever the run happens: a new generation.
        for (const day of [windowStart, windowStart + 1, validity - 1]) expect(renewalGeneration(issued + day * DAY, DEFAULTS)).not.toBe(generation);
        // Generations last validity - renewal days: never two renewals in a shorter time.
        const next = renewalGeneration(issued + windowStart * DAY - 1, DEFAULTS);
        expect(next - generation).toBeLessThanOrEqual(1);
    }
});

test("a run inside the renewal window issues a new key and certificate and rolls Nginx; an earlier run changes nothing", async () => {
    const periodDays = DEFAULTS.certValidityDays - DEFAULTS.certRenewalDays;
    const start = (renewalGeneration(T0, DEFAULTS) + 1) * periodDays * DAY; // the start of a generation
    const first = await runProgram({}, { now: start });
    const sameGeneration = await runProgram({}, { now: start + (periodDays - 1) * DAY });
    const renewed = await runProgram({}, { now: start + periodDays * DAY });

    expect(names(sameGeneration)).toEqual(names(first));
    expect(names(renewed)).not.toEqual(names(first));
    expect(names(renewed)).toEqual(names(first).map((n) => n.replace(/-g(\d+)$/, (_, g) => `-g${Number(g) + 1}`)));
    // The new certificate reaches the proxy's files (the install step's uploads force its replacement).
    expect(uploadedCert(renewed)).not.toEqual(uploadedCert(first));
});

test("the local CA is not renewed with the server certificate (users trust it once)", async () => {
    const first = await runProgram({ tlsMode: "local-ca" }, { now: T0 });
    const later = await runProgram({ tlsMode: "local-ca" }, { now: T0 + 365 * DAY });
    const caNames = (run: typeof first) => names(run).filter((n) => n.includes("-ca-"));
    expect(caNames(first)).toEqual(["server-ca-cert", "server-ca-key"]);
    expect(caNames(later)).toEqual(caNames(first));
    expect(names(later)).not.toEqual(names(first));
});
