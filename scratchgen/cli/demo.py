"""``scratchgen demo``: train every generator on a built-in corpus (or yours) and compare them.

    scratchgen demo [--corpus FILE] [--level char|word] [--seed S] [--out DIR] [--quick]

The work is :func:`scratchgen.demo.run_demo`; this module declares its options.
"""

from __future__ import annotations

import argparse

from .options import add_encoding_option, declare_files, nonnegative_int


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(args)


def register(commands, train) -> None:
    """Add ``demo``: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = commands.add_parser(
        "demo",
        help="train every generator on a built-in corpus and compare them",
        description="Train the generators on a built-in corpus (or --corpus FILE), "
        "print samples and held-out scores side by side.",
    )
    p.add_argument("--corpus", default=None, help="your own text instead of the built-in grammar's")
    p.add_argument(
        "--level",
        choices=("char", "word"),
        default=None,
        help="token level (default: word for the built-in grammar, char for --corpus)",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="save the trained models and a report here")
    add_encoding_option(p)
    p.add_argument("--quick", action="store_true", help="smaller corpus and shorter training")
    declare_files(p, inputs=("corpus",), outputs=())
    p.set_defaults(func=_demo)
