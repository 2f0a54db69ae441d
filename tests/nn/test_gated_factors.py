"""nn/cells.py: the LSTM's backward factors made in the forward loop (_step_factors) equal those made after it.

lstm_forward(factors=True) turns each step's gates into the factors Ki, Kf, Kg, Ko, Kc and f of eq. (L6)-(L9)
while they are in cache, with 1 - g^2 written as 4 s (1 - s); lstm_forward(factors=False) leaves the gates, and
lstm_backward makes the factors from them (_lstm_factors), as the overlapped step does on its second thread.
The two are the same numbers up to rounding: checked in float64 over random shapes, inputs (floats and one-hot
ids), carried states and saturated gates, and the forward's outputs are the same bits.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.nn import cells


def _lstm(rng, E: int, H: int, scale: float, dtype=np.float64) -> dict:
    """One layer's parameters; a large ``scale`` saturates gates (exp overflows to inf, a gate is then 0 or 1)."""
    return {
        "W_xg": rng.normal(scale=scale, size=(E, 4 * H)).astype(dtype),
        "W_hg": rng.normal(scale=scale, size=(H, 4 * H)).astype(dtype),
        "b_g": rng.normal(scale=scale, size=4 * H).astype(dtype),
    }


def _both(p: dict, inputs: tuple, dH: np.ndarray):
    """Forward and backward twice: with the factors made in the forward loop, and after it."""
    out = []
    for factors in (True, False):
        states, cache = cells.lstm_forward(p, inputs, factors=factors)
        out.append((states, cache, cells.lstm_backward(p, cache, (dH, None, None))))
    return out


@settings(max_examples=40, deadline=None)
@given(
    B=st.integers(1, 5),
    T=st.integers(1, 20),
    H=st.integers(1, 6),
    ids=st.booleans(),
    carried=st.booleans(),
    scale=st.sampled_from([0.1, 1.0, 30.0]),
    seed=st.integers(0, 2**16),
)
def test_factors_in_the_forward_loop_equal_the_factors_after_it(B, T, H, ids, carried, scale, seed):
    rng = np.random.default_rng(seed)
    E = 7
    p = _lstm(rng, E, H, scale)
    X = rng.integers(0, E, size=(B, T)) if ids else rng.normal(size=(B, T, E))
    h0, c0 = (rng.normal(size=(B, H)), rng.normal(size=(B, H))) if carried else (None, None)
    dH = rng.normal(size=(B, T, H))
    (s_in, c_in, (g_in, d_in)), (s_after, c_after, (g_after, d_after)) = _both(p, (X, h0, c0), dH)
    for a, b in zip(s_in, s_after):
        np.testing.assert_array_equal(a, b)  # the forward's numbers: the same calls in the same order
    for key in ("gates", "TC", "Cs"):  # the factors, in place of what they were made from
        np.testing.assert_allclose(c_in[key], c_after[key], rtol=1e-12, atol=1e-12, err_msg=key)
    for key in g_after:
        np.testing.assert_allclose(g_in[key], g_after[key], rtol=1e-10, atol=1e-10, err_msg=key)
    for a, b in zip(d_in, d_after):
        if b is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_float32_factors_agree_to_float32_rounding():
    """In float32 the two ways round differently (4 s (1 - s) against 1 - g^2): gradients agree to ~1e-5."""
    rng = np.random.default_rng(1)
    p = _lstm(rng, 8, 16, 0.3, np.float32)
    X = rng.normal(size=(4, 12, 8)).astype(np.float32)
    dH = rng.normal(size=(4, 12, 16)).astype(np.float32)
    (_, _, (g_in, _)), (_, _, (g_after, _)) = _both(p, (X, None, None), dH)
    for key in g_after:
        scale = float(np.abs(g_after[key]).max())
        np.testing.assert_allclose(g_in[key], g_after[key], rtol=0, atol=1e-5 * scale, err_msg=key)


def test_a_wrong_factor_is_caught():
    """The comparison above can fail: dropping the 4 of Kg = 4 i s (1 - s) changes the gradients."""
    rng = np.random.default_rng(2)
    p = _lstm(rng, 3, 4, 1.0)
    X, dH = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 4))
    _, cache = cells.lstm_forward(p, (X, None, None), factors=True)
    cache["gates"][2] /= 4.0  # Kg without its 4
    g_wrong, _ = cells.lstm_backward(p, cache, (dH, None, None))
    _, cache = cells.lstm_forward(p, (X, None, None), factors=False)
    g_right, _ = cells.lstm_backward(p, cache, (dH, None, None))
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(g_wrong["W_hg"], g_right["W_hg"], rtol=1e-6)
