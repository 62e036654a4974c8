#!/usr/bin/env bash
# Builds local stand-ins for the three third-party images of the stack (postgres, rabbitmq, nginx),
# from Debian packages, without any registry: CI and the stack e2e tests deploy the generated stack
# with these (airtasks.json "images"). They are test fixtures, not shipped; each honours the contract
# of the image the stack names (stack-images/*/Dockerfile says which).
#   1. airtasks-test/debian:<suite>: debootstrap --variant=minbase from this machine's apt mirror,
#      then `docker import` (~2 min cold).
#   2. airtasks-test/{postgres,rabbitmq,proxy}:local: Dockerfiles FROM it that copy this machine's
#      apt configuration and apt-get install the packages (`docker build --network host`).
# Cached: every image carries a label with a hash of its inputs (this script, its Dockerfile folder,
# the apt configuration, the image it is built FROM) and is rebuilt only when that hash changes.
# Prints KEY=IMAGE lines (postgres, rabbitmq, proxy) on stdout; progress on stderr. Needs root
# (apt-get install debootstrap, debootstrap).
#
#   AIRTASKS_STACK_IMAGES_PREFIX  repository prefix (default airtasks-test)
#   FORCE=1                       rebuild all, even when up to date
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prefix=${AIRTASKS_STACK_IMAGES_PREFIX:-airtasks-test}
say() { echo "[build-stack-images] $*" >&2; }
elapsed() { echo "$(($(date +%s) - $1))s"; }

# shellcheck disable=SC1091
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
base="$prefix/debian:$suite"

# This machine's apt configuration, as the images will use it (no auth.conf.d: no credentials).
apt_files() {
  local p paths=()
  for p in /etc/apt/sources.list /etc/apt/sources.list.d /etc/apt/apt.conf.d /etc/apt/keyrings \
    /etc/apt/trusted.gpg /etc/apt/trusted.gpg.d /etc/apt/preferences.d; do
    [ -e "$p" ] && paths+=("$p")
  done
  find "${paths[@]}" -maxdepth 1 -type f \( -name '*.sources' -o -name '*.list' -o -name '*.gpg' -o -name '*.asc' \
    -o -path '/etc/apt/apt.conf.d/*' -o -path '/etc/apt/preferences.d/*' -o -name sources.list \
    -o -name trusted.gpg \) | sort
}
# The first mirror of the Debian archive for this suite (deb822 .sources, then one-line .list).
mirror() {
  local m
  m=$(awk -v s="$suite" '
      /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) found = uri }
      /^$/ { uri = "" } found { print found; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  echo "${m:-http://deb.debian.org/debian}"
}
label() { docker image inspect --format '{{ index .Config.Labels "airtasks.inputs" }}' "$1" 2>/dev/null || true; }
hash_of() { sha256sum | cut -c1-16; }

apt_hash=$(apt_files | xargs -r sha256sum | hash_of)
script_hash=$(hash_of <"$0") # the content only: the path it is called by varies

# --- 1. the Debian base ---------------------------------------------------------------------------
url=$(mirror)
base_hash=$(printf '%s\n' v1 "$suite" "$url" "$apt_hash" "$script_hash" | hash_of)
if [ "${FORCE:-0}" != 1 ] && [ "$(label "$base")" = "$base_hash" ]; then
  say "$base is up to date ($base_hash)"
else
  start=$(date +%s)
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  fi
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  say "debootstrap --variant=minbase $suite from $url"
  debootstrap --variant=minbase "$suite" "$stage/rootfs" "$url" >"$stage/debootstrap.log" 2>&1 ||
    { tail -n 30 "$stage/debootstrap.log" >&2; exit 1; }
  # No service starts inside an image build; no package lists or archives kept.
  printf '#!/bin/sh\nexit 101\n' >"$stage/rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$stage/rootfs/usr/sbin/policy-rc.d"
  rm -rf "$stage/rootfs/var/cache/apt/archives/"*.deb "$stage/rootfs/var/lib/apt/lists/"*
  tar -C "$stage/rootfs" --numeric-owner -c . | docker import \
    --change 'CMD ["/bin/bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL airtasks.inputs=$base_hash" \
    --message "airtasks test fixture: debootstrap minbase $suite" - "$base" >/dev/null
  rm -rf "$stage"
  trap - EXIT
  say "built $base ($base_hash) in $(elapsed "$start")"
fi
base_id=$(docker image inspect --format '{{.Id}}' "$base")

# --- 2. the three images, in parallel ----------------------------------------------------------------
build_one() {
  local key=$1 image="$prefix/$key:local" dir="$here/stack-images/$1" hash ctx start
  hash=$( (echo v1 "$base_id" "$apt_hash" "$script_hash"; cd "$dir" && find . -type f | sort | xargs sha256sum) | hash_of)
  if [ "${FORCE:-0}" != 1 ] && [ "$(label "$image")" = "$hash" ]; then
    say "$image is up to date ($hash)"
    return 0
  fi
  start=$(date +%s)
  ctx=$(mktemp -d)
  cp -a "$dir/." "$ctx/"
  mkdir -p "$ctx/apt"
  apt_files | while read -r f; do
    mkdir -p "$ctx/apt/$(dirname "${f#/etc/apt/}")"
    cp "$f" "$ctx/apt/${f#/etc/apt/}"
  done
  say "building $image"
  if ! docker build --network host --build-arg "BASE=$base" --label "airtasks.inputs=$hash" \
    -t "$image" "$ctx" >"$ctx.log" 2>&1; then
    tail -n 40 "$ctx.log" >&2
    rm -rf "$ctx" "$ctx.log"
    return 1
  fi
  rm -rf "$ctx" "$ctx.log"
  say "built $image ($hash) in $(elapsed "$start")"
}

pids=()
for key in postgres rabbitmq proxy; do
  build_one "$key" &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" = 0 ] || { say "an image failed to build (see above)"; exit 1; }
for key in postgres rabbitmq proxy; do echo "$key=$prefix/$key:local"; done
