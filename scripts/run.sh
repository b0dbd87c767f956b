#!/usr/bin/env bash
# Set up .venv (idempotent) and run the main job: train PPO on CartPole-v1, show progress,
# evaluate the deterministic policy and write metrics under runs/.  Extra arguments go to
# `funrl train` (e.g. --seed 1, --no-compile, --set lr=1e-3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/funrl train ppo --env CartPole-v1 "$@"
