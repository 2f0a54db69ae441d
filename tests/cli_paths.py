"""The commands of the command line's parser, for the tests that go through every one of them."""

from __future__ import annotations

import argparse


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of ``parser``, as the words that name it (``("train", "ngram")``)."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append(prefix + (name,))
                paths.extend(command_paths(sub, prefix + (name,)))
    return paths
