"""The ends of the spilled fit that no longer hold the whole tables: counting's tables written to column files
(scratchgen.ngram.external, pass 4), and the model file written from columns a block at a time
(scratchgen.io.write_archive with Column values; NGramModel.fit_file(output=)). Both give the bytes of the
in-memory path."""

from __future__ import annotations

import io
import json
import os
import warnings

import numpy as np
import pytest
from corpus_files import write
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import load
from scratchgen.errors import ModelFileError, OutputError
from scratchgen.io import HEADER_KEY, _write_npz, write_archive
from scratchgen.ngram import NGramModel, chunked, external
from scratchgen.ngram import external_smoothing as es
from scratchgen.text import Tokenizer


class ArrayColumn:
    """An array read a slice at a time, as the column files are (and counting how often it was read)."""

    def __init__(self, values: np.ndarray):
        self.values, self.dtype, self.length, self.reads = values, values.dtype, len(values), 0

    def read(self, start: int, stop: int) -> np.ndarray:
        self.reads += 1
        return self.values[start:stop].copy()


def savez_bytes(arrays: dict) -> bytes:
    f = io.BytesIO()
    np.savez(f, **arrays)
    return f.getvalue()


arrays_1d = st.lists(
    st.tuples(
        st.sampled_from([np.int64, np.float64, np.int32, np.bool_, np.uint8]),
        st.integers(0, 200),
        st.booleans(),  # written from a column or whole
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(spec=arrays_1d, block=st.integers(1, 70), seed=st.integers(0, 2**16))
def test_columns_are_written_as_savez_writes_the_arrays(spec, block, seed):
    rng = np.random.default_rng(seed)
    arrays = {f"a{i}": (rng.random(n) * 100).astype(dtype) for i, (dtype, n, _) in enumerate(spec)}
    given_ = {k: ArrayColumn(v) if streamed else v for (k, v), (_, _, streamed) in zip(arrays.items(), spec)}
    f = io.BytesIO()
    _write_npz(f, given_, block, None)
    assert f.getvalue() == savez_bytes(arrays)
    for (_, column), (_, n, streamed) in zip(given_.items(), spec):
        if streamed:  # read a block at a time, never whole (unless it fits one block)
            assert column.reads == -(-n // block)


def test_write_archive_takes_columns(tmp_path):
    header, keys = {"format": "test"}, np.arange(0, 300, 3)
    write_archive(tmp_path / "a.npz", header, {"keys": ArrayColumn(keys), "w": np.ones((2, 3))}, block=7)
    blob = json.dumps(header).encode("utf-8")  # the header array first, then the arrays in order
    expected = savez_bytes({HEADER_KEY: np.frombuffer(blob, dtype=np.uint8), "keys": keys, "w": np.ones((2, 3))})
    assert (tmp_path / "a.npz").read_bytes() == expected


def test_a_bad_block_leaves_the_old_file(tmp_path):
    """A column whose later block breaks the schema (write_model checks every block as it is written)."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat\nthe dog sat\n", encoding="utf-8")
    model = NGramModel(order=2, tokenizer=Tokenizer("word")).fit_file(corpus)
    path = tmp_path / "m.npz"
    path.write_bytes(b"the old file")
    from scratchgen.io import write_model
    from scratchgen.ngram.storage import save_arrays

    keys, logp, bow = model._tables()
    bad = logp[1].copy()
    bad[-1] = np.nan  # in the last block of 2
    arrays = save_arrays(keys, [logp[0], ArrayColumn(bad)], bow)
    with pytest.raises(ModelFileError, match="cannot save this NGramModel: logp_2 holds NaN"):
        write_model(model, path, {"discounts": model.discounts_}, arrays, block=2)
    unsorted = keys[1][::-1].copy()
    arrays = save_arrays([keys[0], ArrayColumn(unsorted)], logp, bow)
    with pytest.raises(ModelFileError, match="keys_2 is not strictly increasing"):
        write_model(model, path, {"discounts": model.discounts_}, arrays, block=1)  # across blocks of 1
    assert path.read_bytes() == b"the old file"
    assert sorted(os.listdir(tmp_path)) == ["c.txt", "m.npz"]  # no temporary file left


@pytest.mark.parametrize("smoothing", ["modified-kneser-ney", "witten-bell", "absolute", "stupid-backoff", "add-k"])
def test_the_spilled_fit_writes_the_in_memory_file(tmp_path, monkeypatch, smoothing):
    rng = np.random.default_rng(5)
    words = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "fast", "<unk>", "é"]
    path = write(tmp_path, [" ".join(rng.choice(words, size=rng.integers(1, 25))) for _ in range(300)])
    monkeypatch.setattr(es, "block_entries", lambda memory, sizes: 11)  # many blocks, for estimation and writing
    monkeypatch.setattr(chunked, "ENTRY_BYTES", 1 << 20)  # the chunked pass outgrows the budget: spill
    monkeypatch.setattr(chunked, "CHUNK_BYTES_PER_CHAR", 1 << 20)
    temp = tmp_path / "runs"
    temp.mkdir()
    settings_ = {"order": 5, "smoothing": smoothing, "tokenizer": Tokenizer("word")}
    report: dict = {}
    spilled = NGramModel(**settings_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # written to a file: no warning that the model outgrows the budget
        spilled.fit_file(path, memory=1 << 20, temp_dir=temp, report=report, output=tmp_path / "spilled.npz")
    assert report["spilled"] and report["estimate_block"] == 11
    in_memory = NGramModel(**settings_).fit_file(path)
    in_memory.save(tmp_path / "memory.npz")
    assert (tmp_path / "spilled.npz").read_bytes() == (tmp_path / "memory.npz").read_bytes()
    assert list(temp.iterdir()) == []
    # the model returned is the fitted one, its tables read from the file it wrote
    for x, y in zip(spilled.keys_ + spilled.logp_ + spilled.bow_, in_memory.keys_ + in_memory.logp_ + in_memory.bow_):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert spilled.discounts_ == in_memory.discounts_
    assert spilled.score(["the cat sat"]).logprob == in_memory.score(["the cat sat"]).logprob
    assert load(tmp_path / "spilled.npz").num_ngrams() == in_memory.num_ngrams()


def test_an_interrupted_write_leaves_the_old_file_and_no_folder(tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM, which the CLI raises the same way) on the third block read while the model file is
    written: the old file stays, and neither the temporary file nor the spill folder is left."""
    import scratchgen.io as sio

    rng = np.random.default_rng(2)
    path = write(tmp_path, [" ".join(rng.choice(list("abcdefghijklmnop"), size=12)) for _ in range(300)])
    monkeypatch.setattr(chunked, "ENTRY_BYTES", 1 << 20)
    monkeypatch.setattr(chunked, "CHUNK_BYTES_PER_CHAR", 1 << 20)
    monkeypatch.setattr(es, "block_entries", lambda memory, sizes: 5)
    out = tmp_path / "m.npz"
    out.write_bytes(b"the old model")
    reads, writing, write_model, read = [], [], sio.write_model, external._Column.read

    def counted_read(self, start, stop):
        if writing:
            reads.append(start)
            if len(reads) == 3:
                raise KeyboardInterrupt
        return read(self, start, stop)

    def flagged_write_model(*args, **kwargs):
        writing.append(True)
        return write_model(*args, **kwargs)

    monkeypatch.setattr(external._Column, "read", counted_read)
    monkeypatch.setattr(sio, "write_model", flagged_write_model)
    report: dict = {}
    model = NGramModel(order=3, tokenizer=Tokenizer("word"))
    with pytest.raises(KeyboardInterrupt):
        model.fit_file(path, memory=1 << 20, temp_dir=tmp_path, output=out, report=report)
    assert report["spilled"] and len(reads) == 3
    assert out.read_bytes() == b"the old model"
    assert sorted(os.listdir(tmp_path)) == ["corpus.txt", "m.npz"]  # no spill folder, no temporary file


@pytest.mark.filterwarnings("ignore:smoothing the")
def test_counting_no_longer_holds_every_order(tmp_path):
    """A budget below the whole count tables' 16 bytes an n-gram (what counting held before pass 4 streamed)
    still counts, to the same tables."""
    rng = np.random.default_rng(4)
    path = write(tmp_path, [" ".join(rng.choice([f"w{i}" for i in range(40)], size=15)) for _ in range(400)])
    tok = Tokenizer("word")
    reference, _ = external.count_in_memory(path, 5, tok)
    sizes = [len(k) for k in reference.keys]
    memory = external.least_memory(sizes)
    assert memory < 16 * sum(sizes) + external.MIN_WORKING
    counts, _ = external.count_file(path, 5, tok, memory=memory, temp_dir=tmp_path)
    for field in ("keys", "counts", "suffix", "bos_start"):
        for x, y in zip(getattr(counts, field), getattr(reference, field)):
            assert np.array_equal(x, y), field


@pytest.mark.parametrize("memory", [None, 1 << 20])
def test_a_bad_output_is_named_before_the_corpus_is_read(tmp_path, monkeypatch, memory):
    """fit_file(output=) checks the output first: a missing folder, or the corpus itself, is refused before any
    counting, and the corpus is left as it was."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\nb c a\n", encoding="utf-8")

    def no_counting(*args, **kwargs):
        raise AssertionError("the corpus was read before the output was checked")

    monkeypatch.setattr(chunked, "count", no_counting)
    monkeypatch.setattr(chunked, "count_within", no_counting)
    model = NGramModel(order=2, tokenizer=Tokenizer("word"))
    with pytest.raises(OutputError, match="does not exist"):
        model.fit_file(corpus, memory=memory, output=tmp_path / "missing" / "m.npz")
    with pytest.raises(OutputError, match="also an input"):
        model.fit_file(corpus, memory=memory, output=corpus)
    assert corpus.read_text(encoding="utf-8") == "a b c\nb c a\n"
