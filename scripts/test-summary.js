// Adds up the jest (JSON) and pytest (JUnit XML) results of a test run into
// one closing line: "Total: N passed, N failed, N skipped", after the reason
// of each suite skipped as a whole (a describe block titled "... (skipped: why)")
// and the start of each failure's message: a long log is cut in its middle,
// and the failures are what a reader of it needs.
const fs = require("fs");
const path = require("path");

const dir = process.argv[2];
let passed = 0;
let failed = 0;
let skipped = 0;
const skippedSuites = new Set();
const failures = [];
const excerpt = (message) => message.replace(/\u001b\[[0-9;]*m/g, "").trim().split("\n").slice(0, 12).join("\n    ");
const unescapeXml = (text) =>
    text.replace(/&(lt|gt|quot|apos|amp|#x?[0-9a-fA-F]+);/g, (_, e) =>
        ({ lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" })[e] ?? String.fromCodePoint(Number(e[1] === "x" ? `0${e.slice(1)}` : e.slice(1))));
for (const file of fs.readdirSync(dir)) {
    const text = fs.readFileSync(path.join(dir, file), "utf8");
    if (file.endsWith(".json")) {
        const run = JSON.parse(text);
        passed += run.numPassedTests;
        failed += run.numFailedTests + run.numRuntimeErrorTestSuites;
        skipped += run.numPendingTests + run.numTodoTests;
        for (const result of run.testResults) {
            for (const test of result.assertionResults) {
                const suite = test.ancestorTitles[0] || "";
                if (test.status === "pending" && /\(skipped: .+\)$/.test(suite)) skippedSuites.add(suite);
                if (test.status === "failed") failures.push(`${path.relative(process.cwd(), result.name)} › ${test.fullName}\n    ${excerpt(test.failureMessages.join("\n"))}`);
            }
            if (result.status === "failed" && result.assertionResults.length === 0) failures.push(`${path.relative(process.cwd(), result.name)}\n    ${excerpt(result.message || "")}`);
        }
    } else if (file.endsWith(".xml")) {
        const suite = /<testsuite [^>]*>/.exec(text)[0];
        const count = (name) => Number((new RegExp(`${name}="(\\d+)"`).exec(suite) || [0, 0])[1]);
        const skippedHere = count("skipped");
        const failedHere = count("failures") + count("errors");
        failed += failedHere;
        skipped += skippedHere;
        passed += count("tests") - failedHere - skippedHere;
        for (const [, attributes, body] of text.matchAll(/<testcase\b([^>]*[^/])>([\s\S]*?)<\/testcase>/g)) {
            const failure = /<(?:failure|error) message="([^"]*)"/.exec(body);
            const name = /\bclassname="([^"]*)"/.exec(attributes)[1] + "::" + /\bname="([^"]*)"/.exec(attributes)[1];
            if (failure) failures.push(`${file} › ${name}\n    ${excerpt(unescapeXml(failure[1]))}`);
        }
    }
}
for (const suite of skippedSuites) console.log(`Skipped: ${suite}`);
for (const failure of failures) console.log(`Failed: ${failure}`);
console.log(`Total: ${passed} passed, ${failed} failed, ${skipped} skipped`);
