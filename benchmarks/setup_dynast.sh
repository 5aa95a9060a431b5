#!/usr/bin/env bash
# Builds the throwaway Python 3.10 virtualenv that runs DyNAS-T's LINAS as a benchmark peer
# (DyNAS-T 1.6.0 does not import on Python 3.11; see benchmarks/dynast_peer.py). Never touches .venv.
set -euo pipefail
PY310=${PY310:-$(command -v python3.10 || echo /root/.pyenv/versions/3.10.13/bin/python)}
"$PY310" -m venv /tmp/dynast-venv310
/tmp/dynast-venv310/bin/pip install --quiet dynast==1.6.0 "transformers<4.40" torch==2.11.0 \
    torchaudio==2.11.0 torchvision==0.26.0
/tmp/dynast-venv310/bin/python -c "import dynast.search.search_tactic" && echo "DyNAS-T ready"
