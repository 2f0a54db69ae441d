"""The ``scratchgen`` command line, one module a command group.

- :mod:`.main`: :func:`main` (runs one command, a user error as one line) and :func:`build_parser`;
- :mod:`.options`: the argparse types, the file declarations, the text and decoding options, JSON output;
- :mod:`.blas`: one BLAS thread for the n-gram commands, asked for before NumPy is imported;
- :mod:`.train_random`, :mod:`.generate`, :mod:`.score`, :mod:`.classify`, :mod:`.explain`, :mod:`.demo`,
  :mod:`.grammar`, :mod:`.ngram`, :mod:`.rnn` and :mod:`.eval`: each adds its commands through
  ``register(commands, train)``.

The model families (:mod:`scratchgen.grammar`, :mod:`scratchgen.ngram`, :mod:`scratchgen.nn`,
:mod:`scratchgen.evaluation`) import nothing from here; ``import scratchgen`` does not load it.
"""

from .main import build_parser, main
from .options import (
    add_decoding_options,
    add_encoding_option,
    add_text_options,
    declare_files,
    float_in,
    fraction,
    int_at_least,
    int_in,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    print_json,
    probability,
    read_corpus_args,
    read_model_corpus,
    tokenizer_from_args,
)

__all__ = [
    "main",
    "build_parser",
    "add_decoding_options",
    "add_encoding_option",
    "add_text_options",
    "declare_files",
    "float_in",
    "fraction",
    "int_at_least",
    "int_in",
    "nonnegative_float",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "print_json",
    "probability",
    "read_corpus_args",
    "read_model_corpus",
    "tokenizer_from_args",
]
