"""scratchgen: text generators from scratch in NumPy.

Four families of models of P(x) = prod_t P(x_t | x_<t), behind one protocol
(:class:`~scratchgen.model.LanguageModel`), one decoder (:mod:`scratchgen.decoding`), one scoring
convention (:mod:`scratchgen.metrics`) and one file format (:mod:`scratchgen.io`).

``import scratchgen`` loads the shared machinery and the random baselines only. The other families
(grammar, n-gram, neural) are imported the first time one of their names is used
(``scratchgen.NGramModel``, ``from scratchgen import RNNModel``), so a script that only uses one of
them does not pay for the others; :func:`load` likewise imports only the family of the file it reads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from . import errors
from .baseline import UniformModel, UnigramModel
from .corpus import iter_corpus, read_corpus, split_text
from .decoding import beam_search, generate
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
from .explain import explain
from .io import load
from .labels import Classification, LabelSet
from .metrics import Score
from .model import LanguageModel
from .text import Tokenizer, Vocabulary

if TYPE_CHECKING:  # what type checkers and editors see; at run time these come from __getattr__
    # mypy takes builtin and gradcheck, reached through the import cycle, for the modules of the same name
    # (grammar/builtin.py, nn/gradcheck.py) and reports each as defined twice: each is defined once, here
    from .grammar import (  # type: ignore[no-redef]
        Grammar,
        GrammarModel,
        builtin,
        builtin_names,
        from_tracery,
    )
    from .ngram import NGramModel
    from .nn import MLPModel, RNNModel, TransformerModel, gradcheck  # type: ignore[no-redef]

#: Names of the families, imported on first use: name -> module that defines it.
_LAZY = {
    "Grammar": "scratchgen.grammar",
    "GrammarModel": "scratchgen.grammar",
    "builtin": "scratchgen.grammar",
    "builtin_names": "scratchgen.grammar",
    "from_tracery": "scratchgen.grammar",
    "NGramModel": "scratchgen.ngram",
    "RNNModel": "scratchgen.nn",
    "MLPModel": "scratchgen.nn",
    "TransformerModel": "scratchgen.nn",
    "gradcheck": "scratchgen.nn",
}
_SUBPACKAGES = ("grammar", "ngram", "nn", "evaluation", "datasets", "constraint", "smc")


def __getattr__(name: str) -> Any:
    """Import a family the first time one of its names is asked for (PEP 562)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later uses find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))


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
