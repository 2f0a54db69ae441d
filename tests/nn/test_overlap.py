"""nn/overlap.py: two threads in one Transformer step, the weight gradients beside the backward pass.

eq. (O1)-(O2): dX = dY W^T stays on the pass's thread, dW = X^T dY and db = sum dY go to the worker, and
the forward's attention and MLP are cut into two halves of the batch's rows. The gradients must equal
those of one thread up to rounding (a matrix product of half the rows may round otherwise in float32),
and be the same numbers at every run: whoever computes a piece, it is the same piece.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchgen import TransformerModel
from scratchgen.nn import parallel as parallel_module
from scratchgen.nn.optim import Adam
from scratchgen.nn.overlap import Overlap, Pending, part, resolve, run_now
from scratchgen.nn.parallel import DataParallel, parameter_count, shard_bounds
from scratchgen.nn.transformer import TransformerNetwork, init_transformer

V, C = 9, 3  # vocabulary, labels


def small_network(tied: bool, labels: int, dtype, rng: np.random.Generator, D: int = 8, L: int = 2, T: int = 6):
    params = init_transformer(V, D, L, T, rng, tied=tied, labels=labels, dtype=dtype)
    return {k: (v + rng.normal(scale=0.1, size=v.shape)).astype(dtype) for k, v in params.items()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tied=st.booleans(),
    labelled=st.booleans(),
    masked=st.booleans(),
    B=st.integers(1, 7),
    T=st.integers(1, 6),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_overlapped_gradients_equal_one_thread(tied, labelled, masked, B, T, dtype, seed):
    rng = np.random.default_rng(seed)
    params = small_network(tied, C if labelled else 0, dtype, rng)
    net = TransformerNetwork(2)
    x, y = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))
    inputs: tuple = (x, y, (rng.random((B, T)) < 0.7) if masked else None, None)
    if labelled:
        inputs += (None, rng.integers(0, C, size=B))
    (loss, _), cache = net.forward(params, inputs)
    one, _ = net.backward(params, cache)
    runs = []
    with Overlap() as defer:
        for _ in range(2):
            (loss_2, _), cache = net.forward(params, inputs, defer)
            runs.append((loss_2, net.backward(params, cache, defer=defer)[0]))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert abs(runs[0][0] - loss) <= tol * max(1.0, abs(loss))
    two = runs[0][1]
    assert list(two) == list(one)  # the same keys in the same order (a clipping norm sums in this order)
    for key in one:
        assert two[key].dtype == one[key].dtype, key
        np.testing.assert_allclose(two[key], one[key], rtol=tol, atol=tol * np.abs(one[key]).max(), err_msg=key)
        assert np.array_equal(runs[1][1][key], two[key]), key  # deterministic: the same bits at every run
    assert runs[1][0] == runs[0][0]


def test_data_parallel_overlaps_a_small_transformer(monkeypatch):
    """Two threads on a network too small for shards: one shard, the weight gradients on the second thread,
    and the step equals the network's own forward and backward (float64: to 1e-12)."""
    submitted = []

    class Counting(Overlap):
        def __call__(self, fn, *args):
            submitted.append(fn.__name__)
            return super().__call__(fn, *args)

    monkeypatch.setattr(parallel_module, "Overlap", Counting)
    rng = np.random.default_rng(0)
    params = small_network(True, 0, np.float64, rng)
    net = TransformerNetwork(2)
    inputs = (rng.integers(0, V, size=(8, 6)), rng.integers(0, V, size=(8, 6)), None, None)
    assert len(shard_bounds(8, 2, parameter_count(params))) == 1  # too little work to cut
    (loss, _), cache = net.forward(params, inputs)
    grads, _ = net.backward(params, cache)
    with DataParallel(net, threads=2) as parallel:
        loss_2, state_2, grads_2 = parallel.step(params, inputs)
    assert abs(loss_2 - loss) <= 1e-12 * loss and state_2 is None
    # W_proj, W_fc~ and LN_2 unfolded (eq. (A23)), W_o, W_qkv~ and LN_1 unfolded
    block = ["_weight_grads", "_matmul_t", "_unfold", "_weight_grads", "_qkv_weight_grads", "_unfold"]
    weight_tasks = [name for name in submitted if name != "_run_all"]  # _run_all: halves of the blocks' work
    assert weight_tasks == ["_weight_grads"] + block * 2 + ["_table_grads"]  # the output map first, the tables last
    assert submitted.count("_run_all") >= 2 * 2  # at least the attention and the MLP of each block
    for key in grads:
        np.testing.assert_allclose(grads_2[key], grads[key], rtol=1e-12, atol=1e-15, err_msg=key)


def test_a_transformer_trained_with_two_threads_equals_one_thread_and_repeats():
    kw = dict(layers=2, heads=2, embedding=8, context=6, epochs=2, batch_size=4, lr=1e-2, seed=1,
              valid_fraction=0.25, eval_interval=3, clip=1.0)  # fmt: skip
    corpus = ["abcab", "bacca", "cabba", "abba", "bcbc", "aabbcc", "cab", "acab"]
    one = TransformerModel(**kw, threads=1).fit(corpus)
    two = TransformerModel(**kw, threads=2).fit(corpus)
    again = TransformerModel(**kw, threads=2).fit(corpus)
    for key in one.params_:
        np.testing.assert_allclose(two.params_[key], one.params_[key], rtol=1e-10, atol=1e-12, err_msg=key)
        assert np.array_equal(again.params_[key], two.params_[key]), key  # two threads: the same bits each run
    np.testing.assert_allclose([h["valid_loss"] for h in two.history_], [h["valid_loss"] for h in one.history_])


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_with_half_the_parameters_on_the_worker_changes_no_bit(weight_decay):
    rng = np.random.default_rng(2)
    params = small_network(True, 0, np.float32, rng)
    twin = {k: v.copy() for k, v in params.items()}
    one, two = Adam(weight_decay=weight_decay), Adam(weight_decay=weight_decay)
    with Overlap() as defer:
        for _ in range(3):
            grads = {k: rng.normal(size=v.shape).astype(v.dtype) for k, v in params.items()}
            one.step(params, grads, 1e-2)
            two.step(twin, grads, 1e-2, defer)
    assert list(two.state) == list(one.state)  # the state's keys in the same order (a checkpoint's)
    for k in params:
        assert np.array_equal(twin[k], params[k]), k
        assert np.array_equal(two.state[f"adam.v.{k}"], one.state[f"adam.v.{k}"]), k


def test_parts_and_resolve():
    assert part(run_now(divmod, 7, 2), 1) == 1  # one thread: the item itself
    with Overlap() as defer:
        future = defer(divmod, 7, 2)
        pending = part(future, 0)
        assert isinstance(pending, Pending)
        assert resolve({"q": pending, "r": part(future, 1), "x": np.ones(1)}) == {"q": 3, "r": 1, "x": np.ones(1)}


def test_an_error_on_the_worker_reaches_the_caller():
    with Overlap() as defer:
        bad = defer(np.matmul, np.ones((2, 3)), np.ones((2, 3)))  # shapes that do not multiply
        with pytest.raises(ValueError, match="matmul"):
            resolve({"W": bad})


def test_the_worker_keeps_the_callers_floating_point_settings():
    with Overlap() as defer, np.errstate(over="raise"):
        big = np.array([3e38], dtype=np.float32)
        with pytest.raises(FloatingPointError):
            defer(np.multiply, big, np.float32(10.0)).result()
