"""The demo (``demo/``, with the synthetic world that renders its drive) lives in the source
checkout and is not installed: make the repository root importable for these tests
(``pytest`` run as ``.venv/bin/pytest`` does not put the working directory on
``sys.path``)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
