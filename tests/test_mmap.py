"""Loading a model with its arrays memory-mapped (issue 13, section 3): same model, nothing read whole."""

from __future__ import annotations

import numpy as np
import pytest

from scratchgen import ModelFileError, RNNModel, UnigramModel, load
from scratchgen.errors import ScratchgenError
from scratchgen.ngram import NGramModel
from scratchgen.nn import TrainConfig
from scratchgen.schema import ArraySpec, check_array

_RNG = np.random.default_rng(0)
#: Random letter strings: many distinct n-grams, so the tables pass the 64 KiB above which arrays are mapped.
TEXTS = ["".join(_RNG.choice(list("abcdefghij "), size=40)) for _ in range(400)]


def _mapped(a: np.ndarray) -> bool:
    while a is not None and not isinstance(a, np.memmap):
        a = a.base
    return isinstance(a, np.memmap)


@pytest.mark.parametrize(
    "make",
    [
        lambda: NGramModel(order=4).fit(TEXTS),
        lambda: RNNModel(hidden=128, seed=0).fit(TEXTS[:20], config=TrainConfig(epochs=1, seq_len=16, batch_size=8)),
    ],
    ids=["ngram", "rnn"],
)
def test_a_mapped_model_scores_and_generates_as_the_read_one(tmp_path, make):
    path = tmp_path / "m.npz"
    make().save(path)
    read, mapped = load(path, mmap=False), load(path, mmap=True)
    seqs = [read.vocab_.encode(list(t)) for t in ("the cat", "zebra", "")]
    for a, b in zip(read.token_logprobs(seqs), mapped.token_logprobs(seqs)):
        assert np.array_equal(a, b)
    assert read.generate(3, seed=1, max_tokens=20) == mapped.generate(3, seed=1, max_tokens=20)
    arrays = [v for v in vars(mapped).values() if isinstance(v, np.ndarray)]
    for v in vars(mapped).values():
        if isinstance(v, (list, dict)):
            arrays += [x for x in (v.values() if isinstance(v, dict) else v) if isinstance(x, np.ndarray)]
    big = [a for a in arrays if a.nbytes >= 1 << 16]
    assert big and all(_mapped(a) for a in big)  # every large array is a view of the file


def test_auto_maps_only_large_files_and_bad_values_are_refused(tmp_path, monkeypatch):
    import scratchgen.io as sio

    path = tmp_path / "m.npz"
    NGramModel(order=5).fit(TEXTS).save(path)
    assert not _mapped(load(path).logp_[4])
    monkeypatch.setattr(sio, "MMAP_AUTO_BYTES", 1)
    assert _mapped(load(path).logp_[4])
    with pytest.raises(ScratchgenError, match="mmap must be"):
        load(path, mmap="yes")
    UnigramModel().fit(TEXTS).save(tmp_path / "small.npz")  # arrays below 64 KiB are read even with mmap
    assert not _mapped(load(tmp_path / "small.npz", mmap=True).logprobs_)


def test_a_damaged_mapped_file_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    model = NGramModel(order=5).fit(TEXTS)
    model.save(path)
    data = bytearray(path.read_bytes())
    # A NaN written into the middle of the largest log-probability array: the checks see every value.
    big = model.logp_[4]
    start = bytes(data).find(big[:4].tobytes())
    assert start > 0
    data[start + 8 * 2 : start + 8 * 3] = np.array([np.nan]).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="NaN"):
        load(path, mmap=True)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ModelFileError):
        load(path, mmap=True)


def test_block_checks_see_across_block_boundaries(monkeypatch):
    import scratchgen.schema as schema

    monkeypatch.setattr(schema, "_BLOCK", 4)
    spec = ArraySpec((None,), kind="i", increasing=True)
    assert check_array("k", np.arange(10), spec) is None
    bad = np.arange(10)
    bad[4] = bad[3]  # the fault sits exactly at a block boundary
    assert "not strictly increasing" in check_array("k", bad, spec)
    assert "NaN" in check_array("x", np.r_[np.zeros(9), np.nan], ArraySpec((None,)))
