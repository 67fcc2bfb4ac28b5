#!/usr/bin/env bash
# Makes sure Node's WebGPU (Dawn) can find a Vulkan driver: on machines without a GPU that is SwiftShader, which
# Debian's chromium package ships, plus the Vulkan loader. Installs both as root; otherwise says what to install.
set -euo pipefail
ICD=/usr/lib/chromium/vk_swiftshader_icd.json
need=()
[ -f "$ICD" ] || need+=(chromium)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need+=(libvulkan1)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${need[*]} (Debian) for WebGPU on SwiftShader..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "WebGPU tests need a Vulkan driver. On Debian/Ubuntu run: sudo apt-get install ${need[*]}" >&2
  echo "(or point VK_ICD_FILENAMES at your GPU's Vulkan driver)" >&2
  exit 1
fi
