"""The limits a grammar model works within, as plain data.

Nothing here imports NumPy, so the command line builds its parser (the defaults of ``--max-length`` and of
the sampling limits) without importing the family; the modules that use these values import them from here.
"""

from __future__ import annotations

__all__ = ["DEFAULT_LIMITS", "DEFAULT_MAX_LENGTH"]

#: Top-down sampling gives up on a derivation past any of these (:mod:`.sampling`).
DEFAULT_LIMITS = {"max_depth": 10_000, "max_expansions": 1_000_000, "max_tokens": 100_000}
#: The longest sentence (in tokens) a chart is built for, unless ``max_length`` says otherwise
#: (``--max-length`` on the command line). A chart holds (n+1)^2 (N + 2R) float64 numbers: with the
#: built-in English grammar (N + 2R = 160) 400 tokens take about 200 MiB, 1,000 tokens 1.2 GiB (:mod:`.inside`).
DEFAULT_MAX_LENGTH = 400
