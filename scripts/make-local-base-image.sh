#!/usr/bin/env bash
# Build a registry-free base image (Debian bookworm minbase + its Python 3.11) for
# `./breeze build-image --engine buildah --base-image localhost/teams-base`, for machines that
# cannot pull python:3.11-slim-bookworm. Needs root, debootstrap and buildah. See docs/image.md.
set -euo pipefail
NAME="${1:-localhost/teams-base}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
# Extra CA certificates (e.g. of a TLS-intercepting egress proxy) that pip inside the build must trust.
EXTRA_CA_DIR="${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"

container="$(buildah from scratch)"
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
rootfs="$(buildah mount "$container")"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$rootfs" "$MIRROR"
if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
  cp "$EXTRA_CA_DIR"/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates
fi
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
buildah umount "$container"
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --cmd python3 "$container"
buildah commit --rm "$container" "$NAME"
trap - EXIT
