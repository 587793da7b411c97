#!/usr/bin/env bash
# Gives a machine without a GPU a WebGPU adapter: Mesa's lavapipe, a Vulkan driver that runs on the CPU.
# Dawn (npm `webgpu`) needs Mesa >= 25; Debian 12 ships 22, so on Debian 12 this takes Mesa from
# bookworm-backports through the mirror apt already uses. Idempotent. Needs root (or passwordless sudo).
set -euo pipefail
if dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '^2[5-9]\.'; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v apt-get >/dev/null; then
  echo "install-webgpu-cpu: no apt-get here; install Mesa >= 25 with lavapipe (mesa-vulkan-drivers) by hand" >&2
  exit 1
fi
. /etc/os-release
export DEBIAN_FRONTEND=noninteractive
if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
  src=/etc/apt/sources.list.d/debian.sources
  bpo=/etc/apt/sources.list.d/backports.sources
  if [ ! -f "$bpo" ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' "$src" 2>/dev/null || true)
    uri=${uri:-http://deb.debian.org/debian}
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" | $SUDO tee "$bpo" >/dev/null
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
dpkg-query -W -f='mesa-vulkan-drivers ${Version}\n' mesa-vulkan-drivers
