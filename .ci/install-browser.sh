#!/usr/bin/env bash
# Install Debian's Chromium for the admin UI test (tests/server/test_admin_ui_chromium.py).
#
# Idempotent: if the `chromium` package is installed and /usr/bin/chromium runs, nothing
# is done. Otherwise `apt-get update` then `apt-get install chromium`. The test drives
# this system binary with Playwright's Python package (`executable_path=/usr/bin/chromium`);
# it never runs `playwright install`, and nothing here downloads a browser build from
# anywhere but the Debian archive.
#
# Environment:
#   LF_BROWSER_PACKAGES   packages to install (default: chromium). Add chromium-driver
#                         only if you drive the browser with Selenium instead.
set -euo pipefail

PACKAGES="${LF_BROWSER_PACKAGES:-chromium}"

log() { printf '[install-browser] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        log "not root and no sudo; cannot apt-get install $PACKAGES"; exit 1
    fi
fi

installed() {
    local pkg
    for pkg in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || return 1
    done
    /usr/bin/chromium --version >/dev/null 2>&1
}

if installed; then
    log "already installed: $(/usr/bin/chromium --version 2>/dev/null)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not found: install Chromium with your system's package manager"; exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
$SUDO apt-get update -qq
log "apt-get install $PACKAGES"
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO apt-get install -y -qq --no-install-recommends $PACKAGES

if installed; then
    log "installed: $(/usr/bin/chromium --version 2>/dev/null)"
else
    log "install finished but /usr/bin/chromium does not run:"
    /usr/bin/chromium --version || true
    exit 1
fi
