"""scratchgen: text generators from scratch in NumPy.

Four families of models of P(x) = prod_t P(x_t | x_<t), behind one protocol
(:class:`~scratchgen.model.LanguageModel`), one decoder (:mod:`scratchgen.decoding`), one scoring
convention (:mod:`scratchgen.metrics`) and one file format (:mod:`scratchgen.io`).
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import errors
from .baseline import UniformModel, UnigramModel
from .decoding import beam_search, generate
from .errors import (
    ArpaError,
    CorpusError,
    DecodingError,
    GrammarError,
    ModelFileError,
    NotFittedError,
    ScratchgenError,
    VocabularyError,
)
from .io import load
from .metrics import Score
from .model import LanguageModel
from .text import Tokenizer, Vocabulary, iter_corpus, read_corpus, split_text

from .grammar import Grammar, GrammarModel, builtin, builtin_names, from_tracery
from .ngram import NGramModel
from .nn import RNNModel, gradcheck

__all__ = [
    "__version__",
    # the models, one a family
    "UniformModel", "UnigramModel", "GrammarModel", "NGramModel", "RNNModel", "LanguageModel",
    # grammars
    "Grammar", "builtin", "builtin_names", "from_tracery",
    # text, decoding, scoring, files
    "Tokenizer", "Vocabulary", "read_corpus", "iter_corpus", "split_text",
    "generate", "beam_search", "Score", "load", "gradcheck",
    # errors
    "errors", "ScratchgenError", "VocabularyError", "ModelFileError", "NotFittedError", "CorpusError",
    "GrammarError", "ArpaError", "DecodingError",
]
