#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that paw's interpreter loads.
# It comes from the npm package onnxruntime-node (pinned), the one registry
# path that ships a prebuilt libonnxruntime for linux/x64.
set -euo pipefail
version="${ORT_NPM_VERSION:-1.30.0}"
dest="${PAW_ORT_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/paw/onnxruntime}"
lib="$dest/libonnxruntime.so.1"
if [ -s "$lib" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ]; then
  echo "onnxruntime $version already at $lib"
  exit 0
fi
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "install-ort: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
tar -xzf "$tmp"/onnxruntime-node-"$version".tgz -C "$tmp" "package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
mkdir -p "$dest"
install -m 0644 "$tmp/package/bin/napi-v6/linux/$arch/libonnxruntime.so.1" "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "$version" >"$dest/VERSION"
echo "installed onnxruntime $version at $lib"
