"""Adam's grouped update (the moments in two flat arrays, a group of parameters at a time) against the
same equations applied to each parameter alone: bit for bit, across a restored state and new shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.nn.optim import Adam
from scratchgen.nn.overlap import Overlap


def one_at_a_time(opt: Adam, params: dict, grads: dict, lr: float) -> None:
    """The reference: eq. (3)-(5) for each parameter alone (Adam._update), its own moment arrays."""
    opt.steps += 1
    c1, c2 = 1.0 - opt.beta1**opt.steps, 1.0 - opt.beta2**opt.steps
    for k, g in grads.items():
        m = opt.state.setdefault(f"adam.m.{k}", np.zeros_like(g))
        v = opt.state.setdefault(f"adam.v.{k}", np.zeros_like(g))
        opt._update(params[k], g, m, v, lr, c1, c2)


shapes = st.lists(st.lists(st.integers(1, 7), min_size=1, max_size=3), min_size=1, max_size=6)


@settings(max_examples=25, deadline=None)
@given(shapes, st.integers(0, 2**16), st.sampled_from([0.0, 0.1]), st.sampled_from([3, 50, 1 << 16]))
def test_grouped_update_equals_one_parameter_at_a_time(dims, seed, decay, group):
    rng = np.random.default_rng(seed)
    params = {f"p{i}": rng.normal(size=d).astype(np.float32) for i, d in enumerate(dims)}
    ref_params = {k: v.copy() for k, v in params.items()}
    fast, ref = Adam(weight_decay=decay), Adam(weight_decay=decay)
    fast.GROUP = group  # groups of one parameter, of a few, of all
    for step in range(4):
        grads = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
        if step == 2:  # a checkpoint restored: arrays of its own in the state (copies of the moments so far)
            fast.state = {k: v.copy() for k, v in fast.state.items()}
        fast.step(params, grads, 1e-2)
        one_at_a_time(ref, ref_params, grads, 1e-2)
        for k in params:
            assert np.array_equal(params[k], ref_params[k]), k
            assert np.array_equal(fast.state[f"adam.m.{k}"], ref.state[f"adam.m.{k}"]), k
            assert np.array_equal(fast.state[f"adam.v.{k}"], ref.state[f"adam.v.{k}"]), k


def test_grouped_update_on_two_threads_and_with_new_parameters():
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(300, 400)), "b": rng.normal(size=400), "g": rng.normal(size=7)}
    ref_params = {k: v.copy() for k, v in params.items()}
    fast, ref = Adam(weight_decay=0.01), Adam(weight_decay=0.01)
    with Overlap() as defer:
        for step in range(3):
            if step == 2:  # a parameter more: its moments start at 0, the others' carry on
                params["new"], ref_params["new"] = np.ones((3, 3)), np.ones((3, 3))
            grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
            fast.step(params, grads, 1e-3, defer)
            one_at_a_time(ref, ref_params, grads, 1e-3)
    for k in params:
        assert np.array_equal(params[k], ref_params[k]), k


def test_parameters_of_two_dtypes_are_updated_one_at_a_time():
    params = {"a": np.ones(3, dtype=np.float32), "b": np.ones(3)}
    grads = {"a": np.full(3, 0.5, dtype=np.float32), "b": np.full(3, 0.5)}
    opt = Adam()
    opt.step(params, grads, 0.1)
    assert params["a"].dtype == np.float32 and opt.state["adam.m.b"].dtype == np.float64
    np.testing.assert_allclose(params["b"], 1.0 - 0.1, rtol=1e-6)  # the first step moves each number by lr
    assert params["a"] == pytest.approx(params["b"], rel=1e-6)
