"""scratchgen: text generators from scratch in NumPy.

Four families of models of P(x) = prod_t P(x_t | x_<t), behind one protocol
(:class:`~scratchgen.model.LanguageModel`), one decoder (:mod:`scratchgen.decoding`), one scoring
convention (:mod:`scratchgen.metrics`) and one file format (:mod:`scratchgen.io`).

``import scratchgen`` loads the errors only, not NumPy: every other public name is imported the first time
it is used (``scratchgen.NGramModel``, ``from scratchgen import RNNModel``; :mod:`scratchgen.lazy`), so a
script that only uses one family does not pay for the others, and the command line starts without NumPy;
:func:`load` likewise imports only the family of the file it reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from . import errors
from .errors import (
    ArpaError,
    CorpusError,
    DecodingError,
    GrammarError,
    LabelError,
    ModelFileError,
    NotFittedError,
    ScratchgenError,
    VocabularyError,
)
from .lazy import lazy_package

if TYPE_CHECKING:  # what type checkers and editors see; at run time these come from the lazy names below
    # mypy takes builtin and gradcheck, reached through the import cycle, for the modules of the same name
    # (grammar/builtin.py, nn/gradcheck.py) and reports each as defined twice: each is defined once, here
    from .baseline import UniformModel, UnigramModel
    from .corpus import iter_corpus, read_corpus, split_text
    from .decoding import beam_search, generate
    from .explain import explain
    from .grammar import (  # type: ignore[no-redef]
        Grammar,
        GrammarModel,
        builtin,
        builtin_names,
        from_tracery,
    )
    from .io import load
    from .labels import Classification, LabelSet
    from .metrics import Score
    from .model import LanguageModel
    from .ngram import NGramModel
    from .nn import MLPModel, RNNModel, TransformerModel, gradcheck  # type: ignore[no-redef]
    from .text import Tokenizer, Vocabulary

__all__ = [
    "__version__",
    # the models, one a family
    "UniformModel",
    "UnigramModel",
    "GrammarModel",
    "NGramModel",
    "RNNModel",
    "MLPModel",
    "TransformerModel",
    "LanguageModel",
    # grammars
    "Grammar",
    "builtin",
    "builtin_names",
    "from_tracery",
    # text, decoding, scoring, files
    "Tokenizer",
    "Vocabulary",
    "read_corpus",
    "LabelError",
    "LabelSet",
    "Classification",
    "iter_corpus",
    "split_text",
    "generate",
    "beam_search",
    "Score",
    "explain",
    "load",
    "gradcheck",
    # errors
    "errors",
    "ScratchgenError",
    "VocabularyError",
    "ModelFileError",
    "NotFittedError",
    "CorpusError",
    "GrammarError",
    "ArpaError",
    "DecodingError",
]

# Every public name but the errors, by the module that defines it: imported on first use (scratchgen.lazy).
lazy_package(
    __name__,
    {
        "UniformModel": ".baseline",
        "UnigramModel": ".baseline",
        "iter_corpus": ".corpus",
        "read_corpus": ".corpus",
        "split_text": ".corpus",
        "beam_search": ".decoding",
        "generate": ".decoding",
        "explain": ".explain",
        "Grammar": ".grammar",
        "GrammarModel": ".grammar",
        "builtin": ".grammar",
        "builtin_names": ".grammar",
        "from_tracery": ".grammar",
        "load": ".io",
        "Classification": ".labels",
        "LabelSet": ".labels",
        "Score": ".metrics",
        "LanguageModel": ".model",
        "NGramModel": ".ngram",
        "MLPModel": ".nn",
        "RNNModel": ".nn",
        "TransformerModel": ".nn",
        "gradcheck": ".nn",
        "Tokenizer": ".text",
        "Vocabulary": ".text",
    },
)
