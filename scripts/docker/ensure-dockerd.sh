#!/usr/bin/env bash
# Makes a Docker engine available on this machine for the tests and examples:
# installs Debian's docker.io (and busybox-static, used by build-base-image.sh) when dockerd is
# missing, starts dockerd in the background when it is not answering, and waits until `docker info`
# works. Idempotent; safe to call from .ci/run on every run. Needs root (apt-get, dockerd).
#
#   AIRTASKS_DOCKERD_LOG   where dockerd writes its log (default /var/log/airtasks-dockerd.log)
#   AIRTASKS_DOCKERD_WAIT  seconds to wait for the engine (default 60)
set -euo pipefail

log=${AIRTASKS_DOCKERD_LOG:-/var/log/airtasks-dockerd.log}
wait_s=${AIRTASKS_DOCKERD_WAIT:-60}

say() { echo "[ensure-dockerd] $*" >&2; }

need=()
# busybox-static is needed by build-base-image.sh even where an engine already answers.
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || need+=(busybox-static)
if docker info >/dev/null 2>&1 && [ ${#need[@]} -eq 0 ]; then
  say "Docker engine already answering"
  exit 0
fi
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "starting dockerd (log: $log)"
  # setsid + nohup: the engine outlives this script and the shell that called it.
  setsid nohup dockerd >>"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$wait_s"); do
  if docker info >/dev/null 2>&1; then
    say "Docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
  fi
  sleep 1
done
say "dockerd did not answer within ${wait_s}s; last lines of $log:"
tail -n 30 "$log" >&2 || true
exit 1
