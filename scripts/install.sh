#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs supernas with its pinned dependencies.
# torch 2.13.0 is installed first so that nothing pulls a CUDA build on a CPU machine.
# Chromium (for the dashboard's browser tests) and Fashion-MNIST come from Debian's dataset-fashion-mnist package (installed when apt-get is usable).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
    || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1) \
    || echo "warning: could not install dataset-fashion-mnist; the fashion_mnist task will be unavailable" >&2
fi
# the dashboard's browser tests drive Debian's Chromium (Playwright cannot download browsers here)
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq chromium >/dev/null 2>&1 \
    || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1) \
    || echo "warning: could not install chromium; the dashboard's browser tests will fail" >&2
fi
# tests/test_deployment_config.py validates docker-compose.yml with Debian's docker-compose (no engine needed)
if ! command -v docker-compose >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq docker-compose >/dev/null 2>&1 \
    || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq docker-compose >/dev/null 2>&1) \
    || echo "warning: could not install docker-compose; the deployment config test will fail" >&2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[test]"
# the multi-fidelity peers (Syne Tune, SMAC3, hpbandster for Ray Tune's BOHB), exercised by the tests too
bash benchmarks/setup_mf_peers.sh
