"""What the tests of counting a corpus file share (test_chunked.py, test_external.py, test_external_smoothing.py,
test_spill_write.py): the corpus written to a folder, hypothesis strategies of its lines at both levels, and two
count tables compared field by field, to the last bit."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import strategies as st

from scratchgen.ngram.counting import NGramCounts

#: The tables of an NGramCounts, each a list of one array an order.
FIELDS = ("keys", "counts", "suffix", "bos_start")


def write(folder: str | os.PathLike, lines: list[str]) -> str:
    """``folder/corpus.txt`` holding ``lines``, one a line; its path."""
    path = os.path.join(folder, "corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def assert_same_counts(a: NGramCounts, b: NGramCounts) -> None:
    """Same order and vocabulary size, and every table of every order equal."""
    assert (a.order, a.vocab_size) == (b.order, b.vocab_size)
    for field in FIELDS:
        for n, (x, y) in enumerate(zip(getattr(a, field), getattr(b, field)), start=1):
            assert np.array_equal(x, y), f"{field} of order {n} differ"


def lines_at_a_level(words: list[str], max_words: int, alphabet: str, max_chars: int, max_lines: int):
    """A strategy of ``(level, lines)``: 1 to ``max_lines`` lines of up to ``max_words`` of ``words`` (level
    "word"), or of up to ``max_chars`` characters of ``alphabet`` (level "char"); lines may be empty."""
    word_lines = st.lists(
        st.lists(st.sampled_from(words), max_size=max_words).map(" ".join), min_size=1, max_size=max_lines
    )
    char_lines = st.lists(st.text(alphabet=alphabet, max_size=max_chars), min_size=1, max_size=max_lines)
    return st.one_of(st.tuples(st.just("word"), word_lines), st.tuples(st.just("char"), char_lines))
