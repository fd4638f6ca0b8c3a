"""``anomaly-seg demo``: the synthetic drive through the real detector node, with a report.

The demo is not installed: it lives in the source checkout's ``demo/`` (with the synthetic
world that renders its drive), where ``make demo`` or ``python -m demo`` runs it. In a
checkout (the repository root on ``sys.path``) this subcommand is that command; in an
install it says so in one line.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

from anomaly_seg_ros.errors import ConfigError

SOURCE_TREE_ONLY = (
    "anomaly-seg demo is a source-tree tool: its drive comes from the checkout's demo/, "
    "which is not installed. Run it from the source checkout: `make demo` or `python -m demo`"
)


def _demo_command() -> ModuleType | None:
    """The checkout's ``demo.cli``, or None where ``demo/`` is not importable."""
    try:
        module = importlib.import_module("demo.cli")
    except ModuleNotFoundError as error:
        if error.name not in ("demo", "demo.cli"):
            raise
        return None
    return module if hasattr(module, "add_arguments") else None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    help_text = "synthetic drive -> detector node over DDS -> recorded bag -> report"
    command = _demo_command()
    if command is None:
        # any arguments (also --help) end in the one-line message, not in a usage error
        parser = subparsers.add_parser(
            "demo", help=f"{help_text} (source checkout only)", add_help=False, prefix_chars="+"
        )
        parser.add_argument("arguments", nargs="*")
        parser.set_defaults(func=_source_tree_only)
        return
    parser = subparsers.add_parser("demo", help=help_text, description=command.DESCRIPTION)
    command.add_arguments(parser)
    parser.set_defaults(func=command.run)


def _source_tree_only(args: argparse.Namespace) -> int:
    raise ConfigError(SOURCE_TREE_ONLY)
