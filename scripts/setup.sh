#!/usr/bin/env bash
# Installs everything the stack's tests need on a fresh Debian machine (as
# root): Debian packages, Node.js >= 22, the npm packages and a Python venv.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  nginx openssl curl ca-certificates   # the proxy under test, certificates, the tutorial's curl
  libnginx-mod-stream                  # the swarm's port forwarder config, checked with nginx -t
  chromium libnss3-tools               # browser tests; certutil to trust the local CA
  docker.io mmdebstrap                 # real images; the base image built from Debian packages
  testssl.sh wrk jq                    # TLS scan, load, JSON in scripts
  libengine-gost-openssl               # testssl.sh checks GOST ciphers through it (else engine_problem)
  docker-registry skopeo               # the swarm tests' registry, and copying images into it
)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# Installing nginx and docker-registry starts their services (ports 80 and
# 5000). The tests use ports of their own, but on a CI machine nothing else
# needs them: only there are they switched off.
if [ "${CI:-}" = "true" ]; then
  systemctl disable --now nginx docker-registry >/dev/null 2>&1 || true
fi

source scripts/node-env.sh
echo "setup: node $(node --version)" >&2
# Again only when package-lock.json changed since the last install.
[ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check \
  -r requirements-dev.txt -r app/requirements.txt -r test/app/requirements.txt -r test/security/requirements.txt -r bench/requirements.txt
