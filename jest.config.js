// Unit tests (Pulumi mocks, pure functions, real `nginx -t`) and end-to-end
// tests (real processes, images and a browser) are separate projects so the
// fast set runs alone: `npx jest --selectProjects unit`.
const tsJest = ["ts-jest", { tsconfig: "tsconfig.json", diagnostics: false }];
module.exports = {
    projects: [
        {
            displayName: "unit",
            testEnvironment: "node",
            transform: { "^.+\\.ts$": tsJest },
            testMatch: ["<rootDir>/test/unit/**/*.test.ts"],
        },
        {
            displayName: "e2e",
            testEnvironment: "node",
            transform: { "^.+\\.ts$": tsJest },
            testMatch: ["<rootDir>/test/e2e/**/*.test.ts"],
        },
        {
            displayName: "engine",
            testEnvironment: "node",
            transform: { "^.+\\.ts$": tsJest },
            testMatch: ["<rootDir>/test/engine/**/*.test.ts"],
        },
        {
            displayName: "swarm",
            testEnvironment: "node",
            transform: { "^.+\\.ts$": tsJest },
            testMatch: ["<rootDir>/test/swarm/**/*.test.ts"],
        },
    ],
};
