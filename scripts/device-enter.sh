#!/usr/bin/env bash
# On the GPU machine: unpack what device-prepare.sh packed, point Vulkan at the NVIDIA driver, run "$@"
# from the project root.
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
for f in "$here"/*.deb; do dpkg -x "$f" /; done
ldconfig
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
done
mkdir -p /tmp/nodebin
tar -xJf "$here/node.tar.xz" -C /tmp/nodebin
export PATH=/tmp/nodebin:$PATH
tar -xJf "$here/app.tar.xz" -C "$here"
cd "$root"
exec "$@"
