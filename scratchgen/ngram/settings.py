"""What an n-gram model accepts, as plain data: the names of the smoothings and the limits.

Nothing here imports NumPy, so the command line builds its parser (``--smoothing`` choices, ``--order``'s
range) without importing the family; the modules that use these values import them from here.
"""

from __future__ import annotations

__all__ = ["DEFAULT_ALPHA", "LABELLED_SMOOTHINGS", "MAX_ORDER", "SMOOTHINGS"]

#: Every smoothing by the name ``NGramModel(smoothing=...)`` and ``--smoothing`` take (:mod:`.smoothing`).
SMOOTHINGS = ("mle", "add-k", "absolute", "witten-bell", "kneser-ney", "modified-kneser-ney", "stupid-backoff")
#: The smoothings whose chain ends in the uniform distribution: the ones a label can extend (:mod:`.labelled`).
LABELLED_SMOOTHINGS = ("absolute", "witten-bell", "kneser-ney", "modified-kneser-ney")
DEFAULT_ALPHA = 0.4  # stupid backoff's factor, Brants et al.'s value
#: The longest order accepted (a model file's header is checked against it before its arrays are listed).
MAX_ORDER = 1000
