"""nn/lstm_overlap.py: the LSTM's step with its products on a second thread equals the step on one thread.

eq. (O1)-(O2): the loss and the gradients are sums over blocks of time, taken in a fixed order. Checked in
float64 against GatedNetwork.forward + backward (which tests/nn/test_gated_rnn.py checks against the
textbook reference and finite differences), with and without labels, a padding mask, dropout, a carried
state, one-hot inputs and the folded embedding, for T that the block size does not divide; the same step
twice gives the same bits whatever thread finishes first.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nn_inputs import H, V, chunk_inputs, network  # tests/nn/nn_inputs.py

from scratchgen.nn import cells
from scratchgen.nn.gated import GatedNetwork, init_gated_params
from scratchgen.nn.lstm_overlap import overlap_step
from scratchgen.nn.parallel import DataParallel


def now(fn, *args) -> Future:
    """A ``submit`` that runs the job at once, in the calling thread: the plain order of the blocks."""
    future: Future = Future()
    future.set_result(fn(*args))
    return future


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    L=st.integers(1, 2),
    E=st.sampled_from([None, 4]),
    B=st.integers(1, 6),
    T=st.integers(1, 13),
    steps=st.integers(1, 5),
    labelled=st.booleans(),
    masked=st.booleans(),
    dropout=st.booleans(),
    carried=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_the_overlapped_step_equals_the_plain_step(L, E, B, T, steps, labelled, masked, dropout, carried, seed):
    rng = np.random.default_rng(seed)
    net, params = network("lstm", labelled, rng, L, E)
    inputs = chunk_inputs(net, params, "lstm", B, T, labelled, masked, dropout, carried, rng)
    (loss, state_T), cache = net.forward(params, inputs)
    grads, _ = net.backward(params, cache)
    (loss_o, state_o), grads_o = overlap_step(net, params, inputs, now, steps)
    assert abs(loss_o - loss) <= 1e-12 * max(1.0, abs(loss))  # eq. (O1)
    np.testing.assert_array_equal(state_o, state_T)  # the recurrence itself is the same calls
    assert set(grads_o) == set(grads)
    for key in grads:  # eq. (O2)
        np.testing.assert_allclose(grads_o[key], grads[key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_a_block_left_out_is_caught():
    """The check above can fail: dropping the last block's part of dW_hg changes it."""
    rng = np.random.default_rng(0)
    net, params = network("lstm", False, rng, 1, 4)
    inputs = chunk_inputs(net, params, "lstm", 3, 9, False, False, False, True, rng)
    (_, _), cache = net.forward(params, inputs)
    grads, _ = net.backward(params, cache)
    jobs: list = []

    def forget_one(fn, *args):
        jobs.append(fn)
        if fn is cells._lstm_param_grads and jobs.count(fn) == 1:  # the first backward block: step 8
            part = fn(*args)
            return now(lambda: ({k: np.zeros_like(v) for k, v in part[0].items()}, part[1]))
        return now(fn, *args)

    (_, _), grads_o = overlap_step(net, params, inputs, forget_one, 4)
    assert not np.allclose(grads_o["W_hg.0"], grads["W_hg.0"])


def test_two_threads_give_the_same_bits_every_time():
    rng = np.random.default_rng(1)
    net, params = network("lstm", False, rng, 2, 4)
    inputs = chunk_inputs(net, params, "lstm", 8, 23, False, True, True, True, rng)
    with ThreadPoolExecutor(max_workers=2) as pool:  # two workers: the blocks' jobs finish in any order
        runs = [overlap_step(net, params, inputs, pool.submit, 3) for _ in range(4)]
    (loss, state), grads = runs[0]
    for (loss_r, state_r), grads_r in runs[1:]:
        assert loss_r == loss and np.array_equal(state_r, state)
        assert all(np.array_equal(grads_r[k], grads[k]) for k in grads)
    (_, _), plain = overlap_step(net, params, inputs, now, 3)  # the same blocks, in the calling thread
    assert all(np.array_equal(plain[k], grads[k]) for k in grads)


@pytest.mark.parametrize("cell, overlaps", [("lstm", True), ("gru", False)])
def test_two_threads_overlap_an_lstm_that_asks_for_it(cell, overlaps, monkeypatch):
    """The LSTM shards over processes by default (tests/nn/test_process_shards.py); the overlapped step is
    what an LSTM network with overlaps_recurrence gets (the benchmark's "overlap" mode)."""
    calls: list = []
    monkeypatch.setattr(GatedNetwork, "overlap_step", lambda self, *a: calls.append(a) or overlap_step(self, *a))
    rng = np.random.default_rng(2)
    net, params = GatedNetwork(cell, 1), init_gated_params(cell, V, H, 1, 4, rng)
    if cell == "lstm":
        net.shards_in_processes, net.overlaps_recurrence = False, True
    inputs = chunk_inputs(net, params, cell, 8, 10, False, False, False, False, rng)
    (loss, _), cache = net.forward(params, inputs)
    with DataParallel(net, threads=2, min_work=0) as parallel:
        loss_2, _, _ = parallel.step(params, inputs)
    assert bool(calls) == overlaps
    assert abs(loss_2 - loss) <= 1e-12


def test_blocked_cells_equal_the_plain_cells():
    """cells.lstm_forward/lstm_backward with blocks and a ``submit``: the same states, gradients up to rounding."""
    rng = np.random.default_rng(3)
    p = {"W_xg": rng.normal(size=(4, 4 * H)), "W_hg": rng.normal(size=(H, 4 * H)), "b_g": rng.normal(size=4 * H)}
    X, dH = rng.normal(size=(2, 11, 4)), rng.normal(size=(2, 11, H))
    seen: list = []
    (Hs, hT, cT), cache = cells.lstm_forward(p, (X, None, None))
    (Hs_b, hT_b, cT_b), cache_b = cells.lstm_forward(p, (X, None, None), 4, lambda *a: seen.append(a[:2]))
    assert seen == [(0, 4), (4, 8), (8, 11)] and np.array_equal(Hs_b, Hs)
    grads, (dX, dh0, dc0) = cells.lstm_backward(p, cache, (dH, None, None))
    grads_b, (dX_b, dh0_b, dc0_b) = cells.lstm_backward(p, cache_b, (dH, None, None), 4, now)
    np.testing.assert_array_equal(dh0_b, dh0)  # the loop is the same calls
    np.testing.assert_allclose(dX_b, dX, rtol=1e-12, atol=1e-14)
    for key in grads:
        np.testing.assert_allclose(grads_b[key], grads[key], rtol=1e-12, atol=1e-13, err_msg=key)
