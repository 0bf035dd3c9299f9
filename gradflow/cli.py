"""The ``gradflow`` command line.

Today it prints the version and its help; ``gradflow reproduce`` and
``gradflow list`` come with the experiments.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradflow",
        description="gradflow: the training of a neural network as a dynamical system "
        "(gradient flow dW/dt = -grad L(W) near degenerate minima).",
    )
    parser.add_argument("--version", action="version", version=f"gradflow {__version__}")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
