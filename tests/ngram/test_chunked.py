"""Counting a file a chunk at a time (scratchgen.ngram.chunked): the same counts and model as in memory."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from corpus_files import assert_same_counts, lines_at_a_level, write
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.errors import CorpusError, ScratchgenError
from scratchgen.ngram import NGramModel
from scratchgen.ngram.chunked import Table, count, count_chunked, merge_tables
from scratchgen.ngram.counting import NGramCounts
from scratchgen.ngram.external import count_in_memory
from scratchgen.text import Tokenizer

WORDS = ["a", "b", "c", "dd", "e", "<unk>", "ff", "été", "3.14"]


@settings(max_examples=60, deadline=None)
@given(
    level_lines=lines_at_a_level(WORDS, 40, "abcé d中\u0301", 80, 30),
    order=st.integers(1, 5),
    chunk_chars=st.integers(1, 200),
)
def test_chunked_counts_equal_in_memory(level_lines, order, chunk_chars):
    """Chunks of a few characters (each a line or a few): many chunks, many merges, widths that grow."""
    level, lines = level_lines
    tokenizer = Tokenizer(level)
    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, lines)
        try:
            reference, vocab = count_in_memory(path, order, tokenizer)
        except CorpusError:  # only empty lines: both refuse it
            with pytest.raises(CorpusError, match="no non-empty sequence"):
                count_chunked(path, order, tokenizer, chunk_chars=chunk_chars)
            return
        report: dict = {}
        counted = count_chunked(path, order, tokenizer, chunk_chars=chunk_chars, report=report)
        assert counted is not None
        counts, chunked_vocab = counted
        assert chunked_vocab.to_list() == vocab.to_list()
        assert_same_counts(counts, reference)
        assert report["merges"] == report["chunks"] - 1  # every chunk's table ends in the totals


def test_a_model_from_chunks_is_the_model_in_memory_to_the_bit(tmp_path):
    rng = np.random.default_rng(0)
    words = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "fast", "<unk>"]
    lines = [" ".join(rng.choice(words, size=rng.integers(0, 30))) for _ in range(400)]
    path = write(str(tmp_path), lines)
    tok = Tokenizer("word")
    report: dict = {}
    counts, vocab = count_chunked(path, 5, tok, chunk_chars=300, report=report)  # type: ignore[misc]
    assert report["chunks"] > 20
    chunked = NGramModel(order=5, tokenizer=tok).fit_counts(counts, vocab)
    in_memory = NGramModel(order=5, tokenizer=tok).fit([line for line in lines if line.strip()])
    assert chunked.vocab_.to_list() == in_memory.vocab_.to_list()
    for x, y in zip(chunked.keys_ + chunked.logp_ + chunked.bow_, in_memory.keys_ + in_memory.logp_ + in_memory.bow_):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


def table_of(counts: NGramCounts) -> Table:
    return Table(counts.vocab_size, counts.keys, counts.counts)


@settings(max_examples=60, deadline=None)
@given(
    a=st.lists(st.lists(st.integers(3, 8), max_size=12), min_size=1, max_size=8),
    b=st.lists(st.lists(st.integers(3, 8), max_size=12), min_size=1, max_size=8),
    order=st.integers(1, 4),
)
def test_merging_tables_equals_the_plain_merge(a, b, order):
    """merge_tables (keys and counts by a run-aware sort) against NGramCounts.merge (sorted union, searchsorted)."""
    V = 16  # a power of two: a table's key width
    ca = NGramCounts.from_sequences([np.array(s) for s in a], order, V)
    cb = NGramCounts.from_sequences([np.array(s) for s in b], order, V)
    merged, plain = merge_tables(table_of(ca), table_of(cb)), ca.merge(cb)
    for n in range(order):
        assert np.array_equal(merged.keys[n], plain.keys[n]) and np.array_equal(merged.counts[n], plain.counts[n])


@settings(max_examples=40, deadline=None)
@given(seqs=st.lists(st.lists(st.integers(3, 15), max_size=12), min_size=1, max_size=8), order=st.integers(1, 4))
def test_a_widened_table_is_the_count_at_the_larger_width(seqs, order):
    """Eq. (1): rewriting the keys for a width C' > C gives the counts made with C' from the start."""
    sequences = [np.array(s) for s in seqs]
    narrow, wide = (NGramCounts.from_sequences(sequences, order, V) for V in (16, 64))
    widened = table_of(narrow).widened(64)
    for n in range(order):
        assert np.array_equal(widened.keys[n], wide.keys[n]) and np.array_equal(widened.counts[n], wide.counts[n])


def test_a_budget_spills_only_when_the_totals_outgrow_it(tmp_path):
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(300)]
    lines = [" ".join(rng.choice(words, size=rng.integers(1, 20))) for _ in range(1500)]
    path = write(str(tmp_path), lines)
    tok = Tokenizer("word")
    reference, _ = count_in_memory(path, 4, tok)
    roomy: dict = {}
    counts, _ = count(path, 4, tok, memory=1 << 28, temp_dir=tmp_path, report=roomy)
    assert not roomy["spilled"]
    assert_same_counts(counts, reference)
    tight: dict = {}
    with pytest.warns(UserWarning, match="smoothing the"):  # estimation is over so small a budget
        counts, _ = count(path, 4, tok, memory=1 << 20, temp_dir=tmp_path, report=tight)
    assert tight["spilled"] and tight["positions"] > 0  # the external pass ran and reported
    assert_same_counts(counts, reference)
    assert os.listdir(tmp_path) == ["corpus.txt"]


def test_bad_arguments_are_named(tmp_path):
    path = write(str(tmp_path), ["a b"])
    with pytest.raises(ScratchgenError, match="chunk_chars must be an integer >= 1, got 0"):
        count_chunked(path, 2, chunk_chars=0)
    with pytest.raises(ScratchgenError, match="order must be an integer >= 1, got 0"):
        count_chunked(path, 0)
    with pytest.raises(ScratchgenError, match="does not exist"):
        count(path, 2, memory=1 << 20, temp_dir=tmp_path / "nowhere")
    with pytest.raises(ScratchgenError, match="can only merge tables"):
        merge_tables(Table(16, [np.arange(16)], [np.zeros(16, np.int64)]), Table(32, [np.arange(32)], [np.zeros(32)]))


@pytest.mark.parametrize("level", ["char", "word"])
def test_a_file_of_one_chunk_is_counted_in_its_final_ids(tmp_path, level):
    lines = ["the cat sat", "", "a dog, the <unk> cat", "été naïve 3.14"] * 5
    path = write(str(tmp_path), lines)
    tok = Tokenizer(level)
    report: dict = {}
    counts, vocab = count_chunked(path, 4, tok, chunk_chars=1 << 20, report=report)  # type: ignore[misc]
    assert report == {"chunks": 1, "merges": 0, "peak_entries": 0}
    reference, reference_vocab = count_in_memory(path, 4, tok)
    assert vocab.to_list() == reference_vocab.to_list()
    assert_same_counts(counts, reference)


def test_tables_hold_narrow_keys_and_counts_while_they_fit_and_merge_as_the_plain_merge_when_not():
    # Ids up to 2^20: keys of order 2 and up reach U_1 * 2^20 > 2^32, so the merge goes through int64 keys
    # (and a table of small ids stays uint32); the counts of either kind fit int32.
    rng = np.random.default_rng(3)
    V = 1 << 20
    wide = [rng.integers(3, V, size=12) for _ in range(40)]
    small = [rng.integers(3, 40, size=12) for _ in range(40)]
    dtypes = set()
    for a, b in ((wide, small), (small, wide), (small, small)):
        ca, cb = NGramCounts.from_sequences(a, 3, V), NGramCounts.from_sequences(b, 3, V)
        merged, plain = merge_tables(table_of(ca), table_of(cb)), ca.merge(cb)
        for n in range(3):
            assert np.array_equal(merged.keys[n], plain.keys[n]) and np.array_equal(merged.counts[n], plain.counts[n])
        for n in (1, 2):
            fits = plain.keys[n][-1] < 2**32
            assert merged.keys[n].dtype == (np.uint32 if fits else np.int64) and merged.counts[n].dtype == np.int32
            dtypes.add(merged.keys[n].dtype)
    assert dtypes == {np.dtype(np.uint32), np.dtype(np.int64)}  # both kinds were merged
