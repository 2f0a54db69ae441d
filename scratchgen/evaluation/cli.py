"""Command-line subcommands of this family (registered by :func:`scratchgen.cli.build_parser`)."""

from __future__ import annotations


def register(commands, train) -> None:
    """Add this family's subcommands: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
