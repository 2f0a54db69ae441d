r"""The GRU and LSTM language models as a textbook writes them: one sequence, one time step at a time.

The log-probability of every token of ONE sequence under ``RNNModel(cell="gru")`` or ``cell="lstm"``,
with plain loops over steps and layers, Python lists of row vectors and the logistic function written
as ``1 / (1 + exp(-a))``. Nothing is batched, time-major, buffered, fused or computed in place: those are
the fast path's transformations (:mod:`scratchgen.nn.cells`, :mod:`scratchgen.nn.gated`), and
``tests/nn/test_gated_rnn.py`` proves that they change nothing but rounding. The gradients are checked
against finite differences instead (``scratchgen gradcheck --model gru|lstm``).

The numbers (letters and gate order as in :mod:`scratchgen.nn.cells`; row vectors)::

    x_t = C[i_t] (or the one-hot row of i_t)  (+ L_in[c], a labelled model)       input     (1)
    GRU:  r = sigma(x W_r + h W'_r + b_r),  z = sigma(x W_z + h W'_z + b_z)
          n = tanh(x W_n + b_n + r * (h W'_n + b_hn)),  h <- (1 - z) * n + z * h               (2)
    LSTM: i, f, o = sigma(x W_. + h W'_. + b_.),  g = tanh(x W_g + h W'_g + b_g)
          c <- f * c + i * g,  h <- o * tanh(c)                                                (3)
    h_0 = 0, c_0 = 0;  labelled: h_0 = tanh(L_h.l[c]), c_0 = L_c.l[c]                          (4)
    log P(x_t | x_<t) = log softmax(h^L_t W_hy + b_y)[x_t], the <s> entry excluded             (5)

where W_r is the first H columns of ``W_xg``, W'_r those of ``W_hg``, and so on.
"""

from __future__ import annotations

import math

import numpy as np

from .data import BOS, EOS

__all__ = ["sequence_logprobs"]


def _sigma(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a)) if a >= 0 else math.exp(a) / (1.0 + math.exp(a))


def _vec(f, v):
    return np.array([f(float(a)) for a in v])


def _gru(p: dict, layer: int, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """eq. (2), the blocks taken apart."""
    H = len(h)
    Wx, Wh, b, bhn = p[f"W_xg.{layer}"], p[f"W_hg.{layer}"], p[f"b_g.{layer}"], p[f"b_hn.{layer}"]
    block = [slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)]  # r, z, n
    r = _vec(_sigma, x @ Wx[:, block[0]] + h @ Wh[:, block[0]] + b[block[0]])
    z = _vec(_sigma, x @ Wx[:, block[1]] + h @ Wh[:, block[1]] + b[block[1]])
    n = _vec(math.tanh, x @ Wx[:, block[2]] + b[block[2]] + r * (h @ Wh[:, block[2]] + bhn))
    return (1.0 - z) * n + z * h


def _lstm(p: dict, layer: int, x: np.ndarray, h: np.ndarray, c: np.ndarray):
    """eq. (3), the blocks taken apart."""
    H = len(h)
    Wx, Wh, b = p[f"W_xg.{layer}"], p[f"W_hg.{layer}"], p[f"b_g.{layer}"]

    def pre(k):
        s = slice(k * H, (k + 1) * H)
        return x @ Wx[:, s] + h @ Wh[:, s] + b[s]

    i, f, g, o = _vec(_sigma, pre(0)), _vec(_sigma, pre(1)), _vec(math.tanh, pre(2)), _vec(_sigma, pre(3))
    c = f * c + i * g
    return o * _vec(math.tanh, c), c


def sequence_logprobs(cell: str, params: dict, layers: int, ids, label: int | None = None) -> np.ndarray:
    """log P(x_t | x_<t) of each token of one sequence ``ids`` (without <s>, </s>), </s> included: (len + 1,).

    ``params`` in float64 (the arrays of a fitted model's ``params_``); ``label`` its label id, if labelled.
    """
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    H = p["W_hg.0"].shape[0]
    V = p["W_hy"].shape[1]
    if label is None:
        hs = [np.zeros(H) for _ in range(layers)]
        cs = [np.zeros(H) for _ in range(layers)]
    else:  # eq. (4)
        hs = [np.tanh(p[f"L_h.{layer}"][label]) for layer in range(layers)]
        cs = [p[f"L_c.{layer}"][label].copy() if cell == "lstm" else np.zeros(H) for layer in range(layers)]
    inputs = [BOS, *ids]
    targets = [*ids, EOS]
    out = []
    for i_t, j_t in zip(inputs, targets):
        if "C" in p:
            x = p["C"][i_t].copy()  # eq. (1)
        else:
            x = np.zeros(V)
            x[i_t] = 1.0
        if label is not None:
            x = x + p["L_in"][label]
        for layer in range(layers):
            if cell == "gru":
                hs[layer] = _gru(p, layer, x, hs[layer])
            else:
                hs[layer], cs[layer] = _lstm(p, layer, x, hs[layer], cs[layer])
            x = hs[layer]
        y = x @ p["W_hy"] + p["b_y"]  # eq. (5)
        y[BOS] = -np.inf
        m = y.max()
        out.append(y[j_t] - m - math.log(sum(math.exp(v - m) for v in y if v != -np.inf)))
    return np.array(out)
