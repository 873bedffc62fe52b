// The stack's Nginx (its rendered config, TLS with a certificate issued as the
// stack issues it) in front of one upstream, for bench/ab-main.sh's "through
// the stack" runs: both sides of the A/B are measured through this same
// front. The rate limit is raised as in bench/run.ts, so that the limit is
// not what is measured.
//
//   npx tsx bench/ab-front.ts UPSTREAM DIR     UPSTREAM host:port, DIR an empty folder
//
// Prints one line, "<https url> <trust file>", once Nginx serves HTTPS, and
// runs until SIGTERM or SIGINT, when it stops Nginx (graceful) and exits.
import * as fs from "fs";
import { parseSettings } from "../components/config";
import { issueCertificate, startNginx } from "../test/e2e/harness";

const BENCH_CONFIG: Record<string, string> = { rateLimitPerSecond: "1000000", rateLimitBurst: "1000000" };

async function main(): Promise<void> {
    const [upstream, dir] = process.argv.slice(2);
    if (!upstream || !/^[\w.-]+:\d+$/.test(upstream) || !dir) {
        throw new Error("usage: npx tsx bench/ab-front.ts HOST:PORT DIR");
    }
    const settings = parseSettings((key) => BENCH_CONFIG[key]);
    fs.mkdirSync(dir, { recursive: true });
    // Nginx's workers (nobody, when the master runs as root) create their temp dirs here.
    fs.chmodSync(dir, 0o755);
    const front = await startNginx(settings, dir, issueCertificate(settings), [upstream]);
    let stopping = false;
    const stop = () => {
        if (stopping) return;
        stopping = true;
        void front.stop().then(() => process.exit(0));
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    console.log(`${front.httpsUrl} ${front.trustFile}`);
    // Keep the event loop alive until a signal comes.
    setInterval(() => undefined, 1 << 30);
}

main().catch((error: Error) => {
    console.error(`ab-front: ${error.message}`);
    process.exit(1);
});
