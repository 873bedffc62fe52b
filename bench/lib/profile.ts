// Sums py-spy's raw (collapsed stack) output into where the workers' CPU goes.
import * as fs from "fs";

interface Frame {
    name: string;
    file: string;
}

function parseFrame(text: string): Frame | undefined {
    // "function (path/to/file.py:123)"
    const match = /^(.*) \((.*?)(?::\d+)?\)$/.exec(text.trim());
    return match ? { name: match[1], file: match[2] } : undefined;
}

/** Buckets of self time, by the file the innermost Python frame runs in. */
const BUCKETS: [string, RegExp][] = [
    ["mlapi: JSON body parsing (payload.py + json)", /mlapi\/payload\.py$|(^|\/)json\/(decoder|__init__)\.py$/],
    ["mlapi: validation, features and tree walk (records/fields/tree/registry)", /mlapi\/(records|fields|tree|registry)\.py$/],
    ["mlapi: endpoint and response hooks (api.py, app.py)", /mlapi\/(api|app|errors)\.py$/],
    ["Flask (routing, request/app context, jsonify, response)", /(^|\/)flask\//],
    ["Werkzeug (environ, request/response objects, headers, routing)", /(^|\/)werkzeug\//],
    // app/gunicorn.conf.py's own frames are the access line (AccessLogger) and a one-line worker override.
    ["Gunicorn access log (AccessLogger in gunicorn.conf.py, glogging, logging)", /gunicorn\.conf\.py$|gunicorn\/glogging\.py$|(^|\/)logging\//],
    ["Gunicorn HTTP parsing and worker loop", /(^|\/)gunicorn\/|(^|\/)concurrent\/futures\/|(^|\/)(selectors|threading|queue)\.py$/],
    ["gevent (event loop, cooperative sockets, timeouts)", /(^|\/)(gevent|greenlet)\//],
    ["sockets and other I/O (stdlib)", /(^|\/)(socket|ssl)\.py$/],
];

export interface ProfileSummary {
    samples: number;
    buckets: { name: string; share: number }[];
    topSelf: { frame: string; share: number }[];
    topInclusive: { frame: string; share: number }[];
    /** Share of samples under the prediction view (mlapi/api.py predict). */
    predictViewShare: number;
    /** Share of samples under mlapi's own prediction work (body parse, validation, tree walk). */
    mlapiWorkShare: number;
}

export function summariseRawProfile(file: string): ProfileSummary {
    const self = new Map<string, number>();
    const inclusive = new Map<string, number>();
    const buckets = new Map<string, number>();
    let samples = 0;
    let predictView = 0;
    let mlapiWork = 0;
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
        const match = /^(.*) (\d+)$/.exec(line.trim());
        if (!match) continue;
        const count = Number(match[2]);
        const frames = match[1]
            .split(";")
            .map(parseFrame)
            .filter((f): f is Frame => f !== undefined && f.file.endsWith(".py"));
        if (frames.length === 0) continue;
        samples += count;
        const leaf = frames[frames.length - 1];
        const leafKey = `${leaf.name} (${shortPath(leaf.file)})`;
        self.set(leafKey, (self.get(leafKey) ?? 0) + count);
        const bucket = BUCKETS.find(([, pattern]) => pattern.test(leaf.file))?.[0] ?? "other Python (stdlib and more)";
        buckets.set(bucket, (buckets.get(bucket) ?? 0) + count);
        const seen = new Set<string>();
        for (const frame of frames) {
            const key = `${frame.name} (${shortPath(frame.file)})`;
            if (seen.has(key)) continue;
            seen.add(key);
            inclusive.set(key, (inclusive.get(key) ?? 0) + count);
        }
        if (frames.some((f) => f.name === "predict" && f.file.endsWith("mlapi/api.py"))) predictView += count;
        if (frames.some((f) => /mlapi\/(payload|records|fields|tree|registry)\.py$/.test(f.file))) mlapiWork += count;
    }
    const top = (map: Map<string, number>, n: number) =>
        [...map.entries()]
            .sort((a, b) => b[1] - a[1])
            .slice(0, n)
            .map(([frame, count]) => ({ frame, share: count / samples }));
    return {
        samples,
        buckets: [...buckets.entries()].sort((a, b) => b[1] - a[1]).map(([name, count]) => ({ name, share: count / samples })),
        topSelf: top(self, 15),
        topInclusive: top(inclusive, 25),
        predictViewShare: predictView / samples,
        mlapiWorkShare: mlapiWork / samples,
    };
}

function shortPath(file: string): string {
    const site = file.indexOf("site-packages/");
    if (site >= 0) return file.slice(site + "site-packages/".length);
    const app = file.indexOf("/app/mlapi/");
    if (app >= 0) return file.slice(app + "/app/".length);
    const lib = /\/lib\/python3\.\d+\/(.*)$/.exec(file);
    return lib ? lib[1] : file;
}

/**
 * Rewrites py-spy's raw output compactly: Python frames only, without line
 * numbers or the process frames, identical stacks merged, largest first.
 * Still the collapsed-stack format flame graph tools read.
 */
export function compactRawProfile(rawFile: string, outFile: string): void {
    const stacks = new Map<string, number>();
    for (const line of fs.readFileSync(rawFile, "utf8").split("\n")) {
        const match = /^(.*) (\d+)$/.exec(line.trim());
        if (!match) continue;
        const frames = match[1]
            .split(";")
            .map(parseFrame)
            .filter((f): f is Frame => f !== undefined && f.file.endsWith(".py"))
            .map((f) => `${f.name} (${shortPath(f.file)})`);
        if (frames.length === 0) continue;
        const key = frames.join(";");
        stacks.set(key, (stacks.get(key) ?? 0) + Number(match[2]));
    }
    const lines = [...stacks.entries()].sort((a, b) => b[1] - a[1]).map(([stack, count]) => `${stack} ${count}`);
    fs.writeFileSync(outFile, lines.join("\n") + "\n");
}
