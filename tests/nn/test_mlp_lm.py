"""Bengio et al. 2003's MLP language model (scratchgen/nn/mlp_lm.py): gradients against finite differences
(float64), a broken backward fails, the window of n tokens, and a worked example."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.nn import gradcheck, gradcheck_piece
from scratchgen.nn import layers as L
from scratchgen.nn import mlp_lm as M

TOL = 1e-6


def mlp_params(rng, V, E, n, H):
    return {"C": rng.normal(size=(V, E)), "W_h": rng.normal(size=(n * E, H)) * 0.5, "b_h": rng.normal(size=H) * 0.5,
            "W_y": rng.normal(size=(H, V)), "b_y": rng.normal(size=V)}


shapes = st.fixed_dictionaries({
    "B": st.integers(1, 3), "T": st.integers(1, 5), "V": st.integers(2, 6), "E": st.integers(1, 3),
    "n": st.integers(1, 4), "H": st.integers(1, 5), "seed": st.integers(0, 10_000),
})


@settings(max_examples=15, deadline=None)
@given(shapes)
def test_gradients_match_finite_differences(s):
    """The logits of every context of a batch of texts; repeated tokens in a context share their row of C."""
    rng = np.random.default_rng(s["seed"])
    p = mlp_params(rng, s["V"], s["E"], s["n"], s["H"])
    contexts = M.context_windows(rng.integers(0, s["V"], size=(s["B"], s["T"])), s["n"], pad=0)
    errors = gradcheck_piece(M.mlp_lm_forward, M.mlp_lm_backward, p, contexts, seed=s["seed"])
    assert set(errors) == set(p)
    assert max(errors.values()) < TOL, errors


@settings(max_examples=8, deadline=None)
@given(shapes)
def test_with_the_cross_entropy_of_layers_the_loss_gradient_is_right(s):
    rng = np.random.default_rng(s["seed"])
    p = mlp_params(rng, s["V"], s["E"], s["n"], s["H"])
    ids = rng.integers(0, s["V"], size=(s["B"], s["T"] + 1))
    contexts, targets = M.context_windows(ids[:, :-1], s["n"], pad=0), ids[:, 1:]

    def loss_and_grads(q):
        Y, cache = M.mlp_lm_forward(q, contexts)
        loss, c_ce = L.softmax_ce_forward({}, (Y, targets, None))
        _, (dY, _, _) = L.softmax_ce_backward({}, c_ce, 1.0)
        return loss, M.mlp_lm_backward(q, cache, dY)[0]

    assert max(gradcheck(loss_and_grads, p).values()) < TOL


def test_a_broken_backward_fails_the_check():
    """Forget the tanh derivative of eq. (M5)."""
    rng = np.random.default_rng(2)
    p = mlp_params(rng, 5, 2, 3, 4)
    contexts = M.context_windows(rng.integers(0, 5, size=(2, 4)), 3, pad=0)
    assert max(gradcheck_piece(M.mlp_lm_forward, M.mlp_lm_backward, p, contexts).values()) < TOL

    def broken(params, cache, dY):
        return M.mlp_lm_backward(params, dict(cache, H=np.zeros_like(cache["H"])), dY)

    assert max(gradcheck_piece(M.mlp_lm_forward, broken, p, contexts).values()) > 1e-2


def test_context_windows_table():
    # texts 5 6 7 8 and 1 2 3 4, n = 3, pad 0: position t sees tokens t-3, t-2, t-1
    ids = np.array([[5, 6, 7, 8], [1, 2, 3, 4]])
    want = np.array([[[0, 0, 0], [0, 0, 5], [0, 5, 6], [5, 6, 7]],
                     [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3]]])
    assert np.array_equal(M.context_windows(ids, 3, pad=0), want)


def test_only_the_last_n_tokens_matter():
    """The model is an order-(n+1) model: the token n + 1 back never changes the prediction."""
    rng = np.random.default_rng(3)
    n, V = 2, 6
    p = mlp_params(rng, V, 3, n, 4)
    ids = rng.integers(0, V, size=(1, 6))
    changed = ids.copy()
    changed[0, 2] = (ids[0, 2] + 1) % V                               # token 2: in the windows of 3 and 4
    Y1, _ = M.mlp_lm_forward(p, M.context_windows(ids, n, pad=0))
    Y2, _ = M.mlp_lm_forward(p, M.context_windows(changed, n, pad=0))
    assert np.array_equal(Y1[0, [0, 1, 2, 5]], Y2[0, [0, 1, 2, 5]])
    assert not np.allclose(Y1[0, 3], Y2[0, 3]) and not np.allclose(Y1[0, 4], Y2[0, 4])


def test_worked_example_by_hand():
    # V 2, E 1, n 1, H 1: C = [[1], [2]], W_h = [[0.5]], b_h = 0, W_y = [[1, -1]], b_y = 0.
    # context [1]: x = 2, h = tanh(1) = 0.761594, y = (0.761594, -0.761594)
    p = {"C": np.array([[1.0], [2.0]]), "W_h": np.array([[0.5]]), "b_h": np.zeros(1),
         "W_y": np.array([[1.0, -1.0]]), "b_y": np.zeros(2)}
    Y, _ = M.mlp_lm_forward(p, np.array([[1]]))
    np.testing.assert_allclose(Y, [[0.761594, -0.761594]], atol=1e-6)
