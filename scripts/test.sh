#!/usr/bin/env bash
# Quick start 2: install, lint, then run the whole test suite (SQLite and PostgreSQL).
# PostgreSQL is expected at 127.0.0.1:5432 (user postgres); SUPERNAS_TEST_POSTGRES_URL overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# both cores: one worker per core, each test file on one worker (module-scoped services stay shared)
exec .venv/bin/python -m pytest -ra -n 2 --dist loadfile "$@"
