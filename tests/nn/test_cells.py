"""GRU and LSTM cells (scratchgen/nn/cells.py): gradients against finite differences (float64), the batched
layer against a loop of plain steps, chunks against one long sequence, and PyTorch at the same weights."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.nn import cells as C
from scratchgen.nn import gradcheck_piece

TOL = 1e-6
GATES = {"gru": 3, "lstm": 4}


def cell_params(rng, cell, E, H, layers=None, scale=0.5):
    """Random weights at half scale (gates and tanh away from saturation, where differences measure rounding)."""
    k = GATES[cell]

    def one(e):
        p = {"W_xg": rng.normal(size=(e, k * H)) * scale, "W_hg": rng.normal(size=(H, k * H)) * scale,
             "b_g": rng.normal(size=k * H) * scale}
        if cell == "gru":
            p["b_hn"] = rng.normal(size=H) * scale
        return p

    if layers is None:
        return one(E)
    out = {}
    for layer in range(layers):
        out.update({f"{name}.{layer}": v for name, v in one(E if layer == 0 else H).items()})
    return out


FORWARD = {"gru": (C.gru_forward, C.gru_backward), "lstm": (C.lstm_forward, C.lstm_backward)}
STACK = {"gru": (C.gru_stack_forward, C.gru_stack_backward), "lstm": (C.lstm_stack_forward, C.lstm_stack_backward)}


def states(rng, cell, *lead):
    """The carried-in state: (h0,) for the GRU, (h0, c0) for the LSTM."""
    return tuple(rng.normal(size=lead) for _ in range(1 if cell == "gru" else 2))


shapes = st.fixed_dictionaries({
    "cell": st.sampled_from(["gru", "lstm"]), "B": st.integers(1, 3), "T": st.integers(1, 5),
    "H": st.integers(1, 4), "E": st.integers(1, 4), "layers": st.integers(1, 3), "seed": st.integers(0, 10_000),
    "one_hot": st.booleans(),
})


@settings(max_examples=16, deadline=None)
@given(shapes)
def test_one_layer_gradients_match_finite_differences(s):
    """Every weight, the float inputs and the carried-in state(s) (one-hot ids: W_xg is a lookup table)."""
    rng = np.random.default_rng(s["seed"])
    cell, B, T, H, E = s["cell"], s["B"], s["T"], s["H"], s["E"]
    p = cell_params(rng, cell, E, H)
    X = rng.integers(0, E, size=(B, T)) if s["one_hot"] else rng.normal(size=(B, T, E))
    errors = gradcheck_piece(*FORWARD[cell], p, (X, *states(rng, cell, B, H)), seed=s["seed"])
    n_state = 1 if cell == "gru" else 2
    expected = set(p) | {f"input[{i + 1}]" for i in range(n_state)} | (set() if s["one_hot"] else {"input[0]"})
    assert set(errors) == expected
    assert max(errors.values()) < TOL, errors


@settings(max_examples=10, deadline=None)
@given(shapes)
def test_stack_gradients_match_finite_differences(s):
    rng = np.random.default_rng(s["seed"])
    cell, B, T, H, E, L = s["cell"], s["B"], s["T"], s["H"], s["E"], s["layers"]
    p = cell_params(rng, cell, E, H, layers=L)
    errors = gradcheck_piece(*STACK[cell], p, (rng.normal(size=(B, T, E)), *states(rng, cell, L, B, H)),
                             seed=s["seed"])
    assert set(p) <= set(errors) and "input[0]" in errors and "input[1]" in errors
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_broken_backward_fails_the_check(cell):
    """Zero what one derivative needs (GRU: hn_t in dr = dan * hn; LSTM: c_{t-1} in df = dc * c_{t-1})."""
    rng = np.random.default_rng(3)
    p = cell_params(rng, cell, 3, 4)
    inputs = (rng.normal(size=(2, 4, 3)), *states(rng, cell, 2, 4))
    forward, backward = FORWARD[cell]
    assert max(gradcheck_piece(forward, backward, p, inputs).values()) < TOL
    key = "HN" if cell == "gru" else "Cs"

    def broken(params, cache, d_outputs):
        return backward(params, dict(cache, **{key: np.zeros_like(cache[key])}), d_outputs)

    bad = gradcheck_piece(forward, broken, p, inputs)
    assert max(bad.values()) > 1e-2, bad


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_the_batched_layer_equals_a_loop_of_plain_steps(cell):
    rng = np.random.default_rng(4)
    B, T, E, H = 3, 6, 2, 5
    p = cell_params(rng, cell, E, H, scale=1.0)
    X = rng.normal(size=(B, T, E))
    state = states(rng, cell, B, H)
    outputs, _ = FORWARD[cell][0](p, (X, *state))
    hs = []
    for t in range(T):
        if cell == "gru":
            state = (C.gru_step(p, X[:, t], *state),)
        else:
            state = C.lstm_step(p, X[:, t], *state)
        hs.append(state[0])
    np.testing.assert_allclose(outputs[0], np.stack(hs, axis=1), rtol=1e-12, atol=1e-14)
    for got, want in zip(outputs[1:], state):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_two_chunks_with_the_state_carried_equal_one_long_sequence(cell):
    """Forward: the states of T1 + T2 steps. Backward: chunk 2's gradient of its initial state, fed into
    chunk 1 as the gradient of its last state, gives the gradients of the whole sequence."""
    rng = np.random.default_rng(5)
    B, T, E, H, L, T1 = 2, 7, 3, 4, 2, 3
    p = cell_params(rng, cell, E, H, layers=L)
    forward, backward = STACK[cell]
    X = rng.normal(size=(B, T, E))
    s0 = states(rng, cell, L, B, H)
    dH = rng.normal(size=(B, T, H))
    out_all, c_all = forward(p, (X, *s0))
    g_all, d_all = backward(p, c_all, (dH, *[None] * len(s0)))
    out1, c1 = forward(p, (X[:, :T1], *s0))
    out2, c2 = forward(p, (X[:, T1:], *out1[1:]))
    np.testing.assert_allclose(np.concatenate([out1[0], out2[0]], axis=1), out_all[0], rtol=1e-12)
    for a, b in zip(out2[1:], out_all[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    g2, d2 = backward(p, c2, (dH[:, T1:], *[None] * len(s0)))
    g1, d1 = backward(p, c1, (dH[:, :T1], *d2[1:]))                   # d2[1:]: dh0 (and dc0) of chunk 2
    for k in p:
        np.testing.assert_allclose(g1[k] + g2[k], g_all[k], rtol=1e-10, atol=1e-13, err_msg=k)
    np.testing.assert_allclose(np.concatenate([d1[0], d2[0]], axis=1), d_all[0], rtol=1e-10, atol=1e-13)
    for a, b in zip(d1[1:], d_all[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("one_hot_rows", [C.ONE_HOT_ROWS, 0])  # the table's gradient by one product, or scattered
def test_ids_equal_dense_one_hot_rows(cell, one_hot_rows, monkeypatch):
    """Integer ids are read as rows of W_xg; the same ids as dense one-hot float rows give the same states and
    gradients (dW_xg = X^T dA), whichever way the ids' table gradient is summed (cells.ONE_HOT_ROWS)."""
    monkeypatch.setattr(C, "ONE_HOT_ROWS", one_hot_rows)
    rng = np.random.default_rng(8)
    B, T, V, H = 3, 4, 5, 3
    p = cell_params(rng, cell, V, H, scale=1.0)
    ids = rng.integers(0, V, size=(B, T))
    dense = np.eye(V)[ids]  # (B, T, V)
    state = states(rng, cell, B, H)
    forward, backward = FORWARD[cell]
    out_ids, cache_ids = forward(p, (ids, *state))
    out_dense, cache_dense = forward(p, (dense, *state))
    dH = rng.normal(size=(B, T, H))
    g_ids, _ = backward(p, cache_ids, (dH, *[None] * len(state)))
    g_dense, _ = backward(p, cache_dense, (dH, *[None] * len(state)))
    for a, b in zip(out_ids, out_dense):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for k in p:
        np.testing.assert_allclose(g_ids[k], g_dense[k], rtol=1e-10, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_float32_weights_compute_in_float32(cell):
    rng = np.random.default_rng(6)
    p = {k: v.astype(np.float32) for k, v in cell_params(rng, cell, 3, 4).items()}
    X = rng.normal(size=(2, 3, 3)).astype(np.float32)
    outputs, cache = FORWARD[cell][0](p, (X, *[None] * (1 if cell == "gru" else 2)))
    grads, d_inputs = FORWARD[cell][1](p, cache, (np.ones_like(outputs[0]), *[None] * (len(outputs) - 1)))
    assert all(o.dtype == np.float32 for o in outputs)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(d.dtype == np.float32 for d in d_inputs)


def test_sigmoid_does_not_overflow_and_is_the_logistic_function():
    a = np.array([-800.0, -3.0, 0.0, 2.0, 800.0])
    with np.errstate(over="raise"):
        s = C.sigmoid(a)
    np.testing.assert_allclose(s[1:4], 1.0 / (1.0 + np.exp(-a[1:4])), rtol=1e-15)
    assert s[0] == 0.0 and s[-1] == 1.0


@settings(max_examples=30, deadline=None)
@given(
    R=st.integers(1, 40),
    Cols=st.integers(1, 300),
    dtype=st.sampled_from([np.float32, np.float64]),
    strided=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_transposed_is_the_transpose_whatever_the_shape(R, Cols, dtype, strided, seed):
    """cells.transposed copies by way of padded rows (a cache trick): the numbers are exactly W.T, C-contiguous."""
    W = np.random.default_rng(seed).normal(size=(R, 2 * Cols if strided else Cols)).astype(dtype)
    if strided:
        W = W[:, ::2]  # a view whose rows are not contiguous
    out = C.transposed(W)
    assert out.flags.c_contiguous and out.dtype == W.dtype
    np.testing.assert_array_equal(out, W.T)


# --- PyTorch at the same weights ------------------------------------------------------------------------


def to_torch_weights(cell, p, L, torch, rng):
    """Our row-vector weights as PyTorch's: W_xg = weight_ih^T, W_hg = weight_hh^T, and the biases split as
    cells.py documents: PyTorch's two biases of a gate (both for LSTM, r and z for GRU) may be any pair with our
    sum b_g, so bias_hh gets random numbers and bias_ih the rest; the GRU's n block of bias_hh is b_hn."""
    H = p["W_hg.0"].shape[0]
    out = {}
    for layer in range(L):
        out[f"weight_ih_l{layer}"] = p[f"W_xg.{layer}"].T
        out[f"weight_hh_l{layer}"] = p[f"W_hg.{layer}"].T
        bias_hh = rng.normal(size=p[f"b_g.{layer}"].shape)
        bias_ih = p[f"b_g.{layer}"] - bias_hh
        if cell == "gru":
            bias_hh[2 * H:] = p[f"b_hn.{layer}"]                        # inside the reset product
            bias_ih[2 * H:] = p[f"b_g.{layer}"][2 * H:]                 # an: the input bias alone
        out[f"bias_ih_l{layer}"], out[f"bias_hh_l{layer}"] = bias_ih, bias_hh
    return {k: torch.tensor(np.ascontiguousarray(v), requires_grad=True) for k, v in out.items()}


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_forward_and_gradients_equal_pytorch(cell):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    B, T, E, H, L = 3, 5, 4, 6, 2
    p = cell_params(rng, cell, E, H, layers=L, scale=1.0)
    X = rng.normal(size=(B, T, E))
    s0 = states(rng, cell, L, B, H)
    dH = rng.normal(size=(B, T, H))
    d_last = states(rng, cell, L, B, H)                                # gradients reaching h_T (and c_T)

    forward, backward = STACK[cell]
    outputs, cache = forward(p, (X, *s0))
    grads, (dX, *d_s0) = backward(p, cache, (dH, *d_last))

    module = (torch.nn.GRU if cell == "gru" else torch.nn.LSTM)(E, H, num_layers=L, batch_first=True).double()
    weights = to_torch_weights(cell, p, L, torch, rng)
    Xt = torch.tensor(X, requires_grad=True)
    st0 = [torch.tensor(s, requires_grad=True) for s in s0]
    out, last = torch.func.functional_call(module, weights, (Xt, st0[0] if cell == "gru" else tuple(st0)))
    last = (last,) if cell == "gru" else last
    loss = (out * torch.tensor(dH)).sum() + sum((a * torch.tensor(d)).sum() for a, d in zip(last, d_last))
    loss.backward()

    np.testing.assert_allclose(outputs[0], out.detach().numpy(), rtol=0, atol=1e-6)
    for ours, theirs in zip(outputs[1:], last):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), rtol=0, atol=1e-6)
    for ours, theirs in zip(d_s0, st0):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=0, atol=1e-6)
    for layer in range(L):
        w = {k: v.grad.numpy() for k, v in weights.items()}
        np.testing.assert_allclose(grads[f"W_xg.{layer}"], w[f"weight_ih_l{layer}"].T, atol=1e-6)
        np.testing.assert_allclose(grads[f"W_hg.{layer}"], w[f"weight_hh_l{layer}"].T, atol=1e-6)
        np.testing.assert_allclose(grads[f"b_g.{layer}"], w[f"bias_ih_l{layer}"], atol=1e-6)
        if cell == "gru":                                              # b_hn is bias_hh's n block
            np.testing.assert_allclose(grads[f"b_hn.{layer}"], w[f"bias_hh_l{layer}"][2 * H:], atol=1e-6)
            np.testing.assert_allclose(grads[f"b_g.{layer}"][:2 * H], w[f"bias_hh_l{layer}"][:2 * H], atol=1e-6)
        else:                                                          # one bias = the sum: same gradient
            np.testing.assert_allclose(grads[f"b_g.{layer}"], w[f"bias_hh_l{layer}"], atol=1e-6)
