#!/usr/bin/env bash
# Builds the local base image the Docker tests and examples run in, without any registry:
# a tar of the host's `node` and `bash` binaries, the libraries `ldd` lists for them, a static
# busybox (Debian's busybox-static) with its applets as links, /etc/passwd + /etc/group and /tmp,
# loaded with `docker import`. It has what a project image's base needs (node, sh, bash: see the
# scaffold's Dockerfile). Idempotent and fast: the image carries a label with a hash of its inputs and is
# rebuilt only when that hash changes (a new node or busybox). Prints the image name on stdout.
#
#   AIRTASKS_BASE_IMAGE  image name (default airtasks-test/node-base:local)
#   FORCE=1              rebuild even when the image is up to date
set -euo pipefail

image=${AIRTASKS_BASE_IMAGE:-airtasks-test/node-base:local}
say() { echo "[build-base-image] $*" >&2; }

node_bin=$(readlink -f "$(command -v node)")
bash_bin=$(readlink -f "$(command -v bash)")
busybox_bin=""
for b in /bin/busybox /usr/bin/busybox; do
  if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then busybox_bin=$b; break; fi # static: ldd refuses it
done
if [ -z "$busybox_bin" ]; then
  say "installing busybox-static (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
  busybox_bin=/bin/busybox
fi

mapfile -t libs < <(ldd "$node_bin" "$bash_bin" | awk '/=> \//{print $3} /^\s*\/[^ ]+ \(/{print $1}' | sort -u)
inputs_hash=$( (echo v2; sha256sum "$node_bin" "$bash_bin" "$busybox_bin"; for l in "${libs[@]}"; do sha256sum "$(readlink -f "$l")"; done) | sha256sum | cut -c1-16)

current=$(docker image inspect --format '{{ index .Config.Labels "airtasks.inputs" }}' "$image" 2>/dev/null || true)
if [ "${FORCE:-0}" != 1 ] && [ "$current" = "$inputs_hash" ]; then
  say "$image is up to date ($inputs_hash)"
  echo "$image"
  exit 0
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,tmp,root,home,run,var/tmp,proc,sys,dev,work}
chmod 1777 "$root/tmp" "$root/var/tmp"
install -m 0755 "$node_bin" "$root/usr/local/bin/node"
install -m 0755 "$bash_bin" "$root/bin/bash"
install -m 0755 "$busybox_bin" "$root/bin/busybox"
for l in "${libs[@]}"; do
  mkdir -p "$root$(dirname "$l")"
  cp -L "$l" "$root$l"
done
# Every applet as a link to busybox, where no file of that name is there already.
while read -r applet; do
  [ -n "$applet" ] || continue
  [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done < <("$busybox_bin" --list-full)
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
airtasks:x:1000:1000:airtasks:/home/airtasks:/bin/sh
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
airtasks:x:1000:
GROUP
mkdir -p "$root/home/airtasks" && chown 1000:1000 "$root/home/airtasks"
echo "hosts: files dns" >"$root/etc/nsswitch.conf"

tar -C "$root" --numeric-owner -cf "$stage/rootfs.tar" .
docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin' \
  --change 'CMD ["/bin/sh"]' \
  --change 'WORKDIR /' \
  --change "LABEL airtasks.inputs=$inputs_hash" \
  --message "airtasks test base: node $("$node_bin" --version) + bash + busybox" \
  "$stage/rootfs.tar" "$image" >/dev/null
say "built $image ($inputs_hash, $(du -h "$stage/rootfs.tar" | cut -f1))"
echo "$image"
