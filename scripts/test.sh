#!/usr/bin/env bash
# Set up .venv (idempotent) and run lint, type check and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci}
.venv/bin/ruff check funrl tests examples benchmarks
.venv/bin/ruff format --check funrl tests examples benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest -n 2 -q "$@"
