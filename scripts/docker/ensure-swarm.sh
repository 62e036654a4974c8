#!/usr/bin/env bash
# Makes this machine's Docker engine a one-node swarm manager (for `airtasks secrets` and
# `airtasks deploy --swarm` on one machine and in tests). Idempotent: does nothing when the engine
# is already a manager. Swarm traffic stays on loopback (--advertise-addr 127.0.0.1).
set -euo pipefail
say() { echo "[ensure-swarm] $*" >&2; }
state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown)
control=$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null || echo false)
if [ "$state" = active ] && [ "$control" = true ]; then
  say "already a swarm manager"
  exit 0
fi
if [ "$state" = active ]; then
  say "this engine is a swarm worker; run airtasks against a manager"
  exit 1
fi
docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null
say "one-node swarm initialised (manager on 127.0.0.1)"
