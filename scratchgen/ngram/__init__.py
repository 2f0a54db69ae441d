"""The statistical generator: n-gram models counted in NumPy, smoothed seven ways, KenLM-compatible.

- :mod:`.counting`: every order at once, trie keys, lmplz's adjusted counts (:class:`NGramCounts`);
- :mod:`.smoothing`: the strategies (MLE, add-k, absolute, Witten-Bell, Kneser-Ney, modified Kneser-Ney
  exactly as KenLM's lmplz, stupid backoff), each turning counts into a backoff model;
- :mod:`.model`: :class:`NGramModel`, vectorised scoring and the stepping interface;
- :mod:`.arpa`: ARPA files in and out.
"""

from .arpa import read_arpa, write_arpa
from .counting import NGramCounts
from .model import NGramModel
from .smoothing import SMOOTHINGS

__all__ = ["NGramModel", "NGramCounts", "SMOOTHINGS", "read_arpa", "write_arpa"]
