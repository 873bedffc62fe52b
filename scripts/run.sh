#!/usr/bin/env bash
# Runs a command with the project's Node.js (>= 22, see node-env.sh) first on
# PATH: every npm script goes through it, whatever node the machine has.
set -euo pipefail
source "$(dirname "$0")/node-env.sh"
exec "$@"
