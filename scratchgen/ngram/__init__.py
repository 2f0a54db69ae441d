"""The statistical generator: n-gram models counted in NumPy, smoothed seven ways, KenLM-compatible.

- :mod:`.counting`: every order at once, trie keys, lmplz's adjusted counts (:class:`NGramCounts`);
- :mod:`.smoothing`: the strategies (MLE, add-k, absolute, Witten-Bell, Kneser-Ney, modified Kneser-Ney
  exactly as KenLM's lmplz, stupid backoff), frozen values that give only their weights to one recursion;
- :mod:`.fitting`: a corpus's vocabulary, and counts -> smoothed backoff tables (with Katz cutoffs);
- :mod:`.model`: :class:`NGramModel`, vectorised scoring and the stepping interface;
- :mod:`.storage`: the arrays of a model file and their checks;
- :mod:`.arpa`: ARPA files read and written; :mod:`.convert`: a model to and from them;
- :mod:`.reference`: the same model as a textbook writes it, to read first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_package

if TYPE_CHECKING:  # what type checkers and editors see; at run time these come from the lazy names below
    from .arpa import read_arpa, write_arpa
    from .counting import NGramCounts
    from .model import NGramModel
    from .settings import SMOOTHINGS

__all__ = ["NGramModel", "NGramCounts", "SMOOTHINGS", "read_arpa", "write_arpa"]

# Each public name by the module that defines it, imported on first use (scratchgen.lazy).
lazy_package(
    __name__,
    {
        "read_arpa": ".arpa",
        "write_arpa": ".arpa",
        "NGramCounts": ".counting",
        "NGramModel": ".model",
        "SMOOTHINGS": ".settings",
    },
)
