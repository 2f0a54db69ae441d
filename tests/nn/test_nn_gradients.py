"""Every hand-written gradient of the RNN against central finite differences (float64), and worked examples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.nn import gradcheck, gradcheck_piece, relative_error
from scratchgen.nn import layers as L
from scratchgen.nn.optim import init_params

TOL = 1e-6


def random_params(rng, V, H, layers, E):
    p = init_params(V, H, layers, E, rng)
    # perturb so no bias is exactly zero and no weight is special
    return {k: v + rng.normal(scale=0.2, size=v.shape) for k, v in p.items()}


shapes = st.fixed_dictionaries({
    "B": st.integers(1, 3), "T": st.integers(1, 5), "H": st.integers(1, 5), "V": st.integers(3, 6),
    "E": st.one_of(st.none(), st.integers(1, 4)), "layers": st.integers(1, 3), "seed": st.integers(0, 10_000),
    "dropout": st.sampled_from([None, 0.3]),
})


@settings(max_examples=12, deadline=None)
@given(shapes)
def test_whole_network_gradients_match_finite_differences(s):
    """All parameters, the carried-in state h0, a padding mask, one-hot or embedded inputs, 1-3 layers."""
    rng = np.random.default_rng(s["seed"])
    B, T, V = s["B"], s["T"], s["V"]
    params = random_params(rng, V, s["H"], s["layers"], s["E"])
    ids = rng.integers(0, V, size=(B, T))
    targets = rng.integers(0, V, size=(B, T))
    mask = rng.random((B, T)) < 0.7
    mask[0, 0] = True                                            # at least one counted target
    h0 = rng.normal(scale=0.5, size=(s["layers"], B, s["H"]))
    inputs = (ids, targets, mask, h0)
    if s["dropout"]:                                             # a fixed dropout mask, eq. (14)
        inputs += ((rng.random((B, T, s["H"])) >= s["dropout"], s["dropout"]),)
    errors = gradcheck_piece(L.network_forward, L.network_backward, params, inputs, seed=s["seed"])
    assert set(errors) == set(params) | {"input[3]"}             # every parameter and h0 checked
    assert max(errors.values()) < TOL, errors


@settings(max_examples=10, deadline=None)
@given(shapes)
def test_each_piece_gradients_match_finite_differences(s):
    rng = np.random.default_rng(s["seed"])
    B, T, H, V = s["B"], s["T"], s["H"], s["V"]
    E = s["E"] or 2
    checks = {
        "embedding": gradcheck_piece(L.embedding_forward, L.embedding_backward,
                                     {"C": rng.normal(size=(V, E))}, rng.integers(0, V, size=(B, T))),
        # weights at half scale keep tanh out of saturation, where a finite difference measures only rounding
        "rnn": gradcheck_piece(L.rnn_forward, L.rnn_backward,
                               {"W_xh": rng.normal(size=(E, H)) * 0.5, "W_hh": rng.normal(size=(H, H)) * 0.5,
                                "b_h": rng.normal(size=H)},
                               (rng.normal(size=(B, T, E)), rng.normal(size=(B, H)))),
        "rnn-one-hot": gradcheck_piece(L.rnn_forward, L.rnn_backward,
                                       {"W_xh": rng.normal(size=(V, H)) * 0.5, "W_hh": rng.normal(size=(H, H)) * 0.5,
                                        "b_h": rng.normal(size=H)},
                                       (rng.integers(0, V, size=(B, T)), rng.normal(size=(B, H)))),
        "stack": gradcheck_piece(L.stack_forward, L.stack_backward,
                                 {k: v for k, v in random_params(rng, V, H, s["layers"], E).items()
                                  if k[:4] in ("W_xh", "W_hh", "b_h.")},
                                 (rng.normal(size=(B, T, E)), rng.normal(size=(s["layers"], B, H)))),
        "linear": gradcheck_piece(L.linear_forward, L.linear_backward,
                                  {"W_hy": rng.normal(size=(H, V)), "b_y": rng.normal(size=V)},
                                  rng.normal(size=(B, T, H))),
        "dropout": gradcheck_piece(L.dropout_forward, L.dropout_backward, {},
                                   (rng.normal(size=(B, T, H)), rng.random((B, T, H)) > 0.5, 0.5)),
        "softmax-ce": gradcheck_piece(L.softmax_ce_forward, L.softmax_ce_backward, {},
                                      (rng.normal(size=(B, T, V)), rng.integers(0, V, size=(B, T)),
                                       rng.random((B, T)) < 0.6)),
    }
    for name, errors in checks.items():
        assert errors and max(errors.values()) < TOL, (name, errors)


def test_a_deliberately_wrong_gradient_fails_the_check(monkeypatch):
    """Forget the tanh derivative (use da = dh instead of dh * (1 - h^2)): the check must catch it."""
    rng = np.random.default_rng(0)
    p = {"W_xh": rng.normal(size=(3, 4)), "W_hh": rng.normal(size=(4, 4)), "b_h": rng.normal(size=4)}
    inputs = (rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 4)))
    good = gradcheck_piece(L.rnn_forward, L.rnn_backward, p, inputs)
    assert max(good.values()) < TOL

    def wrong_backward(params, cache, d_outputs):
        cache = dict(cache, Hs=np.zeros_like(cache["Hs"]))       # 1 - 0^2 = 1: tanh' dropped
        return L.rnn_backward(params, cache, d_outputs)

    bad = gradcheck_piece(L.rnn_forward, wrong_backward, p, inputs)
    assert min(bad[k] for k in ("W_xh", "b_h")) > 1e-2, bad


def test_wrong_sign_and_missing_accumulation_fail():
    # f(w) = sum(w[i])^2 for a repeated index: the gradient must accumulate both uses.
    idx = np.array([0, 0, 1])

    def right(p):
        return float(np.sum(p["w"][idx]) ** 2), {"w": 2 * np.sum(p["w"][idx]) * np.bincount(idx, minlength=2)}

    def no_accumulation(p):
        g = np.zeros(2)
        g[idx] = 2 * np.sum(p["w"][idx])                         # repeated index written once, not added
        return float(np.sum(p["w"][idx]) ** 2), {"w": g}

    w = {"w": np.array([0.3, -1.1])}
    assert gradcheck(right, w)["w"] < TOL
    assert gradcheck(no_accumulation, w)["w"] > 0.1


def test_relative_error_table():
    # |a - b| / (|a| + |b|): (1, 1) -> 0; (1, -1) -> 2/2 = 1; (3, 1) -> 2/4 = 0.5
    assert relative_error(np.array([1.0]), np.array([1.0])) == 0.0
    assert relative_error(np.array([1.0]), np.array([-1.0])) == 1.0
    assert relative_error(np.array([3.0]), np.array([1.0])) == 0.5


def test_truncated_bptt_chunks_compose_into_full_bptt():
    """Two chunks with the state carried give the loss of one long sequence; feeding chunk 2's dh0
    back into chunk 1 as dh_T gives the full (untruncated) gradient."""
    rng = np.random.default_rng(5)
    V, H, B, T = 5, 4, 2, 6
    p = random_params(rng, V, H, 2, 3)
    ids = rng.integers(0, V, size=(B, T))
    targets = rng.integers(0, V, size=(B, T))
    h0 = np.zeros((2, B, H))
    (loss_all, hT_all), c_all = L.network_forward(p, (ids, targets, None, h0))
    g_all, _ = L.network_backward(p, c_all)
    (l1, h1), c1 = L.network_forward(p, (ids[:, :2], targets[:, :2], None, h0))
    (l2, h2), c2 = L.network_forward(p, (ids[:, 2:], targets[:, 2:], None, h1))
    # the mean over 6 steps = (2 l1 + 4 l2) / 6
    assert np.isclose(loss_all, (2 * l1 + 4 * l2) / 6, rtol=1e-12)
    assert np.allclose(hT_all, h2, rtol=1e-12)
    g2, (_, _, _, dh1) = L.network_backward(p, c2, (4 / 6, None))
    g1, _ = L.network_backward(p, c1, (2 / 6, dh1))
    for k in p:
        assert np.allclose(g_all[k], g1[k] + g2[k], rtol=1e-10, atol=1e-14), k


def test_masked_targets_change_nothing():
    rng = np.random.default_rng(2)
    p = random_params(rng, 6, 3, 1, None)
    ids = rng.integers(0, 6, size=(2, 4))
    targets = rng.integers(0, 6, size=(2, 4))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=bool)
    other = targets.copy()
    other[~mask] = (other[~mask] + 1) % 6
    h0 = np.zeros((1, 2, 3))
    (a, _), ca = L.network_forward(p, (ids, targets, mask, h0))
    (b, _), cb = L.network_forward(p, (ids, other, mask, h0))
    assert a == b
    ga, _ = L.network_backward(p, ca)
    gb, _ = L.network_backward(p, cb)
    assert all(np.array_equal(ga[k], gb[k]) for k in p)


def test_one_step_by_hand():
    """One layer, H = 1, one-hot inputs, V = 2, one step: every number by hand.

    W_xh = [[0.5], [-1]], W_hh = [[2]], b_h = [0.1], h0 = 0.2, input id 0:
    a = 0.5 + 0.2 * 2 + 0.1 = 1.0, h = tanh(1) = 0.761594...
    W_hy = [[1, -1]], b_y = 0: y = [h, -h]; target 1: loss = -log softmax(y)[1] = log(1 + e^{2h})
    dy = p - onehot(1) = [s, -s] with s = e^{2h}/(1 + e^{2h}) = sigmoid(2h)
    dh = dy W_hy^T = 2 s, da = dh (1 - h^2), dW_hh = h0 da, db_h = da, dW_xh[0] = da, dh0 = da * 2
    """
    p = {"W_xh.0": np.array([[0.5], [-1.0]]), "W_hh.0": np.array([[2.0]]), "b_h.0": np.array([0.1]),
         "W_hy": np.array([[1.0, -1.0]]), "b_y": np.zeros(2)}
    (loss, hT), cache = L.network_forward(p, (np.array([[0]]), np.array([[1]]), None, np.array([[[0.2]]])))
    h = np.tanh(1.0)
    assert np.isclose(hT[0, 0, 0], h) and np.isclose(loss, np.log(1 + np.exp(2 * h)))
    g, (_, _, _, dh0) = L.network_backward(p, cache)
    s = 1 / (1 + np.exp(-2 * h))
    da = 2 * s * (1 - h * h)
    assert np.allclose(g["W_hy"], [[h * s, -h * s]])
    assert np.allclose(g["W_hh.0"], [[0.2 * da]]) and np.allclose(g["b_h.0"], [da])
    assert np.allclose(g["W_xh.0"], [[da], [0.0]]) and np.allclose(dh0, [[[2 * da]]])


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(3)
    p = random_params(rng, 7, 8, 2, 5)
    ids = rng.integers(0, 7, size=(3, 9))
    tg = rng.integers(0, 7, size=(3, 9))
    h0 = np.zeros((2, 3, 8))
    (l64, _), c64 = L.network_forward(p, (ids, tg, None, h0))
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    (l32, _), c32 = L.network_forward(p32, (ids, tg, None, h0.astype(np.float32)))
    g64, _ = L.network_backward(p, c64)
    g32, _ = L.network_backward(p32, c32)
    assert abs(l32 - l64) < 1e-5
    for k in p:
        assert g32[k].dtype == np.float32
        assert np.allclose(g32[k], g64[k], atol=1e-5), k


def test_pytorch_reference_same_loss_and_gradients():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    V, E, H, B, T, layers = 7, 5, 6, 3, 8, 2
    p = random_params(rng, V, H, layers, E)
    ids = rng.integers(0, V, size=(B, T))
    targets = rng.integers(0, V, size=(B, T))
    mask = rng.random((B, T)) < 0.8
    h0 = rng.normal(scale=0.5, size=(layers, B, H))
    (loss, _), cache = L.network_forward(p, (ids, targets, mask, h0))
    grads, (_, _, _, dh0) = L.network_backward(p, cache)

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
    th0 = torch.tensor(h0, requires_grad=True)
    x = t["C"][torch.tensor(ids)]                                 # (B, T, E)
    for layer in range(layers):
        h = th0[layer]
        outs = []
        for step in range(T):
            h = torch.tanh(x[:, step] @ t[f"W_xh.{layer}"] + h @ t[f"W_hh.{layer}"] + t[f"b_h.{layer}"])
            outs.append(h)
        x = torch.stack(outs, dim=1)
    logits = x @ t["W_hy"] + t["b_y"]
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.tensor(targets).reshape(-1),
                                            reduction="none")
    m = torch.tensor(mask.reshape(-1), dtype=torch.float64)
    tloss = (nll * m).sum() / m.sum()
    tloss.backward()
    tloss = tloss.detach()
    assert abs(tloss.item() - loss) < 1e-10
    for k in p:
        assert np.allclose(grads[k], t[k].grad.numpy(), rtol=0, atol=1e-10), k
    assert np.allclose(dh0, th0.grad.numpy(), rtol=0, atol=1e-10)


def test_pytorch_nn_rnn_same_forward():
    """Our layer equals torch.nn.RNN (tanh) given the same weights (theirs are column-vector W^T)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    E, H, B, T = 3, 5, 2, 7
    p = {"W_xh": rng.normal(size=(E, H)), "W_hh": rng.normal(size=(H, H)) * 0.5, "b_h": rng.normal(size=H)}
    X = rng.normal(size=(B, T, E))
    h0 = rng.normal(size=(B, H))
    (Hs, hT), _ = L.rnn_forward(p, (X, h0))
    rnn = torch.nn.RNN(E, H, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(p["W_xh"].T))
        rnn.weight_hh_l0.copy_(torch.tensor(p["W_hh"].T))
        rnn.bias_ih_l0.copy_(torch.tensor(p["b_h"]))
        rnn.bias_hh_l0.zero_()
        out, hn = rnn(torch.tensor(X), torch.tensor(h0)[None])
    assert np.allclose(Hs, out.numpy(), rtol=0, atol=1e-12)
    assert np.allclose(hT, hn.numpy()[0], rtol=0, atol=1e-12)


def test_rnn_forward_takes_none_as_a_zero_initial_state():
    """A learner may leave h0 out: it means zeros, never a silent NaN."""
    rng = np.random.default_rng(0)
    p = {"W_xh": rng.normal(size=(3, 4)), "W_hh": rng.normal(size=(4, 4)), "b_h": rng.normal(size=4)}
    X = rng.normal(size=(2, 5, 3))
    (H_none, _), _ = L.rnn_forward(p, (X, None))
    (H_zero, _), _ = L.rnn_forward(p, (X, np.zeros((2, 4))))
    np.testing.assert_array_equal(H_none, H_zero)
