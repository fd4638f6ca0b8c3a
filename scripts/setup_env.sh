#!/usr/bin/env bash
# Build (or refresh) the project's virtual environment in .venv from requirements.txt.
# Idempotent: a stamp file records the requirements' hash, so a second call is instant.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
stamp="$VENV/.requirements.sha256"
want=$(cat requirements.txt setup.py "$0" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[setup_env] building $VENV (a few minutes on a fresh machine)"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r requirements.txt
"$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
# Type stubs for the TensorRT code's mypy check (a test). Kept out of site-packages: the
# stubs package depends on the real tensorrt wheel and would shadow `import tensorrt`.
"$VENV/bin/python" -m pip install --quiet --no-deps --target "$VENV/typing" \
  tensorrt-stubs==10.13.0.35.1
echo "$want" > "$stamp"
echo "[setup_env] ready: $VENV"
