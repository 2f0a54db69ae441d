"""nn/overlap.py: the weight gradients computed on a second thread beside the backward pass change no bit.

eq. (O1)-(O2): dX = dY W^T stays on the pass's thread, dW = X^T dY and db = sum dY go to the worker. The
deferred work is the same function of the same arrays, so the gradients must equal those of one thread
exactly (not merely to rounding), for every layout of the Transformer, and a whole training run with
``threads=2`` (which overlaps at this size instead of cutting shards) must equal the run with one.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchgen import TransformerModel
from scratchgen.nn import parallel as parallel_module
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
def test_overlapped_gradients_equal_one_thread_bit_for_bit(tied, labelled, masked, B, T, dtype, seed):
    rng = np.random.default_rng(seed)
    params = small_network(tied, C if labelled else 0, dtype, rng)
    net = TransformerNetwork(2)
    x, y = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))
    inputs: tuple = (x, y, (rng.random((B, T)) < 0.7) if masked else None, None)
    if labelled:
        inputs += (None, rng.integers(0, C, size=B))
    (_, _), cache = net.forward(params, inputs)
    one, _ = net.backward(params, cache)
    (_, _), cache = net.forward(params, inputs)  # the backward consumes its cache's probabilities
    with Overlap() as defer:
        two, _ = net.backward(params, cache, defer=defer)
    assert list(two) == list(one)  # the same keys in the same order (a clipping norm sums in this order)
    for key in one:
        assert two[key].dtype == one[key].dtype and np.array_equal(two[key], one[key]), key


def test_data_parallel_overlaps_a_small_transformer(monkeypatch):
    """Two threads on a network too small for shards: one shard, the weight gradients on the second thread,
    and the step equals the network's own forward and backward bit for bit."""
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
    assert loss_2 == loss and state_2 is None
    block = ["_weight_grads", "_matmul_t", "_weight_grads", "_qkv_weight_grads"]  # W_proj, W_fc, W_o, W_qkv
    assert submitted == ["_weight_grads"] + block * 2 + ["_table_grads"]  # the output map first, the tables last
    for key in grads:
        assert np.array_equal(grads_2[key], grads[key]), key


def test_a_transformer_trained_with_two_threads_equals_one_thread():
    kw = dict(layers=2, heads=2, embedding=8, context=6, epochs=2, batch_size=4, lr=1e-2, seed=1,
              valid_fraction=0.25, eval_interval=3, clip=1.0)  # fmt: skip
    corpus = ["abcab", "bacca", "cabba", "abba", "bcbc", "aabbcc", "cab", "acab"]
    one = TransformerModel(**kw, threads=1).fit(corpus)
    two = TransformerModel(**kw, threads=2).fit(corpus)
    for key in one.params_:
        assert np.array_equal(one.params_[key], two.params_[key]), key
    assert [h["valid_loss"] for h in one.history_] == [h["valid_loss"] for h in two.history_]


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
