"""The fast RNN (``scratchgen.nn.layers``) equals the textbook one (``scratchgen.nn.reference``).

The reference runs one sequence at a time with plain loops; the fast path runs the batch at once.
On random small shapes and every option (1 or 2 layers, embedding table or one-hot inputs, padding
mask, carried-in state h0, dropout mask, gradient from a later chunk dh_T, d_loss), the loss, the last
states and every gradient agree to rounding (rtol 1e-9 in float64). The last tests show that the
comparison can fail: a wrong reference, or a reference that ignores an option, is caught.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.nn import layers as L
from scratchgen.nn import reference as R

RTOL, ATOL = 1e-9, 1e-12


def assert_close(fast, ref, what):
    np.testing.assert_allclose(np.asarray(fast, dtype=float), np.asarray(ref, dtype=float),
                               rtol=RTOL, atol=ATOL, err_msg=what)


def random_params(rng, V, H, layers, E):
    """Every parameter random (no zero bias, no special weight), small enough that tanh is not flat."""
    p = {"C": rng.normal(size=(V, E))} if E else {}
    for layer in range(layers):
        rows = (E or V) if layer == 0 else H
        p[f"W_xh.{layer}"] = rng.normal(scale=0.6, size=(rows, H))
        p[f"W_hh.{layer}"] = rng.normal(scale=0.6, size=(H, H))
        p[f"b_h.{layer}"] = rng.normal(scale=0.3, size=H)
    p["W_hy"] = rng.normal(size=(H, V))
    p["b_y"] = rng.normal(size=V)
    return p


def random_case(rng, s):
    """Inputs for the fast pair and the same inputs, option by option, for the reference."""
    B, T, H, V, layers = s["B"], s["T"], s["H"], s["V"], s["layers"]
    params = random_params(rng, V, H, layers, s["E"])
    ids, targets = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))
    mask = rng.random((B, T)) < 0.6 if s["mask"] else None     # may count nothing at all: N = 0
    h0 = rng.normal(scale=0.5, size=(layers, B, H)) if s["h0"] else None
    dropout = (rng.random((B, T, H)) >= 0.3, 0.3) if s["dropout"] else None
    dh_T = rng.normal(size=(layers, B, H)) if s["dh_T"] else None
    return params, ids, targets, mask, h0, dropout, s["d_loss"], dh_T


def fast_network(params, ids, targets, mask, h0, dropout, d_loss, dh_T):
    layers, B, H = sum(k.startswith("W_hh.") for k in params), len(ids), params["W_hh.0"].shape[0]
    inputs = (ids, targets, mask, np.zeros((layers, B, H)) if h0 is None else h0)   # the fast path needs an h0
    if dropout is not None:
        inputs += (dropout,)
    (loss, h_T), cache = L.network_forward(params, inputs)
    grads, (_, _, _, dh0) = L.network_backward(params, cache, (d_loss, dh_T))
    return loss, h_T, grads, dh0


shapes = st.fixed_dictionaries({
    "V": st.integers(2, 6), "H": st.integers(1, 4), "T": st.integers(1, 5), "B": st.integers(1, 3),
    "layers": st.sampled_from([1, 2]), "E": st.sampled_from([None, 1, 3]), "mask": st.booleans(),
    "h0": st.booleans(), "dropout": st.booleans(), "dh_T": st.booleans(),
    "d_loss": st.sampled_from([1.0, 0.4]), "seed": st.integers(0, 2**32 - 1),
})


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_network_forward_and_backward_equal_the_reference(s):
    case = random_case(np.random.default_rng(s["seed"]), s)
    loss, h_T, grads, dh0 = fast_network(*case)
    ref_loss, ref_h_T, ref_grads, ref_dh0 = R.batch_forward_backward(*case)
    assert_close(loss, ref_loss, "loss")
    assert_close(h_T, ref_h_T, "h_T")
    assert set(grads) == set(ref_grads) == set(case[0])             # every parameter, nothing else
    for name in grads:
        assert_close(grads[name], ref_grads[name], name)
    assert_close(dh0, ref_dh0, "dh0")


pieces = st.fixed_dictionaries({
    "V": st.integers(2, 6), "E": st.integers(1, 4), "H": st.integers(1, 4), "T": st.integers(1, 5),
    "B": st.integers(1, 3), "one_hot": st.booleans(), "h0": st.booleans(), "dH": st.booleans(),
    "dh_T": st.booleans(), "seed": st.integers(0, 2**32 - 1),
})


@settings(max_examples=60, deadline=None)
@given(pieces)
def test_rnn_forward_and_backward_equal_the_reference_layer(s):
    """One layer alone: rnn_forward/rnn_backward against layer_forward/layer_backward row by row."""
    rng = np.random.default_rng(s["seed"])
    B, T, H = s["B"], s["T"], s["H"]
    rows = s["V"] if s["one_hot"] else s["E"]
    W_xh, W_hh, b_h = rng.normal(size=(rows, H)), rng.normal(scale=0.6, size=(H, H)), rng.normal(size=H)
    X = rng.integers(0, s["V"], size=(B, T)) if s["one_hot"] else rng.normal(size=(B, T, s["E"]))
    h0 = rng.normal(size=(B, H)) if s["h0"] else None
    dH = rng.normal(size=(B, T, H)) if s["dH"] else None
    dh_T = rng.normal(size=(B, H)) if s["dh_T"] else None
    params = {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h}
    (Hs, hT), cache = L.rnn_forward(params, (X, h0))
    grads, (dX, dh0) = L.rnn_backward(params, cache, (dH, dh_T))
    ref_grads = {name: np.zeros_like(value) for name, value in params.items()}
    for b in range(B):
        xs = [int(i) for i in X[b]] if s["one_hot"] else list(X[b])
        hs = R.layer_forward(W_xh, W_hh, b_h, xs, None if h0 is None else h0[b])
        assert_close(Hs[b], hs[1:], "H")
        assert_close(hT[b], hs[-1], "h_T")
        dhs = list(np.zeros((T, H)) if dH is None else dH[b])
        g, dxs, dh0_b = R.layer_backward(W_xh, W_hh, xs, hs, dhs, None if dh_T is None else dh_T[b])
        for name in ref_grads:
            ref_grads[name] += g[name]
        assert_close(dh0[b], dh0_b, "dh0")
        if s["one_hot"]:
            assert dX is None and all(dx is None for dx in dxs)
        else:
            assert_close(dX[b], dxs, "dX")
    for name in params:
        assert_close(grads[name], ref_grads[name], name)


# --- the comparison can fail ------------------------------------------------------------------------

EVERYTHING = {"V": 5, "H": 3, "T": 4, "B": 2, "layers": 2, "E": 3, "mask": True, "h0": True, "dropout": True,
              "dh_T": True, "d_loss": 0.7}


def largest_difference(fast, ref):
    """The largest absolute difference between two results (loss, h_T, grads, dh0)."""
    diffs = [abs(fast[0] - ref[0]), np.abs(fast[1] - ref[1]).max(), np.abs(fast[3] - ref[3]).max()]
    diffs += [np.abs(fast[2][k] - ref[2][k]).max() for k in fast[2]]
    return max(diffs)


def test_each_option_matters_a_reference_that_ignores_it_is_caught():
    """Drop one option on the reference side only (or perturb one input): the results differ."""
    case = random_case(np.random.default_rng(11), EVERYTHING)
    params, ids, targets, mask, h0, dropout, d_loss, dh_T = case
    fast = fast_network(*case)
    assert largest_difference(fast, R.batch_forward_backward(*case)) < 1e-12
    other_targets = (targets + 1) % EVERYTHING["V"]
    wrong = {
        "no mask": (params, ids, targets, None, h0, dropout, d_loss, dh_T),
        "no h0": (params, ids, targets, mask, None, dropout, d_loss, dh_T),
        "no dropout": (params, ids, targets, mask, h0, None, d_loss, dh_T),
        "no dh_T": (params, ids, targets, mask, h0, dropout, d_loss, None),
        "d_loss 1": (params, ids, targets, mask, h0, dropout, 1.0, dh_T),
        "other targets": (params, ids, other_targets, mask, h0, dropout, d_loss, dh_T),
    }
    for what, args in wrong.items():
        assert largest_difference(fast, R.batch_forward_backward(*args)) > 1e-3, what


def test_a_deliberately_wrong_reference_is_caught(monkeypatch):
    """Two wrong references disagree with the fast path: one forgets tanh' (eq. 10: the states read
    as zeros in backward), one forgets to carry dh_next back in time (eq. 9: each step alone)."""
    case = random_case(np.random.default_rng(12), EVERYTHING)
    fast = fast_network(*case)
    real_backward = R.layer_backward

    def no_tanh_derivative(W_xh, W_hh, xs, hs, dhs, dh_T=None):
        return real_backward(W_xh, W_hh, xs, [np.zeros_like(h) for h in hs], dhs, dh_T)

    def no_dh_next(W_xh, W_hh, xs, hs, dhs, dh_T=None):
        steps = [real_backward(W_xh, W_hh, xs[t:t + 1], hs[t:t + 2], dhs[t:t + 1]) for t in range(len(xs))]
        grads = {name: sum(g[name] for g, _, _ in steps) for name in ("W_xh", "W_hh", "b_h")}
        return grads, [dxs[0] for _, dxs, _ in steps], steps[0][2]

    for wrong in (no_tanh_derivative, no_dh_next):
        monkeypatch.setattr(R, "layer_backward", wrong)
        assert largest_difference(fast, R.batch_forward_backward(*case)) > 1e-3, wrong.__name__
    monkeypatch.undo()
    assert largest_difference(fast, R.batch_forward_backward(*case)) < 1e-12


def test_the_docstring_example_is_the_arithmetic_of_eq_6():
    """Zero weights: p_t uniform over V, so the summed loss is T ln V and the batch mean is ln V."""
    V, H = 4, 2
    params = {"W_xh.0": np.zeros((V, H)), "W_hh.0": np.zeros((H, H)), "b_h.0": np.zeros(H),
              "W_hy": np.zeros((H, V)), "b_y": np.zeros(V)}
    ids = np.array([[0, 1, 2], [3, 3, 0]])
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=bool)             # N = 3 counted targets
    loss, _, _, _ = R.batch_forward_backward(params, ids, ids, mask)
    assert np.isclose(loss, np.log(V), rtol=1e-15)
    assert np.isclose(fast_network(params, ids, ids, mask, None, None, 1.0, None)[0], np.log(V), rtol=1e-15)
