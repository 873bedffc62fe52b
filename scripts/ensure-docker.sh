#!/usr/bin/env bash
# Starts dockerd when no engine answers, and makes sure the base image the
# Dockerfiles default to exists. Docker Hub may be unreachable (as on CI), so
# when `debian:trixie-slim` cannot be pulled it is built from Debian's
# packages with mmdebstrap and imported under the same name.
set -euo pipefail

BASE_IMAGE="${BASE_IMAGE:-debian:trixie-slim}"

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "ensure-docker: no Docker engine and no dockerd to start" >&2
    exit 1
  fi
  echo "ensure-docker: starting dockerd" >&2
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "ensure-docker: dockerd did not start, see /tmp/dockerd.log" >&2; exit 1; }
fi

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if ! timeout 60 docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
    suite="${BASE_IMAGE#*:}"; suite="${suite%-slim}"
    echo "ensure-docker: cannot pull $BASE_IMAGE, building it from Debian's $suite packages" >&2
    tarball="$(mktemp -d)/base.tar"
    mmdebstrap --quiet --variant=minbase "$suite" "$tarball"
    docker import "$tarball" "$BASE_IMAGE" >/dev/null
    rm -rf "$(dirname "$tarball")"
  fi
fi
echo "ensure-docker: engine up, $BASE_IMAGE present" >&2
