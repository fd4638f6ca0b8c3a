"""The ``anomaly-seg`` command: one sub-command per module in ``anomaly_seg_ros.commands``.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func`` (a callable taking the parsed arguments and returning an exit code). Modules are
imported lazily per name so that ``anomaly-seg detect`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from anomaly_seg_ros import __version__
from anomaly_seg_ros.errors import AnomalySegError

#: sub-command name → module defining it (``register(subparsers)``).
COMMANDS: dict[str, str] = {
    "detect": "anomaly_seg_ros.commands.detect",
    "export": "anomaly_seg_ros.commands.export",
    "build-engine": "anomaly_seg_ros.commands.build_engine",
    "check-engine": "anomaly_seg_ros.commands.check_engine",
    "bag": "anomaly_seg_ros.commands.bag",
    "evaluate": "anomaly_seg_ros.commands.evaluate",
    "calibrate": "anomaly_seg_ros.commands.calibrate",
    "calibrate-sml": "anomaly_seg_ros.commands.calibrate_sml",
    "demo": "anomaly_seg_ros.commands.demo",
    "fleet": "anomaly_seg_ros.commands.fleet",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the parser; with ``only``, import just that command's module."""
    parser = argparse.ArgumentParser(
        prog="anomaly-seg",
        description="Anomaly-aware semantic segmentation: run, export, evaluate, deploy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            subparsers.add_parser(name, help=f"(see `anomaly-seg {name} --help`)")
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((arg for arg in argv if arg in COMMANDS), None)
    parser = build_parser(only=chosen)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AnomalySegError as error:
        logging.getLogger("anomaly-seg").error("%s", error)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
