"""``python -m demo``: the one-command demo (``make demo`` runs it through scripts/demo.sh)."""

import sys

from demo.cli import main

if __name__ == "__main__":
    sys.exit(main())
