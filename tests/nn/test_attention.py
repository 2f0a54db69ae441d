"""Transformer pieces (scratchgen/nn/attention.py): gradients against finite differences (float64), causality,
the key/value cache against full recomputation, and PyTorch's LayerNorm, GELU and MultiheadAttention."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.errors import ScratchgenError
from scratchgen.nn import attention as T
from scratchgen.nn import gradcheck_piece

TOL = 1e-6


def ln_params(rng, D):
    return {"g": 1.0 + 0.3 * rng.normal(size=D), "b": 0.3 * rng.normal(size=D)}


def attn_params(rng, D, scale=0.5):
    return {"W_qkv": rng.normal(size=(D, 3 * D)) * scale, "b_qkv": rng.normal(size=3 * D) * 0.2,
            "W_o": rng.normal(size=(D, D)) * scale, "b_o": rng.normal(size=D) * 0.2}


def mlp_params(rng, D, F):
    return {"W_fc": rng.normal(size=(D, F)) * 0.5, "b_fc": rng.normal(size=F) * 0.2,
            "W_proj": rng.normal(size=(F, D)) * 0.5, "b_proj": rng.normal(size=D) * 0.2}


def block_params(rng, D, F):
    p = {}
    for prefix, part in (("ln1.", ln_params(rng, D)), ("attn.", attn_params(rng, D)),
                         ("ln2.", ln_params(rng, D)), ("mlp.", mlp_params(rng, D, F))):
        p.update({prefix + k: v for k, v in part.items()})
    return p


def network_params(rng, V, D, F, layers, t_max, tied):
    p = {"C": rng.normal(size=(V, D)) * 0.5, "P_pos": rng.normal(size=(t_max, D)) * 0.5, "b_out": rng.normal(size=V)}
    for layer in range(layers):
        p.update({f"h.{layer}.{k}": v for k, v in block_params(rng, D, F).items()})
    p.update({"lnf." + k: v for k, v in ln_params(rng, D).items()})
    if not tied:
        p["W_out"] = rng.normal(size=(D, V)) * 0.5
    return p


shapes = st.fixed_dictionaries({
    "B": st.integers(1, 2), "T": st.integers(1, 5), "heads": st.integers(1, 3), "d": st.integers(1, 3),
    "V": st.integers(2, 5), "layers": st.integers(1, 2), "tied": st.booleans(), "seed": st.integers(0, 10_000),
})


@settings(max_examples=12, deadline=None)
@given(shapes)
def test_each_piece_gradients_match_finite_differences(s):
    rng = np.random.default_rng(s["seed"])
    B, Tn, A = s["B"], s["T"], s["heads"]
    D = A * s["d"]
    # LayerNorm at width >= 3: at width 2 a normalised row is always (+-1, -+1) (its input gradient is ~0, all
    # rounding) or, when the two entries nearly tie, a step (finite differences straddle it)
    Dn = A * (s["d"] + 2)
    X = rng.normal(size=(B, Tn, D))
    t0 = int(rng.integers(0, 3))
    checks = {
        "layernorm": gradcheck_piece(T.layernorm_forward, T.layernorm_backward, ln_params(rng, Dn),
                                     rng.normal(size=(B, Tn, Dn))),
        "gelu": gradcheck_piece(T.gelu_forward, T.gelu_backward, {}, X * 2),
        "dense": gradcheck_piece(T.dense_forward, T.dense_backward,
                                 {"W": rng.normal(size=(D, 3)), "b": rng.normal(size=3)}, X),
        "attention": gradcheck_piece(T.attention_forward, T.attention_backward, attn_params(rng, D), (X, A)),
        "mlp": gradcheck_piece(T.mlp_forward, T.mlp_backward, mlp_params(rng, D, 2 * D), X),
        # the block is the pieces above composed (eq. (A9)): 40 entries of each array, drawn by the seed, check
        # the composition (a missing residual or a swapped LayerNorm moves every entry) in a fifth of the time
        "block": gradcheck_piece(T.block_forward, T.block_backward, block_params(rng, Dn, 2 * Dn),
                                 (rng.normal(size=(B, Tn, Dn)), A), max_entries=40),
        "embed": gradcheck_piece(T.embed_forward, T.embed_backward,
                                 {"C": rng.normal(size=(s["V"], D)), "P_pos": rng.normal(size=(Tn + 3, D))},
                                 (rng.integers(0, s["V"], size=(B, Tn)), t0)),
    }
    for name, errors in checks.items():
        assert errors and max(errors.values()) < TOL, (name, errors)
    assert {"input[0]"} <= set(checks["attention"]) and {"input[0]"} <= set(checks["block"])


@settings(max_examples=8, deadline=None)
@given(shapes)
def test_whole_transformer_gradients_match_finite_differences(s):
    """Every parameter of L blocks, embeddings, final LayerNorm and output map, tied (C used twice) or not."""
    rng = np.random.default_rng(s["seed"])
    D = s["heads"] * (s["d"] + 2)                                     # >= 3: see the LayerNorm check above
    p = network_params(rng, s["V"], D, 2 * D, s["layers"], s["T"] + 1, s["tied"])
    ids = rng.integers(0, s["V"], size=(s["B"], s["T"]))
    # eps 1e-6, not the default 1e-5: through two LayerNorms of 3 features the curvature is large enough for
    # the O(eps^2) truncation error of eq. (1) of gradcheck to pass 1e-6 (seen: 1.5e-6 at eps 1e-5, 1.5e-8 at 1e-6)
    errors = gradcheck_piece(T.transformer_forward, T.transformer_backward, p, (ids, s["heads"]), seed=s["seed"],
                             max_entries=12, eps=1e-6)
    assert set(errors) == set(p)
    assert max(errors.values()) < TOL, errors


BREAKS = {
    # attention without the 1/sqrt(d) in eq. (A18)
    "attention": (T.attention_forward, T.attention_backward, "scale", lambda v: 1.0),
    # LayerNorm forgetting to divide by sigma in eq. (A13)
    "layernorm": (T.layernorm_forward, T.layernorm_backward, "inv_sigma", np.ones_like),
    # GELU's derivative (computed in the forward, eq. (A14'')) taken as 1/2 everywhere
    "gelu": (T.gelu_forward, T.gelu_backward, "dgelu", lambda d: np.full_like(d, 0.5)),
}


@pytest.mark.parametrize("piece", sorted(BREAKS))
def test_a_broken_backward_fails_the_check(piece):
    forward, backward, key, damage = BREAKS[piece]
    rng = np.random.default_rng(1)
    D, A = 6, 2
    X = rng.normal(size=(2, 4, D)) * 2
    params = {"attention": attn_params(rng, D), "layernorm": ln_params(rng, D), "gelu": {}}[piece]
    inputs = (X, A) if piece == "attention" else X
    assert max(gradcheck_piece(forward, backward, params, inputs).values()) < TOL

    def broken(p, cache, d_out):
        return backward(p, dict(cache, **{key: damage(cache[key])}), d_out)

    assert max(gradcheck_piece(forward, broken, params, inputs).values()) > 1e-2


def test_causal_softmax_rows_sum_to_one_and_never_look_ahead():
    P = T.causal_softmax(np.random.default_rng(2).normal(size=(3, 5, 5)) * 10)
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(np.triu(P, k=1) == 0.0)


@settings(max_examples=10, deadline=None)
@given(shapes, st.integers(0, 4))
def test_changing_token_t_never_changes_the_outputs_before_t(s, t):
    rng = np.random.default_rng(s["seed"])
    Tn = s["T"]
    t = min(t, Tn - 1)
    D = s["heads"] * (s["d"] + 2)                                     # >= 3: see the LayerNorm check above
    p = network_params(rng, s["V"] + 1, D, 2 * D, s["layers"], Tn, s["tied"])
    ids = rng.integers(0, s["V"], size=(s["B"], Tn))
    changed = ids.copy()
    changed[:, t] = s["V"]                                            # a token no row held there
    before, _ = T.transformer_forward(p, (ids, s["heads"]))
    after, _ = T.transformer_forward(p, (changed, s["heads"]))
    assert np.array_equal(before[:, :t], after[:, :t])                # the past: bit for bit the same
    assert not np.allclose(before[:, t], after[:, t])                 # the position itself does change


@pytest.mark.parametrize("tied", [False, True])
def test_the_key_value_cache_equals_full_recomputation(tied):
    rng = np.random.default_rng(3)
    V, D, A, L, Tn, B = 7, 8, 2, 2, 9, 3
    p = network_params(rng, V, D, 4 * D, L, Tn, tied)
    ids = rng.integers(0, V, size=(B, Tn))
    full, _ = T.transformer_forward(p, (ids, A))                       # (B, T, V)
    caches = [T.kv_cache(B, A, D, Tn) for _ in range(L)]
    for t in range(Tn):
        step = T.transformer_step(p, ids[:, t], caches)               # (B, V)
        np.testing.assert_allclose(step, full[:, t], rtol=1e-10, atol=1e-12)
    assert caches[0]["n"] == Tn
    with pytest.raises(ScratchgenError, match="--context"):
        T.transformer_step(p, ids[:, 0], caches)                       # one position too many


def test_a_position_past_the_context_is_refused_in_one_line():
    p = {"C": np.zeros((3, 2)), "P_pos": np.zeros((4, 2))}
    with pytest.raises(ScratchgenError, match=r"position 4 .* context of 4 positions \(--context\)"):
        T.embed_forward(p, (np.zeros((1, 3), dtype=int), 2))


# --- PyTorch at the same weights ------------------------------------------------------------------------


def test_layernorm_and_gelu_equal_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    D = 5
    p = ln_params(rng, D)
    X = rng.normal(size=(2, 3, D)) * 3 + 1
    dY = rng.normal(size=X.shape)
    Y, cache = T.layernorm_forward(p, X)
    grads, dX = T.layernorm_backward(p, cache, dY)
    ln = torch.nn.LayerNorm(D).double()
    with torch.no_grad():
        ln.weight.copy_(torch.tensor(p["g"]))
        ln.bias.copy_(torch.tensor(p["b"]))
    Xt = torch.tensor(X, requires_grad=True)
    Yt = ln(Xt)
    (Yt * torch.tensor(dY)).sum().backward()
    np.testing.assert_allclose(Y, Yt.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(grads["g"], ln.weight.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(grads["b"], ln.bias.grad.numpy(), atol=1e-6)

    G, cache = T.gelu_forward({}, X)
    _, dG = T.gelu_backward({}, cache, dY)
    Xt = torch.tensor(X, requires_grad=True)
    Gt = torch.nn.functional.gelu(Xt, approximate="tanh")
    (Gt * torch.tensor(dY)).sum().backward()
    np.testing.assert_allclose(G, Gt.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(dG, Xt.grad.numpy(), atol=1e-6)


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_causal_attention_equals_pytorch_multihead_attention(heads):
    """nn.MultiheadAttention with a causal mask: in_proj_weight = W_qkv^T (q, k, v rows), out_proj = W_o^T."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    B, Tn, D = 3, 6, 8
    p = attn_params(rng, D, scale=1.0)
    X = rng.normal(size=(B, Tn, D))
    dY = rng.normal(size=X.shape)
    Y, cache = T.attention_forward(p, (X, heads))
    grads, (dX, _) = T.attention_backward(p, cache, dY)

    mha = torch.nn.MultiheadAttention(D, heads, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(p["W_qkv"].T))
        mha.in_proj_bias.copy_(torch.tensor(p["b_qkv"]))
        mha.out_proj.weight.copy_(torch.tensor(p["W_o"].T))
        mha.out_proj.bias.copy_(torch.tensor(p["b_o"]))
    Xt = torch.tensor(X, requires_grad=True)
    mask = torch.triu(torch.ones(Tn, Tn, dtype=torch.bool), diagonal=1)  # True: may not attend (s > t)
    Yt, _ = mha(Xt, Xt, Xt, attn_mask=mask, need_weights=False)
    (Yt * torch.tensor(dY)).sum().backward()
    np.testing.assert_allclose(Y, Yt.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(grads["W_qkv"], mha.in_proj_weight.grad.numpy().T, atol=1e-6)
    np.testing.assert_allclose(grads["b_qkv"], mha.in_proj_bias.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(grads["W_o"], mha.out_proj.weight.grad.numpy().T, atol=1e-6)
    np.testing.assert_allclose(grads["b_o"], mha.out_proj.bias.grad.numpy(), atol=1e-6)


# --- the blocked fast path equals the plain one ------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 3), st.integers(1, 4), st.integers(0, 10_000))
def test_blocks_of_queries_batch_and_rows_change_nothing_but_rounding(B, Tn, heads, query_block, seed):
    """Attention by blocks of query rows (_query_blocks) and of the batch (_batch_chunks), GELU by blocks of rows
    (_row_chunks), the MLP by blocks of rows (_mlp_blocks), the whole block with its residuals and LayerNorms:
    forced down to a few rows here, they give what one block over everything gives, in float64."""
    from scratchgen.nn import attention

    rng = np.random.default_rng(seed)
    D = heads * 2
    p = attn_params(rng, D)
    pb = block_params(rng, D, 3)
    pm = {k[len("mlp.") :]: v for k, v in pb.items() if k.startswith("mlp.")}
    X, dY = rng.normal(size=(B, Tn, D)), rng.normal(size=(B, Tn, D))
    H, dH = rng.normal(size=(B, Tn, 3)) * 2, rng.normal(size=(B, Tn, 3))

    def run():
        Y, cache = T.attention_forward(p, (X, heads))
        grads, (dX, _) = T.attention_backward(p, cache, dY)
        G, c_gelu = T.gelu_forward({}, H)
        Ym, c_mlp = T.mlp_forward(pm, X)
        g_mlp, dXm = T.mlp_backward(pm, c_mlp, dY)
        Yb, c_block = T.block_forward(pb, (X, heads))
        g_block, (dXb, _) = T.block_backward(pb, c_block, dY)
        return [Y, T.attention_weights(cache), dX, G, T.gelu_backward({}, c_gelu, dH)[1], *grads.values(),
                Ym, dXm, *g_mlp.values(), Yb, dXb, *g_block.values()]  # fmt: skip

    whole = run()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(attention, "QUERY_BLOCK", query_block)
        mp.setattr(attention, "CHUNK", 3)  # a block of GELU's rows is one row
        mp.setattr(attention, "SCORES_CHUNK", 3)  # a block of the batch is one row
        mp.setattr(attention, "MLP_BLOCK", 3)  # a block of the MLP's rows (F = 3) is one row
        assert T._mlp_blocks(2, 3) == [(0, 1), (1, 2)]
        blocked = run()
    assert T._query_blocks(Tn) == [(0, Tn)] and len(whole) == len(blocked)  # the default: one block at T <= 64
    for a, b in zip(whole, blocked):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    assert np.all(np.triu(blocked[1], k=1) == 0.0)                      # P: no weight on the future in any block


def _unfolded_block(p, X, heads, dY):
    """eq. (A9) and (A20) from the pieces as written, LayerNorm's eq. (A2) apart from the map after it."""
    sub = {name: {k.split(".", 1)[1]: v for k, v in p.items() if k.startswith(name + ".")}
           for name in ("ln1", "attn", "ln2", "mlp")}  # fmt: skip
    N1, c1 = T.layernorm_forward(sub["ln1"], X)
    Y1, ca = T.attention_forward(sub["attn"], (N1, heads))
    X1 = X + Y1
    N2, c2 = T.layernorm_forward(sub["ln2"], X1)
    Y2, cm = T.mlp_forward(sub["mlp"], N2)
    g_mlp, dN2 = T.mlp_backward(sub["mlp"], cm, dY)
    g_ln2, dX1 = T.layernorm_backward(sub["ln2"], c2, dN2)
    dX1 = dX1 + dY
    g_attn, (dN1, _) = T.attention_backward(sub["attn"], ca, dX1)
    g_ln1, dX = T.layernorm_backward(sub["ln1"], c1, dN1)
    grads = {f"{name}.{k}": v for name, g in (("ln1", g_ln1), ("attn", g_attn), ("ln2", g_ln2), ("mlp", g_mlp))
             for k, v in g.items()}  # fmt: skip
    return X1 + Y2, grads, dX + dX1


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 3), st.integers(0, 10_000))
def test_the_block_with_layernorm_folded_equals_the_pieces(B, Tn, heads, seed):
    """eq. (A22)-(A23): the block computes LN_1 with W_qkv and LN_2 with W_fc as one map of xh each; its output,
    every gradient (the LayerNorms' gains and shifts included) and dX equal the pieces run one after another."""
    rng = np.random.default_rng(seed)
    D = heads * 3
    p = block_params(rng, D, 2 * D)
    X, dY = rng.normal(size=(B, Tn, D)), rng.normal(size=(B, Tn, D))
    Y, cache = T.block_forward(p, (X, heads))
    grads, (dX, _) = T.block_backward(p, cache, dY)
    Y_ref, grads_ref, dX_ref = _unfolded_block(p, X, heads, dY)
    np.testing.assert_allclose(Y, Y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dX, dX_ref, rtol=1e-10, atol=1e-10)
    assert list(grads) == list(p)  # every parameter, in the order of the parameters
    for k in p:
        np.testing.assert_allclose(grads[k], grads_ref[k], rtol=1e-10, atol=1e-10, err_msg=k)


def test_a_wrong_unfold_fails_the_folded_block_check(monkeypatch):
    """The check above can fail: eq. (A23) without its b^T dc~ term gives W_qkv and W_fc wrong gradients."""
    rng = np.random.default_rng(0)
    p = block_params(rng, 6, 12)
    X, dY = rng.normal(size=(2, 4, 6)), rng.normal(size=(2, 4, 6))
    real = T._unfold

    def without_shift_term(ln, W, dW_f, dc_f):
        return (ln["g"][:, None] * dW_f,) + real(ln, W, dW_f, dc_f)[1:]

    monkeypatch.setattr(T, "_unfold", without_shift_term)
    grads, _ = T.block_backward(p, T.block_forward(p, (X, 2))[1], dY)
    assert not np.allclose(grads["attn.W_qkv"], _unfolded_block(p, X, 2, dY)[1]["attn.W_qkv"], rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([0.1, 1.0, 30.0, 200.0]), st.integers(0, 3))
def test_rows_left_unshifted_give_the_same_softmax(seed, scale, far):
    """eq. (A6'): rows within Lambda are not shifted, the others by their maximum (at scale 200, or with a
    row pushed far below or above the others, some are not within it); the softmax equals the plain one,
    and a row's numbers do not change when the other rows do (the choice is the row's own)."""
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(2, 3, 8, 16)).astype(np.float32) * scale  # rows 8..15 of a window of 16
    S[0, 0, far] += 150.0 * (far - 1.5)  # one row far from Lambda on one side or the other
    mask = T._causal_mask(16, S.dtype)[8:]
    P = T._causal_softmax_inplace(S.copy(), mask, shift_free=True)
    np.testing.assert_allclose(P, _plain(S.astype(np.float64), mask), rtol=2e-5, atol=1e-7)
    other = S.copy()  # every row but one far out: row `keep` still makes the same choice, bit for bit
    keep = (far + 3) % 8
    other[:, :, np.arange(8) != keep] = 500.0
    P_other = T._causal_softmax_inplace(other, mask, shift_free=True)
    assert np.array_equal(P_other[:, :, keep], P[:, :, keep])


def _plain(S: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The softmax of eq. (A6) with each row's maximum subtracted, in float64."""
    S = S + mask
    E = np.exp(S - S.max(axis=-1, keepdims=True))
    return E / E.sum(axis=-1, keepdims=True)
