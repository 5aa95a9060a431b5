#!/usr/bin/env bash
# Installs the libraries of the multi-fidelity peers (benchmarks/mf_peers.py; the `bench` extra of
# pyproject.toml) into .venv, idempotently, without moving any package already installed (torch,
# numpy, scipy, ray, optuna, botorch...): every install is constrained to the versions installed now.
# hpbandster and syne-tune go in with --no-deps: hpbandster's own needs are listed here, and syne-tune
# declares xgboost (with NVIDIA's NCCL, hundreds of MB) for parts the peers never import.
# SMAC 2.4 needs no pyrfr (its random forest is scikit-learn's), so no swig either.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=(.venv/bin/python -m pip)
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"${PIP[@]}" freeze --exclude-editable | grep -v -e '^#' -e '^-e ' -e ' @ ' >"$constraints"
"${PIP[@]}" install --quiet -c "$constraints" \
    ConfigSpace==1.2.2 statsmodels==0.15.0 Pyro4==4.82 serpent==1.43 netifaces==0.11.0 dill==0.4.1 \
    smac==2.4.1
"${PIP[@]}" install --quiet --no-deps hpbandster==0.7.4 syne-tune==0.16.0
.venv/bin/python -c "
import ConfigSpace, hpbandster, optuna, ray.tune.search.bohb, smac, syne_tune.optimizer.baselines
print('multi-fidelity peers ready')
"
