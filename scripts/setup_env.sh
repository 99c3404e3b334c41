#!/usr/bin/env bash
# Create .venv and install spacy-bioner with its test and transformer extras.
# torch is installed first and pinned, so that no other package pulls a different
# (CUDA) build: on the project's CPU machines torch==2.13.0 is a local CPU wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q "torch==${TORCH_VERSION:-2.13.0}"
pip install -q -e ".[test,transformers,llm,project,distributed]" "torch==${TORCH_VERSION:-2.13.0}"
