#!/usr/bin/env bash
# Drives the stack with the local file state backend of Pulumi.yaml, so no
# account or login is needed:  up | destroy | url | pulumi ARGS...
# (STACK=dev by default). "pulumi ARGS" runs any pulumi command with the
# stack's passphrase (npm run pulumi -- config set replicas 4).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh

command -v pulumi >/dev/null || { echo "stack.sh: the Pulumi CLI is needed (https://www.pulumi.com/docs/install/)" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "stack.sh: no Docker engine answers (is the daemon running, may this user use it?)" >&2; exit 1; }

# The stack's secrets (the TLS key) are encrypted with a passphrase. Unless
# you give one, a random one is kept beside the local state, readable by you only.
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  passphrase_file=.pulumi-state/passphrase
  [ -f "$passphrase_file" ] || (umask 077 && head -c 32 /dev/urandom | base64 > "$passphrase_file")
  export PULUMI_CONFIG_PASSPHRASE_FILE="$PWD/$passphrase_file"
fi

stack="${STACK:-dev}"
[ -d node_modules ] || npm ci --no-audit --no-fund
if [ "${1:-}" = pulumi ]; then
  shift
  # The stack deploy selected (or STACK's, once it exists): the command sees what pulumi up saw.
  if [ -n "${STACK:-}" ] || ! pulumi stack --show-name >/dev/null 2>&1; then
    pulumi stack select --create --secrets-provider passphrase "$stack" >/dev/null
  fi
  exec pulumi "$@"
fi
pulumi stack select --create --secrets-provider passphrase "$stack" >/dev/null

case "${1:-}" in
  # The images build FROM the stack's base image: pulled, or made from
  # Debian's packages where no registry has it (scripts/ensure-docker.sh,
  # whose default base image applies when the stack sets none).
  up)
    BASE_IMAGE="$(pulumi config get baseImage --stack "$stack" 2>/dev/null || true)" bash scripts/ensure-docker.sh
    pulumi up --yes --stack "$stack" && echo && echo "Open $(pulumi stack output url --stack "$stack")" ;;
  # docker.Image never deletes what it built (provider behaviour): remove the
  # two local images too, so nothing of the stack is left.
  destroy)
    pulumi destroy --yes --stack "$stack"
    docker image rm --force "mlapi-$stack-models:latest" "mlapi-$stack-app:latest" "mlapi-$stack-proxy:latest" >/dev/null 2>&1 || true ;;
  url)     pulumi stack output url --stack "$stack" ;;
  *)       echo "usage: scripts/stack.sh up|destroy|url|pulumi ARGS..." >&2; exit 2 ;;
esac
