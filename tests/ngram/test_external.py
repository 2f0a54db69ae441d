"""Counting within a memory budget (scratchgen.ngram.external): the same counts and model as in memory."""

from __future__ import annotations

import os
import tempfile
import warnings
from unittest import mock

import numpy as np
import pytest
from corpus_files import assert_same_counts, lines_at_a_level, write
from hypothesis import given, settings
from hypothesis import strategies as st
from ngram_cli import run as run_cli

from scratchgen.errors import CorpusError, ResourceError, ScratchgenError
from scratchgen.ngram import NGramModel, chunked, external
from scratchgen.ngram import external_smoothing as es
from scratchgen.ngram.external import (
    MIN_MERGE,
    MIN_WORKING,
    Budget,
    count_file,
    count_in_memory,
    merge_reference,
    merge_runs,
)
from scratchgen.text import Tokenizer


def assert_same_model(a: NGramModel, b: NGramModel) -> None:
    assert a.vocab_.to_list() == b.vocab_.to_list()
    assert a.discounts_ == b.discounts_
    for x, y in zip(a.keys_ + a.logp_ + a.bow_, b.keys_ + b.logp_ + b.bow_):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()  # to the last bit


def tight_budget(path: str, order: int, tokenizer: Tokenizer, extra: int) -> int:
    """A budget just above what counting this file needs: the tables held at once and MIN_WORKING
    (external.least_memory), plus ``extra``: blocks of 64 positions or a little more, and many runs."""
    counts, _ = count_in_memory(path, order, tokenizer)
    return external.least_memory([len(k) for k in counts.keys]) + extra


@pytest.mark.filterwarnings("ignore:smoothing the")  # tight budgets: estimation is over them
@settings(max_examples=40, deadline=None)
@given(
    level_lines=lines_at_a_level(["a", "b", "c", "dd", "e", "<unk>", "ff"], 90, "abcé d", 150, 25),
    order=st.integers(1, 5),
    extra=st.integers(0, 6000),
)
def test_spilled_counts_and_model_equal_in_memory(level_lines, order, extra):
    level, lines = level_lines
    tokenizer = Tokenizer(level)
    with tempfile.TemporaryDirectory() as folder:
        path = write(folder, lines)
        try:
            reference, vocab = count_in_memory(path, order, tokenizer)
        except CorpusError:  # only empty lines: both refuse it
            with pytest.raises(CorpusError, match="no non-empty sequence"):
                count_file(path, order, tokenizer, memory=1 << 20, temp_dir=folder)
            return
        memory = tight_budget(path, order, tokenizer, extra)
        counts, spilled_vocab = count_file(path, order, tokenizer, memory=memory, temp_dir=folder)
        assert spilled_vocab.to_list() == vocab.to_list()
        assert_same_counts(counts, reference)
        spilled = NGramModel(order=order, tokenizer=tokenizer).fit_file(path, memory=memory, temp_dir=folder)
        in_memory = NGramModel(order=order, tokenizer=tokenizer).fit([line for line in lines if line])
        assert_same_model(spilled, in_memory)
        assert os.listdir(folder) == ["corpus.txt"]  # the spill folder is gone
        # the model file written from the column files a block at a time: the bytes save writes (the chunked
        # pass made to give up at once, so that even a one-chunk file spills; blocks of 7 entries)
        written = os.path.join(folder, "written.npz")
        gives_up = mock.patch.object(chunked, "count_within", lambda *args, **kwargs: None)
        with gives_up, mock.patch.object(es, "block_entries", lambda memory, sizes: 7):
            report: dict = {}
            model = NGramModel(order=order, tokenizer=tokenizer)
            model.fit_file(path, memory=memory, temp_dir=folder, output=written, report=report)
        assert report["estimate_block"] == 7  # smoothed from the spilled tables
        in_memory.save(os.path.join(folder, "saved.npz"))
        with open(written, "rb") as a, open(os.path.join(folder, "saved.npz"), "rb") as b:
            assert a.read() == b.read()


@pytest.mark.filterwarnings("ignore:smoothing the")
def test_a_tight_budget_writes_many_runs_and_still_agrees(tmp_path):
    rng = np.random.default_rng(0)
    words = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "fast"]
    lines = [" ".join(rng.choice(words, size=rng.integers(1, 30))) for _ in range(300)]
    path = write(str(tmp_path), lines)
    tok = Tokenizer("word")
    report: dict = {}
    memory = tight_budget(path, 5, tok, 0)
    counts, _ = count_file(path, 5, tok, memory=memory, temp_dir=tmp_path, report=report)
    assert_same_counts(counts, count_in_memory(path, 5, tok)[0])
    assert report["runs"][-1] >= 3  # the 5-grams (the most numerous) spilled several runs
    assert report["positions"] == sum(len(line.split()) + 2 for line in lines)


@settings(max_examples=60, deadline=None)
@given(
    runs=st.lists(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 5)), max_size=60), min_size=0, max_size=12),
    buffer_entries=st.integers(2 * MIN_MERGE, 6 * MIN_MERGE),
)
def test_block_merge_equals_the_plain_merge(runs, buffer_entries):
    tables = []
    for pairs in runs:  # each run: sorted distinct keys and positive counts
        d = dict(pairs)
        keys = np.array(sorted(d), dtype=np.int64)
        tables.append((keys, np.array([d[k] for k in keys.tolist()], dtype=np.int64)))
    expected = merge_reference(tables)
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for i, (k, c) in enumerate(tables):
            run = external._Run(folder, f"r{i}")
            for at in range(0, len(k), 7):  # written a block at a time, as a merge pass writes
                run.append(k[at : at + 7], c[at : at + 7])
            files.append(run.close())
            assert np.array_equal(np.load(run.paths[0]), k) and np.array_equal(np.load(run.paths[1]), c)
        report: dict = {}
        got = merge_runs(files, buffer_entries, folder, report)
        assert os.listdir(folder) == []  # every run, and every run of a merge pass, removed
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    if len(tables) > buffer_entries // MIN_MERGE:
        assert report["merge_passes"][0] >= 1


def test_merge_reference_adds_equal_keys():
    keys, counts = merge_reference([(np.array([1, 5]), np.array([2, 1])), (np.array([5, 9]), np.array([3, 1]))])
    assert keys.tolist() == [1, 5, 9] and counts.tolist() == [2, 4, 1]  # 5: 1 + 3


def test_a_budget_below_what_estimation_takes_is_said(tmp_path):
    rng = np.random.default_rng(1)
    path = write(str(tmp_path), [" ".join(rng.choice(list("abcdefgh"), size=12)) for _ in range(100)])
    counts, _ = count_in_memory(path, 3, Tokenizer("word"))
    distinct = sum(len(k) for k in counts.keys)
    memory = tight_budget(path, 3, Tokenizer("word"), 0)
    assert external.ESTIMATE_BYTES * distinct > memory
    with pytest.warns(UserWarning, match=f"smoothing the {distinct:,} distinct n-grams takes about"):
        count_file(path, 3, Tokenizer("word"), memory=memory, temp_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        count_file(path, 3, Tokenizer("word"), memory=external.ESTIMATE_BYTES * distinct, temp_dir=tmp_path)


def test_budget_shares():
    b = Budget(2**20)
    assert b.working(2**19) == 2**19  # W = M - R
    assert b.block_positions(2**19) == 2**19 // 2 // external.BYTES_PER_POSITION
    huge = Budget(2**40)  # far more than any block needs: the working memory stops at WORKING_CAP
    assert huge.working(2**20) == external.WORKING_CAP == 64 * 2**20
    assert huge.block_positions(0) == 2**20 // 2  # 64 MiB / 2 / 64 bytes a position
    with pytest.raises(ResourceError):  # the cap never hides a budget too small
        huge.working(2**40 - 1)


def test_too_small_a_budget_names_the_minimum(tmp_path):
    path = write(str(tmp_path), ["the cat sat", "the dog ran"])
    with pytest.raises(ResourceError, match=rf"give at least .*\({MIN_WORKING} bytes\)"):
        count_file(path, 3, Tokenizer("word"), memory=1000, temp_dir=tmp_path)
    memory = tight_budget(path, 3, Tokenizer("word"), 0)
    with pytest.raises(ResourceError, match=rf"n-gram tables held at once take .*\({memory} bytes\)"):
        count_file(path, 3, Tokenizer("word"), memory=memory - 1, temp_dir=tmp_path)
    assert os.listdir(tmp_path) == ["corpus.txt"]
    with pytest.raises(ScratchgenError, match="memory must be a number of bytes"):
        count_file(path, 3, memory=0)


def test_the_folder_goes_on_error_and_on_ctrl_c(tmp_path, monkeypatch):
    bad = write(str(tmp_path), ["fine line", "a <s> inside"])
    with pytest.raises(CorpusError, match="<s>"):
        count_file(bad, 3, Tokenizer("word"), memory=1 << 20, temp_dir=tmp_path)
    assert os.listdir(tmp_path) == ["corpus.txt"]
    path = write(str(tmp_path), ["the cat sat", "the dog ran"] * 50)

    def interrupted(*args, **kwargs):
        assert any(name.startswith("scratchgen-spill-") for name in os.listdir(tmp_path))  # it was there
        raise KeyboardInterrupt

    monkeypatch.setattr(external, "merge_runs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        count_file(path, 3, Tokenizer("word"), memory=1 << 20, temp_dir=tmp_path)
    assert os.listdir(tmp_path) == ["corpus.txt"]


def test_a_missing_temp_dir_is_an_error(tmp_path):
    path = write(str(tmp_path), ["ab"])
    with pytest.raises(ScratchgenError, match="does not exist"):
        count_file(path, 2, memory=1 << 20, temp_dir=tmp_path / "nowhere")


@pytest.mark.filterwarnings("ignore:smoothing the")
def test_a_line_longer_than_a_block(tmp_path):
    path = write(str(tmp_path), ["ab" * 3000, "ba", "abc" * 500])  # 6000 positions; blocks of a few hundred
    tok = Tokenizer("char")
    memory = tight_budget(path, 4, tok, 20000)
    counts, _ = count_file(path, 4, tok, memory=memory, temp_dir=tmp_path)
    assert_same_counts(counts, count_in_memory(path, 4, tok)[0])


def test_cli_memory_gives_the_same_model_file(tmp_path, capsys):
    corpus = write(str(tmp_path), ["the cat sat on the mat", "the dog sat", "a cat ran"] * 40)
    plain, spilled = tmp_path / "plain.npz", tmp_path / "spilled.npz"
    assert run_cli(["train", "ngram", "--order", "4", "--level", "word", corpus, "-o", plain], capsys)[0] == 0
    temp = tmp_path / "runs"
    temp.mkdir()
    args = ["--memory", "40K", "--temp-dir", temp]
    assert run_cli(["train", "ngram", "--order", "4", "--level", "word", *args, corpus, "-o", spilled], capsys)[0] == 0
    assert plain.read_bytes() == spilled.read_bytes()
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--memory", "1M", "--labelled"], "--labelled"),
        (["--memory", "1M", "--mode", "paragraphs"], "--mode paragraphs"),
        (["--temp-dir", "."], "give --memory SIZE too"),
    ],
)
def test_cli_memory_usage_errors(tmp_path, capsys, flags, message):
    corpus = write(str(tmp_path), ["x\tthe cat"])
    code, _, err = run_cli(["train", "ngram", *flags, corpus, "-o", tmp_path / "m.npz"], capsys)
    assert code == 2 and message in err


def test_the_chunked_pass_spills_when_smoothing_in_memory_would_outgrow_the_budget(tmp_path, monkeypatch):
    # The counts the chunked pass returns are smoothed in memory (ESTIMATE_BYTES an n-gram): a budget that holds
    # the running totals (ENTRY_BYTES an entry) but not their smoothing must spill.
    rng = np.random.default_rng(2)
    words = [f"w{i}" for i in range(2000)]
    path = write(str(tmp_path), [" ".join(rng.choice(words, size=12)) for _ in range(800)])
    tok = Tokenizer("word")
    reference, _ = count_in_memory(path, 3, tok)
    distinct = sum(len(k) for k in reference.keys)
    monkeypatch.setattr(chunked, "CHUNK_BYTES_PER_CHAR", 1 << 30)  # the smallest chunks: the limit is checked often
    between = (chunked.ENTRY_BYTES + external.ESTIMATE_BYTES) // 2 * distinct  # M / 64 > distinct > M / 120
    assert chunked.count_within(path, 3, tok, between, tmp_path) is None
    roomy = 2 * external.ESTIMATE_BYTES * distinct  # (the totals of unigrams are as wide as the reading ids)
    counted = chunked.count_within(path, 3, tok, roomy, tmp_path)
    assert counted is not None
    assert_same_counts(counted[0], reference)


def test_a_merge_and_a_pile_stay_within_their_bytes_an_entry(tmp_path):
    # BYTES_PER_ENTRY is what the budget gives the pile (capacity W / 2 / it) and the merge (W / it entries of
    # buffers): traced, a merge of four runs and a pile of four blocks stay below it, and are not far under it.
    import tracemalloc

    rng = np.random.default_rng(3)

    def table(size):
        keys = np.unique(rng.integers(0, 2**40, size))
        return keys, rng.integers(1, 9, len(keys))

    runs = []
    for i in range(3):
        run = external._Run(str(tmp_path), f"r{i}")
        run.append(*table(60_000))
        runs.append(run.close())
    runs.append(external._Memory(*table(20_000)))  # an order's last pile is merged from memory
    expected = merge_reference([r.read(0, r.length) for r in runs])[0]
    buffer = 40_000
    tracemalloc.start()
    out = external.OrderFiles(str(tmp_path), 2)
    merge_runs(runs, buffer, str(tmp_path), out=out)
    merged = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(out.whole("keys"), expected)
    assert 0.5 * external.BYTES_PER_ENTRY * buffer < merged <= external.BYTES_PER_ENTRY * buffer
    blocks = [table(15_000) for _ in range(4)]
    capacity = 40_000
    tracemalloc.start()
    pile = external._Pile(str(tmp_path), "pile", capacity)
    for keys, counts in blocks:
        pile.add(keys, counts)
    piled = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(pile.runs) == 1  # the pile outgrew its capacity once and was written as a run
    assert piled <= external.BYTES_PER_ENTRY * capacity
