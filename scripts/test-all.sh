#!/usr/bin/env bash
# Every test of the project: type check, unit tests (Pulumi mocks, renderer,
# nginx -t), app tests (pytest), end-to-end (proxy, faults, smoke, browser,
# real Docker images), the swarm harness, the real engine. Each part runs even if an earlier one failed; the exit
# code is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

# One command on a fresh machine: install what the tests need (Debian
# packages, Node 22, npm and Python packages), start the Docker engine and
# make the base image if missing. The Docker suites then fail, naming the
# reason, rather than skip, when Docker cannot run (REQUIRE_DOCKER=0 and
# REQUIRE_SWARM=0 let them skip instead).
bash scripts/setup.sh || { echo "test-all: scripts/setup.sh failed (it installs as root on Debian)" >&2; exit 1; }
bash scripts/ensure-docker.sh || echo "test-all: no Docker engine; the Docker suites will say why they fail" >&2
export REQUIRE_DOCKER="${REQUIRE_DOCKER:-1}" REQUIRE_SWARM="${REQUIRE_SWARM:-1}"
# Where the network intercepts TLS with locally added CAs, pip inside the app
# image build must trust them too (the stack's buildCaCertFile setting).
if [ -z "${MLAPI_BUILD_CA_CERT_FILE:-}" ] && compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p build
  cat /usr/local/share/ca-certificates/*.crt > build/build-ca.pem
  export MLAPI_BUILD_CA_CERT_FILE="$PWD/build/build-ca.pem"
fi
source scripts/node-env.sh

results=build/test-results
rm -rf "$results" && mkdir -p "$results"
status=0
step() {
  local name="$1"; shift
  echo "=== $name"
  local started=$SECONDS
  if "$@"; then echo "=== $name: ok ($((SECONDS - started)) s)"; else echo "=== $name: FAILED ($((SECONDS - started)) s)"; status=1; fi
}

step "type check (tsc --noEmit, strict)" npx tsc --noEmit -p .
step "unit tests (jest, Pulumi mocks)" npx jest --selectProjects unit --json --outputFile "$results/unit.json"
step "app tests (pytest)" .venv/bin/python -m pytest test/app -q -p no:cacheprovider --junitxml "$results/app.xml"
step "end-to-end tests (jest)" npx jest --selectProjects e2e --runInBand --json --outputFile "$results/e2e.json"
step "swarm tests (jest, a 3-node Docker Swarm in network namespaces; needs root)" npx jest --selectProjects swarm --runInBand --json --outputFile "$results/swarm.json"
step "real-engine tests (jest, Automation API; skipped without a Pulumi CLI and plugins)" npx jest --selectProjects engine --runInBand --json --outputFile "$results/engine.json"

node scripts/test-summary.js "$results"
exit $status
