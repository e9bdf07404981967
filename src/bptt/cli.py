"""The ``bptt`` command line."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def _cmd_example(args: argparse.Namespace) -> int:
    from . import example

    published = example.load()
    result = example.run(lr=args.lr)
    print(example.format_report(result, published=published, check=not args.no_check))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bptt", description="Recurrent networks with backpropagation through time, written out by hand."
    )
    parser.add_argument("--version", action="version", version=f"bptt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ex = sub.add_parser(
        "example",
        help="forward and backward pass of the published LSTM worked example",
        description="Run the published LSTM worked example (Gomez 2016): gate values per step, the "
        "deltas of every gate in reverse, dW, dU, db and the weights after one SGD step.",
    )
    ex.add_argument("--lr", type=float, default=0.1, help="learning rate of the SGD step (default 0.1)")
    ex.add_argument("--no-check", action="store_true", help="skip the finite-difference check")
    ex.set_defaults(func=_cmd_example)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except ValueError as exc:  # user mistakes: one line, exit code 2
        print(f"bptt {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
