"""The ``gradflow`` command line: rerun the paper's numerical evidence and report, claim by claim, whether it holds.

::

    gradflow list                                   # the experiments: name, source in the paper, title
    gradflow reproduce                              # all of them, quick sizes, into ./gradflow-results
    gradflow reproduce fig4 fig15 --full --out results --seed 1 --jobs 2
    gradflow reproduce --force                      # rerun experiments whose outputs are already complete
    gradflow --version

``reproduce`` writes ``DIR/<name>/`` per experiment (figures, ``data.npz``,
``result.json``) and ``DIR/report.md`` / ``DIR/report.json``.  Exit codes: 0
when every experiment ran (whatever its verdicts), 1 when one raised (it is
reported as failed), 2 for bad input (a one-line error on stderr, nothing
written), 130 on Ctrl-C (finished experiments are kept).
"""

from __future__ import annotations

import argparse
import sys

from . import __version__

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block), exit code 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``gradflow``: ``list``, ``reproduce`` and ``--version``."""
    from .experiments._runner import DEFAULT_JOBS, DEFAULT_OUT, DEFAULT_SEED

    parser = _Parser(
        prog="gradflow",
        description="gradflow: the training of a neural network as a dynamical system "
        "(gradient flow dW/dt = -grad L(W) near degenerate minima). Rerun the numerical evidence of "
        "'Theory of Deep Learning III' and see, claim by claim, whether it holds.",
    )
    parser.add_argument("--version", action="version", version=f"gradflow {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.add_parser("list", help="list the experiments (name, source in the paper, title)",
                        description="List the experiments that `gradflow reproduce` can run.")
    rep = commands.add_parser(
        "reproduce", help="run experiments and write a report",
        description="Run the paper's experiments into DIR (one folder each: figures, data.npz, result.json) and "
                    "write DIR/report.md and DIR/report.json. Experiments whose outputs are complete (same size "
                    "and seed) are skipped unless --force. Exit code 0 when all ran, 1 when one failed, "
                    "2 for bad input, 130 on Ctrl-C.")
    rep.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (default: all; see `gradflow list`)")
    rep.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default: {DEFAULT_OUT})")
    size = rep.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick",
                      help="quick sizes, seconds per experiment (the default)")
    size.add_argument("--full", dest="size", action="store_const", const="full",
                      help="the paper's sizes, from its figure captions")
    rep.set_defaults(size="quick")
    rep.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N", help=f"seed (default: {DEFAULT_SEED})")
    rep.add_argument("--jobs", type=int, default=DEFAULT_JOBS, metavar="N",
                     help=f"experiments run in N processes (default: {DEFAULT_JOBS})")
    rep.add_argument("--force", action="store_true", help="rerun experiments whose outputs are already complete")
    rep.set_defaults(parser=rep)
    return parser


def _list() -> int:
    from . import experiments

    rows = [(e.name, e.source, e.title) for e in experiments.list_experiments()]
    if not rows:
        print("no experiments registered")
        return EXIT_OK
    widths = [max(len(row[i]) for row in rows + [("name", "source", "title")]) for i in range(2)]
    print(f"{'name':<{widths[0]}}  {'source':<{widths[1]}}  title")
    for name, source, title in rows:
        print(f"{name:<{widths[0]}}  {source:<{widths[1]}}  {title}")
    return EXIT_OK


def _reproduce(parser: argparse.ArgumentParser, args) -> int:
    from . import experiments
    from ._validation import check_seed
    from .experiments._runner import ExperimentFailure, _validate_jobs, _validate_names, _validate_out

    unknown = [name for name in args.names if name not in experiments.REGISTRY]
    if unknown:
        valid = ", ".join(e.name for e in experiments.list_experiments())
        parser.error(f"unknown experiment {', '.join(repr(n) for n in unknown)}; the experiments are: {valid}")
    try:  # every input checked before anything is written
        names = _validate_names(args.names)
        out = _validate_out(args.out)
        seed = check_seed(args.seed)
        jobs = _validate_jobs(args.jobs)
    except (TypeError, ValueError) as exc:
        parser.error(_cli_message(str(exc)))
    try:
        results = experiments.reproduce(names, out=out, size=args.size, seed=seed, jobs=jobs, force=args.force,
                                        progress=True)
    except KeyboardInterrupt:
        print(f"gradflow: interrupted; finished experiments are kept in {out} (rerun to continue)", file=sys.stderr)
        return EXIT_INTERRUPTED
    width = max((len(r.name) for r in results), default=0)
    for r in results:
        extra = f"  ({r.error})" if isinstance(r, ExperimentFailure) else ""
        print(f"{r.name:<{width}}  {r.verdict}{extra}")
    print(f"report: {out / 'report.md'}")
    return EXIT_FAILED if any(isinstance(r, ExperimentFailure) for r in results) else EXIT_OK


def _cli_message(message: str) -> str:
    """A library validation message in the command line's words: ``--jobs`` for `jobs` and so on."""
    for name, flag in (("`jobs`", "--jobs"), ("`seed`", "--seed"), ("`out`", "--out"), ("`names`", "NAME"),
                       ("out='gradflow-results'", "--out gradflow-results")):
        message = message.replace(name, flag)
    return message


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.command == "list":
        return _list()
    if args.command == "reproduce":
        return _reproduce(args.parser, args)
    parser.print_help()
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
