// Adds up the jest (JSON) and pytest (JUnit XML) results of a test run into
// one closing line: "Total: N passed, N failed, N skipped", after the reason
// of each suite skipped as a whole (a describe block titled "... (skipped: why)").
const fs = require("fs");
const path = require("path");

const dir = process.argv[2];
let passed = 0;
let failed = 0;
let skipped = 0;
const skippedSuites = new Set();
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
            }
        }
    } else if (file.endsWith(".xml")) {
        const suite = /<testsuite [^>]*>/.exec(text)[0];
        const count = (name) => Number((new RegExp(`${name}="(\\d+)"`).exec(suite) || [0, 0])[1]);
        const skippedHere = count("skipped");
        const failedHere = count("failures") + count("errors");
        failed += failedHere;
        skipped += skippedHere;
        passed += count("tests") - failedHere - skippedHere;
    }
}
for (const suite of skippedSuites) console.log(`Skipped: ${suite}`);
console.log(`Total: ${passed} passed, ${failed} failed, ${skipped} skipped`);
