#!/usr/bin/env bash
# Quick start 1: install, then run a real search end to end (service, embedded Ray, SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/supernas demo "${1:-examples/digits.yaml}"
