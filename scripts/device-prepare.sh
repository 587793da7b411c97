#!/usr/bin/env bash
# Packs what a bare GPU machine needs to run this project's CLI into .device/ (ignored by git):
# Node.js, the Vulkan loader (+ glvnd, which the NVIDIA Vulkan driver needs), the CLI bundled into one
# file, and the Linux x64 Dawn binary. Far smaller than node_modules, so a run carries a few MiB.
# Run from the project root on the development machine; then on the GPU machine:
#   bash .device/enter.sh node .device/app/cli.mjs bench matmul --json
set -euo pipefail
root=$(git rev-parse --show-toplevel)
dir="$root/.device"
cd "$root"
mkdir -p "$dir/app/node_modules/webgpu/dist"
# The common git dir, so this also works in a worktree (where .git is a file).
exclude="$(git rev-parse --git-common-dir)/info/exclude"
grep -qxF '/.device/' "$exclude" 2>/dev/null || echo '/.device/' >>"$exclude"

npx tsc -p tsconfig.json
npx esbuild dist/cli/main.js --bundle --platform=node --format=esm --target=node20 \
  --outfile="$dir/app/cli.mjs" --external:webgpu \
  --alias:@duckdb/node-api=./scripts/device-shims/duckdb.js \
  --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);" \
  --log-level=warning
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$dir/app/node_modules/webgpu/"
rm -rf "$dir/app/node_modules/webgpu/dist/linux-x64"
cp -r node_modules/webgpu/dist/linux-x64 "$dir/app/node_modules/webgpu/dist/"
rm -f "$dir/app.tar.xz"
tar -C "$dir" -cJf "$dir/app.tar.xz" app

node_bin=$(readlink -f "$(command -v node)")
[ -f "$dir/node.tar.xz" ] || tar -cJf "$dir/node.tar.xz" -C "$(dirname "$node_bin")" "$(basename "$node_bin")"
if ! ls "$dir"/libvulkan1_*.deb >/dev/null 2>&1; then
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  apt-get $o update -qq >/dev/null
  (cd "$dir" && apt-get $o download libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2 >/dev/null 2>&1)
fi
cp scripts/device-enter.sh "$dir/enter.sh"
rm -rf "$dir/app"
echo "prepared .device ($(du -sm "$dir" | cut -f1) MiB)"
