#!/usr/bin/env bash
# `./breeze setup` as a new user runs it: a fresh clone of the committed HEAD, no .build/, and empty
# download caches for breeze, uv and pip. Then its wheels must equal this checkout's, byte for byte.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/breeze-fresh.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
git clone --quiet --no-hardlinks "$root" "$scratch/clone"
echo "==> Fresh clone, empty caches: ./breeze setup in $scratch/clone"
started=$SECONDS
env -u BREEZE_ROOT -u BREEZE_UV \
  BREEZE_CACHE="$scratch/breeze-cache" UV_CACHE_DIR="$scratch/uv-cache" \
  PIP_CACHE_DIR="$scratch/pip-cache" PIP_NO_CACHE_DIR=1 \
  "$scratch/clone/breeze" setup
echo "    fresh setup done in $((SECONDS - started))s"
"$root/breeze" setup
for wheel in "$scratch"/clone/dist/*.whl; do
  cmp "$wheel" "$root/dist/$(basename "$wheel")" \
    || { echo "FAIL: $(basename "$wheel") differs between two builds of the same series" >&2; exit 1; }
done
echo "ok   fresh-clone setup from empty caches; its $(ls "$scratch"/clone/dist/*.whl | wc -l) wheels are byte-identical to this checkout's"
