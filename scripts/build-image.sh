#!/usr/bin/env bash
# Build covgen's container image from this checkout.
#   bash scripts/build-image.sh [TAG]        (default tag: covgen:latest)
#
# With a Docker engine, or a podman that can pull the Dockerfile's base image, this is a plain
# `docker build` / `podman build`. Without a reachable registry (CI here), it makes the base image
# itself: Debian's debootstrap writes a minimal bookworm (what debian:bookworm-slim is), `podman
# import` stores it under the name the Dockerfile's FROM uses, and the build runs with
# --pull=never. That base is made once and reused. Idempotent; installs what it needs with apt.
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-covgen:latest}"
base="$(sed -n 's/^FROM \([^ ]*\) AS .*/\1/p' Dockerfile | head -n 1)"
# podman stores an unqualified name under localhost/; the Dockerfile's FROM resolves to docker.io.
case "$base" in
  */*/*) qualified_base="$base" ;;
  */*) qualified_base="docker.io/$base" ;;
  *) qualified_base="docker.io/library/$base" ;;
esac
suite="${base##*:}"; suite="${suite%-slim}"
mirror="${COVGEN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

say() { printf 'build-image: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  say "Docker engine found: docker build -t $tag ."
  exec docker build -t "$tag" .
fi

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
needed=()
command -v podman >/dev/null || needed+=(podman)
command -v runc >/dev/null || needed+=(runc)
if [ "${#needed[@]}" -gt 0 ]; then
  say "installing ${needed[*]} with apt"
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
fi

# cgroupfs and runc: no systemd session or crun on a plain CI machine; bounded ulimits: the
# host's may exceed what the OCI runtime may set.
podman=(podman --cgroup-manager=cgroupfs --runtime runc)
limits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

if "${podman[@]}" image exists "$qualified_base"; then
  say "base image $qualified_base is already here"
elif timeout 120 "${podman[@]}" pull -q "$qualified_base" >/dev/null 2>&1; then
  say "pulled $qualified_base"
else
  say "no registry answers: bootstrapping $qualified_base from $mirror ($suite) with debootstrap"
  if ! command -v debootstrap >/dev/null; then
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/covgen-rootfs.XXXXXX")"
  trap '"${as_root[@]}" rm -rf "$rootfs" "$rootfs.log"' EXIT  # also when debootstrap fails half-way
  if ! "${as_root[@]}" debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    say "debootstrap failed; its last lines:"
    tail -n 20 "$rootfs.log" >&2
    exit 1
  fi
  # What the -slim images do: the archive list (with security updates), no documentation
  # installed by later apt runs, no package lists or caches left in the layer.
  "${as_root[@]}" rm -f "$rootfs/etc/apt/sources.list"
  "${as_root[@]}" tee "$rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  "${as_root[@]}" tee "$rootfs/etc/dpkg/dpkg.cfg.d/slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  "${as_root[@]}" tee "$rootfs/etc/apt/apt.conf.d/slim" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Acquire::Languages "none";
EOF
  "${as_root[@]}" find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  "${as_root[@]}" rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*/ \
    "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
  "${as_root[@]}" tar --numeric-owner -C "$rootfs" -c . |
    "${podman[@]}" import --change 'CMD ["bash"]' - "$qualified_base" >/dev/null
  "${as_root[@]}" rm -rf "$rootfs" "$rootfs.log"
  trap - EXIT
  say "imported $qualified_base"
fi

# The host's CA bundle, for pip behind a TLS-inspecting proxy (a build secret: not kept in the image).
ca_bundle="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
secret=()
[ -s "$ca_bundle" ] && secret=(--secret "id=ca-bundle,src=$ca_bundle")
say "podman build -t $tag ."
# --network host: apt and pip inside the build reach the same mirrors this machine does.
exec "${podman[@]}" build --pull=never --network host "${limits[@]}" "${secret[@]}" -t "$tag" .
