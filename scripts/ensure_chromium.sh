#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests
# (tests/admin/test_browser.py, marker `browser`). Playwright drives this system browser:
# test tools cannot download browsers here.
#
# Installs it with apt-get when missing and permitted (root, or passwordless sudo).
# With CI=true a browser that cannot be installed is an error; locally it is a warning
# and the browser tests skip with the reason.
set -euo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

install() {
  "$@" apt-get install -y --no-install-recommends chromium \
    || { "$@" apt-get update && "$@" apt-get install -y --no-install-recommends chromium; }
}

if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    install || true
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    install sudo -n || true
  fi
fi

if [ -x "$CHROMIUM" ]; then
  echo "chromium installed at $CHROMIUM"
  exit 0
fi
if [ "${CI:-}" = "true" ]; then
  echo "error: chromium is missing at $CHROMIUM and could not be installed (CI=true)" >&2
  exit 1
fi
echo "WARNING: chromium is missing at $CHROMIUM; the browser tests will be skipped" >&2
exit 0
