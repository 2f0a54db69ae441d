"""nn/parallel.py: a step cut into shards of rows, in threads, equals the step of the whole batch.

eq. (P1)-(P3): the loss and the gradients are the count-weighted sums of the shards', the carried state
the shards' states side by side. Checked in float64 for every network (tanh RNN, GRU, LSTM, MLP,
Transformer), with and without labels, a padding mask, dropout and a carried state, for batch sizes
that k does not divide; and a run with 2 threads resumes bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nn_inputs import KINDS, chunk_inputs, network  # tests/nn/nn_inputs.py

from scratchgen import RNNModel
from scratchgen.nn import Callback, Checkpoint, parallel
from scratchgen.nn.parallel import (
    MIN_SHARD_ROWS,
    MIN_SHARD_WORK,
    DataParallel,
    shard_bounds,
    sharded_step_reference,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    B=st.integers(1, 19),
    k=st.integers(2, 3),
    labelled=st.booleans(),
    masked=st.booleans(),
    dropout=st.booleans(),
    carried=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_the_sharded_step_equals_the_whole_batch(kind, B, k, labelled, masked, dropout, carried, seed):
    rng = np.random.default_rng(seed)
    net, params = network(kind, labelled, rng)
    T = 6 if kind == "transformer" else 5
    inputs = chunk_inputs(net, params, kind, B, T, labelled, masked, dropout, carried, rng)
    (loss, state_T), cache = net.forward(params, inputs)  # the whole batch, no shards
    grads, _ = net.backward(params, cache)
    net.shards_in_processes = False  # the LSTM's shards run in processes by default: tests/nn/test_process_shards.py
    with DataParallel(net, threads=k, min_work=0) as parallel:  # min_work 0: small networks are cut too
        loss_k, state_k, grads_k = parallel.step(params, inputs)
    assert abs(loss_k - loss) <= 1e-12 * max(1.0, abs(loss))  # eq. (P1)
    assert set(grads_k) == set(grads)
    for key in grads:  # eq. (P2)
        np.testing.assert_allclose(grads_k[key], grads[key], rtol=1e-10, atol=1e-12, err_msg=key)
    if state_T is None:
        assert state_k is None
    else:  # eq. (P3): rows never mix, so the states are the same numbers
        np.testing.assert_allclose(state_k, state_T, rtol=1e-12, atol=1e-14)
    if len(shard_bounds(B, k, min_work=0)) == 1 and getattr(net, "overlaps", False):
        return  # one shard of a Transformer: the threads overlap instead (tests/nn/test_overlap.py)
    # the threads change nothing: the shards one after another give the same bits
    loss_r, state_r, grads_r = sharded_step_reference(net, params, inputs, k, min_work=0)
    assert loss_r == loss_k
    for key in grads:
        assert np.array_equal(grads_r[key], grads_k[key]), key


def test_a_wrong_combination_is_caught():
    """The check above can fail: unweighted shard means differ from the batch mean when the counts differ."""
    rng = np.random.default_rng(0)
    net, params = network("gru", False, rng)
    inputs = chunk_inputs(net, params, "gru", 9, 5, False, True, False, True, rng)
    (loss, _), _ = net.forward(params, inputs)
    halves = [
        net.forward(params, (inputs[0][a:b], inputs[1][a:b], inputs[2][a:b], inputs[3][:, a:b]))[0][0]
        for a, b in shard_bounds(9, 2)
    ]
    assert abs(np.mean(halves) - loss) > 1e-6


@pytest.mark.parametrize(
    ("B", "k", "expected"),
    [
        (32, 2, [(0, 16), (16, 32)]),
        (33, 2, [(0, 17), (17, 33)]),  # the first B mod k shards get one row more
        (10, 3, [(0, 5), (5, 10)]),  # at most B // MIN_SHARD_ROWS = 2 shards
        (2 * MIN_SHARD_ROWS - 1, 2, [(0, 2 * MIN_SHARD_ROWS - 1)]),  # too small to cut
        (5, 1, [(0, 5)]),
    ],
)
def test_shard_bounds(B, k, expected):
    assert shard_bounds(B, k) == expected


def test_a_small_network_is_not_cut():
    """Each shard needs MIN_SHARD_WORK rows x parameters: 32 rows of a 100,000-parameter network are one shard."""
    assert shard_bounds(32, 2, n_params=MIN_SHARD_WORK // 16) == [(0, 16), (16, 32)]
    assert shard_bounds(32, 2, n_params=MIN_SHARD_WORK // 16 - 1) == [(0, 32)]


class DieAt(Callback):
    def __init__(self, step):
        self.step = step

    def after_step(self, trainer, epoch_end):
        if trainer.step >= self.step:
            raise KeyboardInterrupt


TEXT = "the cat sat on the mat and the dog ate the bone. " * 12


@pytest.mark.parametrize("cell", ["tanh", "lstm"])
def test_resume_with_two_threads_is_bit_for_bit(cell, tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_SHARD_WORK", 0)  # the small test network is cut into shards too
    kw = dict(
        cell=cell,
        hidden=6,
        embedding=3,
        epochs=2,
        batch_size=9,
        seq_len=5,
        lr=1e-2,
        seed=3,
        threads=2,
        valid_fraction=0.2,
        eval_interval=4,
        dropout=0.2,
        running_text=True,
    )
    corpus = [TEXT[i : i + 40] for i in range(0, len(TEXT), 40)]
    whole = RNNModel(**kw).fit(corpus)
    ck = str(tmp_path / "ck.npz")
    with pytest.raises(KeyboardInterrupt):
        RNNModel(**kw).fit(corpus, callbacks=[Checkpoint(ck, every=3), DieAt(7)])
    resumed = RNNModel(**kw).fit(corpus, resume=ck)
    for k in whole.params_:
        assert np.array_equal(whole.params_[k], resumed.params_[k]), k
    assert [h["valid_loss"] for h in whole.history_] == [h["valid_loss"] for h in resumed.history_]
    one = RNNModel(**{**kw, "threads": 1}).fit(corpus)  # another k: the same run up to rounding
    for k in whole.params_:
        np.testing.assert_allclose(one.params_[k], whole.params_[k], rtol=1e-9, atol=1e-11, err_msg=k)


def test_threads_is_checked_by_name():
    from scratchgen.errors import ScratchgenError

    with pytest.raises(ScratchgenError, match=r"threads \(--threads\) must be an integer >= 1, got 0"):
        RNNModel(threads=0).fit(["abc abc abc"])
