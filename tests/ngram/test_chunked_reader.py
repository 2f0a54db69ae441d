"""Reading and tokenizing in a thread of its own while counting (scratchgen.ngram.chunked._ReadAhead):
the same counts as reading in turn, errors raised where they happened, and no thread left behind."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.errors import CorpusError
from scratchgen.ngram import chunked
from scratchgen.ngram.chunked import _ReadAhead, count_chunked
from scratchgen.text import Tokenizer


def readers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "scratchgen-reader"]


def counted(path, order, tokenizer, chunk_chars, thread: bool, limit=None):
    """count_chunked with the reader thread on or off, and its report."""
    report: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chunked, "_reader_thread", lambda: thread)
        result = count_chunked(path, order, tokenizer, chunk_chars=chunk_chars, report=report, limit=limit)
    return result, report


words = st.sampled_from(["a", "b", "c", "dd", "e", "ff", "été", "3.14", "<unk>"])


@settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(st.lists(words, max_size=30).map(" ".join), min_size=1, max_size=40),
    order=st.integers(1, 5),
    chunk_chars=st.integers(1, 300),
)
def test_the_reader_thread_counts_what_reading_in_turn_counts(tmp_path_factory, lines, order, chunk_chars):
    path = tmp_path_factory.mktemp("reader") / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if not any(line.strip() for line in lines):
        for thread in (True, False):
            with pytest.raises(CorpusError, match="no non-empty sequence"):
                counted(path, order, Tokenizer("word"), chunk_chars, thread)
        return
    (a, vocab_a), report_a = counted(path, order, Tokenizer("word"), chunk_chars, thread=True)
    (b, vocab_b), report_b = counted(path, order, Tokenizer("word"), chunk_chars, thread=False)
    assert vocab_a.to_list() == vocab_b.to_list()
    assert report_a == report_b  # the same chunks, merges and peak: the chunks do not depend on the timing
    for field in ("keys", "counts", "suffix", "bos_start"):
        for x, y in zip(getattr(a, field), getattr(b, field)):
            assert x.dtype == y.dtype and np.array_equal(x, y)
    assert not readers_alive()


def test_ReadAhead_gives_the_items_in_order_then_ends():
    items = _ReadAhead(iter(range(100)))
    assert list(items) == list(range(100))
    assert not items.thread.is_alive()


def test_an_error_of_the_thread_is_raised_in_the_caller_after_the_items_before_it():
    def failing():
        yield 1
        yield 2
        raise CorpusError("line 3 is bad")

    items = _ReadAhead(failing())
    assert next(items) == 1 and next(items) == 2
    with pytest.raises(CorpusError, match="line 3 is bad"):
        next(items)
    assert not items.thread.is_alive()


def test_closing_early_stops_the_thread_and_closes_its_iterator():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()  # the file of the real reader is closed here

    items = _ReadAhead(endless())
    assert next(items) == 0 and next(items) == 1
    items.close()
    assert not items.thread.is_alive() and closed.is_set()


def test_a_budget_outgrown_stops_the_reader_thread(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "corpus.txt"
    lines = [" ".join(f"w{i}" for i in rng.integers(0, 500, size=20)) for _ in range(2000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result, _ = counted(path, 3, Tokenizer("word"), 2000, thread=True, limit=1000)
    assert result is None  # the caller would now spill
    assert not readers_alive()


def test_a_decoding_error_in_the_reader_thread_names_the_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(("good line\n" * 5000).encode() + b"bad \xff byte\n")
    for thread in (True, False):
        with pytest.raises(CorpusError, match="corpus.txt"):
            counted(path, 3, Tokenizer("word"), 1000, thread)
    assert not readers_alive()
