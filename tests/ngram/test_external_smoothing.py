"""Smoothing streamed from count tables on disk (scratchgen.ngram.external_smoothing): the in-memory model,
to the last bit, whatever the blocks."""

from __future__ import annotations

import os
import tempfile
import tracemalloc
import warnings

import numpy as np
import pytest
from corpus_files import write
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.ngram import NGramModel, chunked, external
from scratchgen.ngram import external_smoothing as es
from scratchgen.ngram.counting import NGramCounts
from scratchgen.ngram.fitting import backoff_tables
from scratchgen.ngram.smoothing import SMOOTHINGS, make_smoothing
from scratchgen.text import Tokenizer

SETTINGS = {  # every strategy, and the ones with a discount given as well as estimated
    **{name: {} for name in SMOOTHINGS},
    "absolute D=0.3": {"name": "absolute", "discount": 0.3},
    "modified-kneser-ney D given": {"name": "modified-kneser-ney", "discount": (0.4, 1.1, 1.7)},
    "add-k k=0.5": {"name": "add-k", "k": 0.5},
}


def strategy_of(label: str):
    kwargs = dict(SETTINGS[label])
    return make_smoothing(kwargs.pop("name", label), **kwargs)


def streamed(counts: NGramCounts, strategy, block: int):
    with tempfile.TemporaryDirectory() as folder:
        unigrams, files = es.spill_counts(counts, folder)
        tables = es.estimate(unigrams, files, counts.vocab_size, strategy, folder, block)
        assert os.listdir(folder) == []  # every column removed once used up
    return tables


def assert_same_tables(a, b) -> None:
    for part, (xs, ys) in enumerate(zip(a[:3], b[:3])):
        assert len(xs) == len(ys)
        for n, (x, y) in enumerate(zip(xs, ys), start=1):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f"table {part} of order {n} differs"
    assert a[3] == b[3]  # the discounts recorded


corpora = st.tuples(
    st.integers(4, 12),  # V
    st.lists(st.lists(st.integers(0, 100), max_size=30), min_size=1, max_size=20),
).map(lambda t: (t[0], [np.array([3 + x % (t[0] - 3) for x in s], dtype=np.int64) for s in t[1]]))


@settings(max_examples=80, deadline=None)
@given(corpus=corpora, order=st.integers(1, 5), label=st.sampled_from(sorted(SETTINGS)), block=st.integers(1, 40))
def test_streamed_estimate_is_the_in_memory_one_to_the_last_bit(corpus, order, label, block):
    V, sequences = corpus
    counts = NGramCounts.from_sequences(sequences, order, V)
    strategy = strategy_of(label)
    assert_same_tables(streamed(counts, strategy, block), backoff_tables(counts, strategy, None))


@settings(max_examples=60, deadline=None)
@given(corpus=corpora, order=st.integers(2, 4), block=st.integers(1, 30))
def test_blocks_hold_whole_contexts_and_cover_everything(corpus, order, block):
    V, sequences = corpus
    counts = NGramCounts.from_sequences(sequences, order, V)
    with tempfile.TemporaryDirectory() as folder:
        _, files = es.spill_counts(counts, folder)
        contexts = len(counts.keys[order - 2])
        blocks = list(es._context_blocks(files[-1], V, contexts, block))
    context = counts.context(order)
    assert blocks[0][0] == 0 and blocks[0][2] == 0
    assert blocks[-1][1] == len(context) and blocks[-1][3] == contexts
    for (start, stop, h0, h1, keys), following in zip(blocks, blocks[1:] + [None]):
        assert np.array_equal(keys, counts.keys[order - 1][start:stop])
        assert np.all((context[start:stop] >= h0) & (context[start:stop] < h1))  # the block's contexts
        assert stop - start <= block or len(np.unique(context[start:stop])) == 1  # longer only for one context
        if following is not None:
            assert following[0] == stop and following[2] == h1  # no gap, no overlap


def test_a_context_longer_than_the_block_is_read_whole():
    # "<s> 3 x" for 36 words x: the context "<s> 3" is followed by 36 words, blocks are of 4 trigrams
    V = 40
    counts = NGramCounts.from_sequences([np.array([3, x]) for x in range(4, V)], 3, V)
    strategy = make_smoothing("modified-kneser-ney")
    assert_same_tables(streamed(counts, strategy, 4), backoff_tables(counts, strategy, None))


def test_the_block_work_stays_within_its_bytes_an_entry():
    """The peak traced memory of the passes (not the final read-back) is at most the resident arrays of eqs.
    (1) and (6) (8 U_{n-1} + 4 U_n bytes) and ``BYTES_PER_ENTRY`` bytes an n-gram of a block."""
    rng = np.random.default_rng(0)
    V = 500
    counts = NGramCounts.from_sequences([rng.integers(3, V, size=12) for _ in range(4000)], 5, V)
    sizes = [len(k) for k in counts.keys]
    resident = max(8 * a + 4 * b for a, b in zip(sizes, sizes[1:]))
    block = 3000
    for name in ("modified-kneser-ney", "witten-bell", "add-k"):
        with tempfile.TemporaryDirectory() as folder:
            unigrams, files = es.spill_counts(counts, folder)
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                es.estimate_columns(unigrams, files, V, make_smoothing(name), folder, block)
                peak = tracemalloc.get_traced_memory()[1] - base
            finally:
                tracemalloc.stop()
        assert peak <= resident + es.BYTES_PER_ENTRY * block + 64 * V, name
        assert peak < 8 * sum(sizes)  # far below the whole tables: the blocks did stream


def test_block_entries_share_the_budget():
    sizes = [100, 1000, 2000]
    resident = max(8 * 100 + 4 * 1000, 8 * 1000 + 4 * 2000)
    assert es.block_entries(resident + 1000 * es.BYTES_PER_ENTRY, sizes) == max(es.MIN_BLOCK, 1000)
    assert es.block_entries(resident + (es.MIN_BLOCK + 7) * es.BYTES_PER_ENTRY, sizes) == es.MIN_BLOCK + 7
    assert es.block_entries(1, sizes) == es.MIN_BLOCK  # a budget below the resident arrays: the smallest block
    # a budget far above the resident arrays: blocks of WORKING_CAP bytes (64 MiB / 160 = 419,430 n-grams)
    assert es.block_entries(1 << 40, sizes) == es.WORKING_CAP // es.BYTES_PER_ENTRY == 419_430


def test_cutoffs_are_not_streamed():
    assert es.streamable(make_smoothing("kneser-ney"), None)
    assert es.streamable(make_smoothing("kneser-ney"), [1, 1, 1])
    assert not es.streamable(make_smoothing("kneser-ney"), [1, 2, 2])


@pytest.mark.parametrize(
    "smoothing, cutoffs",
    [("modified-kneser-ney", None), ("witten-bell", None), ("kneser-ney", [1, 2, 2, 3]), ("stupid-backoff", None)],
)
def test_fit_file_with_small_blocks_saves_the_same_file(tmp_path, monkeypatch, smoothing, cutoffs):
    rng = np.random.default_rng(3)
    words = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "fast", "<unk>"]
    path = write(tmp_path, [" ".join(rng.choice(words, size=rng.integers(1, 20))) for _ in range(200)])
    monkeypatch.setattr(es, "block_entries", lambda memory, sizes: 13)  # many blocks
    monkeypatch.setattr(chunked, "ENTRY_BYTES", 1 << 20)  # the chunked pass outgrows the budget: spill
    monkeypatch.setattr(chunked, "CHUNK_BYTES_PER_CHAR", 1 << 20)  # of chunks of 4096 characters (one is exempt)
    temp = tmp_path / "runs"
    temp.mkdir()
    report: dict = {}
    settings_ = {"order": 4, "smoothing": smoothing, "cutoffs": cutoffs, "tokenizer": Tokenizer("word")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a small budget: the model is bigger than it
        spilled = NGramModel(**settings_).fit_file(path, memory=1 << 20, temp_dir=temp, report=report)
    in_memory = NGramModel(**settings_).fit_file(path)
    spilled.save(tmp_path / "spilled.npz")
    in_memory.save(tmp_path / "memory.npz")
    assert (tmp_path / "spilled.npz").read_bytes() == (tmp_path / "memory.npz").read_bytes()
    assert report["sequences"] == 200 and report["spilled"]
    assert ("estimate_block" in report) == (cutoffs is None)  # cutoffs: smoothed in memory
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("cutoffs", [None, [1, 2, 2]])
def test_a_roomy_budget_still_streams_a_model_past_the_in_memory_cap(tmp_path, monkeypatch, cutoffs):
    # --memory 1G on millions of n-grams: smoothing in memory would take ESTIMATE_BYTES an n-gram, far above
    # what the streamed path holds, so past IN_MEMORY_CAP the model is smoothed from disk whatever the budget
    # (the same file); cutoffs cannot be streamed, so they keep the in-memory path the budget allows.
    rng = np.random.default_rng(4)
    words = [f"w{i}" for i in range(300)]
    path = write(tmp_path, [" ".join(rng.choice(words, size=10)) for _ in range(300)])
    tok = Tokenizer("word")
    counts, _ = external.count_in_memory(path, 3, tok)
    distinct = sum(len(k) for k in counts.keys)
    roomy = 4 * external.ESTIMATE_BYTES * distinct
    monkeypatch.setattr(chunked, "CHUNK_BYTES_PER_CHAR", 1 << 30)  # chunks of 4096 characters (one is exempt)
    settings_ = {"order": 3, "cutoffs": cutoffs, "tokenizer": tok}
    in_memory = NGramModel(**settings_).fit_file(path)
    in_memory.save(tmp_path / "memory.npz")
    reports = []
    for cap in (roomy, external.ESTIMATE_BYTES * distinct // 2):  # above the model's estimate, then below
        monkeypatch.setattr(external, "IN_MEMORY_CAP", cap)
        report: dict = {}
        NGramModel(**settings_).fit_file(path, memory=roomy, temp_dir=tmp_path, report=report).save(tmp_path / "m.npz")
        assert (tmp_path / "m.npz").read_bytes() == (tmp_path / "memory.npz").read_bytes()
        reports.append(report["spilled"])
    assert reports == [False, cutoffs is None]


def test_a_model_bigger_than_the_budget_is_said(tmp_path):
    rng = np.random.default_rng(1)
    path = write(tmp_path, [" ".join(rng.choice(list("abcdefghijklmnop"), size=12)) for _ in range(300)])
    tok = Tokenizer("word")
    counts, _ = external.count_in_memory(path, 4, tok)
    distinct = sum(len(k) for k in counts.keys)
    memory = 16 * distinct + external.MIN_WORKING + 1000  # enough to count, not to hold the model
    assert es.MODEL_BYTES * distinct > memory
    strategy = make_smoothing("modified-kneser-ney")
    with pytest.warns(UserWarning, match=f"the model's {distinct:,} n-grams take"):
        external.fit_file(path, 4, strategy, tok, memory=memory, temp_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        external.fit_file(path, 4, strategy, tok, memory=es.MODEL_BYTES * distinct, temp_dir=tmp_path)
