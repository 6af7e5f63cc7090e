#!/usr/bin/env bash
# Headless Chromium for the plan-SVG screenshot test (tests/cli/test_svg.py), from Debian's packages with the
# machine's default apt configuration. Installs only when missing and when it can (root); otherwise says how.
set -euo pipefail
command -v chromium >/dev/null || command -v chromium-browser >/dev/null && exit 0
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "[chromium] installing Debian's chromium for the plan SVG test" >&2
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "[chromium] not installed and cannot install it here (needs root and apt-get): the SVG screenshot" \
    "test will skip (and fail under CI=true); install it with: sudo apt-get install chromium" >&2
fi
