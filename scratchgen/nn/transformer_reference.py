r"""The Transformer as a textbook writes it: one sequence, one position, one head at a time. Read this first.

It computes log P(x_t | the window of x_<t) for ONE sequence, with plain loops over positions, heads
and earlier positions, Python lists of row vectors, and nothing batched, split into heads by
reshapes or cached: eq. (A1)-(A11) of :mod:`scratchgen.nn.attention` and the windows of eq. (T4) of
:mod:`scratchgen.nn.transformer`, whose fast path ``tests/nn/test_transformer_model.py`` proves equal
to this (and to stepping with the key/value cache) up to rounding. Gradients are checked against
finite differences instead (``scratchgen gradcheck --model transformer``).

For position t of a window and head a (columns a d .. (a+1) d - 1 of q, k, v)::

    x_t = C[i_t] + P_pos[t] (+ L_in[c])                                          (A10), (L1)
    q_t, k_t, v_t = the three thirds of LN_1(x_t) W_qkv + b_qkv                  (A4)
    w_ts = exp(q_t^a . k_s^a / sqrt(d)) / sum_{r <= t} exp(q_t^a . k_r^a / sqrt(d)),  s <= t   (A5)-(A6)
    o_t^a = sum_{s <= t} w_ts v_s^a;  x_t <- x_t + [o_t^1 .. o_t^A] W_o + b_o        (A7), (A9)
    x_t <- x_t + GELU(LN_2(x_t) W_fc + b_fc) W_proj + b_proj                       (A8), (A9)
    log P(. | ..) = log softmax(LN_f(x_t) W_out + b_out), the <s> entry excluded   (A11)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sequence_logprobs"]


def _layernorm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = sum(x) / len(x)
    var = sum((xk - mu) ** 2 for xk in x) / len(x)
    return g * (x - mu) / math.sqrt(var + 1e-5) + b  # eq. (A1)-(A2)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))  # eq. (A3)


def _window_top(params: dict, heads: int, window: list[int], label: int | None) -> list[np.ndarray]:
    """The residual stream at the top of the last block for every position of one window."""
    D = params["C"].shape[1]
    d = D // heads
    L = len({k.split(".")[1] for k in params if k.startswith("h.")})
    xs = []
    for t, i in enumerate(window):
        x = params["C"][i] + params["P_pos"][t]  # eq. (A10)
        if label is not None:
            x = x + params["L_in"][label]  # eq. (L1)
        xs.append(x.astype(np.float64))
    for layer in range(L):
        p = {k.split(".", 2)[2]: v for k, v in params.items() if k.startswith(f"h.{layer}.")}
        qkv = [_layernorm(x, p["ln1.g"], p["ln1.b"]) @ p["attn.W_qkv"] + p["attn.b_qkv"] for x in xs]  # eq. (A4)
        q = [z[:D] for z in qkv]
        k = [z[D : 2 * D] for z in qkv]
        v = [z[2 * D :] for z in qkv]
        new = []
        for t in range(len(xs)):
            o = np.zeros(D)
            for a in range(heads):
                cols = slice(a * d, (a + 1) * d)
                scores = [float(q[t][cols] @ k[s][cols]) / math.sqrt(d) for s in range(t + 1)]  # eq. (A5)
                top = max(scores)
                weights = [math.exp(sc - top) for sc in scores]
                total = sum(weights)
                for s in range(t + 1):
                    o[cols] += weights[s] / total * v[s][cols]  # eq. (A6)-(A7)
            x = xs[t] + o @ p["attn.W_o"] + p["attn.b_o"]  # eq. (A9), first residual
            hidden = _gelu(_layernorm(x, p["ln2.g"], p["ln2.b"]) @ p["mlp.W_fc"] + p["mlp.b_fc"])
            new.append(x + hidden @ p["mlp.W_proj"] + p["mlp.b_proj"])  # eq. (A8)-(A9)
        xs = new
    return xs


def sequence_logprobs(params: dict, heads: int, ids: list[int], label: int | None = None) -> np.ndarray:
    """log P of every token of ``ids`` and of ``</s>`` (id 2) after ``<s>`` (id 1), each from its window.

    The window of token position i (``<s>`` is position 0) is [s(i), i] of eq. (T4): s = 0 while i < T,
    then it jumps by H = max(1, T // 2) each time the window would grow past T.
    """
    T = params["P_pos"].shape[0]
    H = max(1, T // 2)
    stream = [1] + list(ids)  # inputs: <s> then the tokens
    targets = list(ids) + [2]  # then </s>
    W_out = params["W_out"] if "W_out" in params else params["C"].T
    out = []
    for i in range(len(stream)):
        s = 0 if i < T else ((i - T) // H + 1) * H  # eq. (T4)
        top = _window_top(params, heads, stream[s : i + 1], label)[-1]
        logits = _layernorm(top, params["lnf.g"], params["lnf.b"]) @ W_out + params["b_out"]  # eq. (A11)
        logits = logits.astype(np.float64)
        logits[1] = -np.inf  # <s> is never a next token
        m = logits.max()
        out.append(logits[targets[i]] - m - math.log(np.exp(logits - m).sum()))
    return np.array(out)
