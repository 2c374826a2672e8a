#!/usr/bin/env bash
# The UI tests drive Debian's chromium through the playwright pip package (Playwright's own browser
# download cannot be fetched on these machines). Installs it when missing; needs root or sudo.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian's chromium for the UI tests (apt-get)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
command -v chromium
