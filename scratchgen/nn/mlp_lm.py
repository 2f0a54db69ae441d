r"""Bengio et al. 2003's neural language model (makemore's "MLP") as forward/backward pairs of plain functions.

An order-(n+1) n-gram model estimates P(w_t | w_{t-n} .. w_{t-1}) by counting that exact context, so a
context never seen gets nothing from similar ones. Bengio, Ducharme, Vincent and Jauvin (2003, "A Neural
Probabilistic Language Model", JMLR 3, section 2) keep the n-gram's fixed window of n previous tokens but
map each token to a learned vector, so contexts made of similar tokens get similar predictions. It is the
bridge between the statistical and the deep families: the same conditioning as the n-gram, the same
embedding, tanh and softmax as the RNN.

Letters: B batch (any leading axes), n context length, V vocabulary, E embedding width, H hidden width.
Row vectors. Parameters by role: ``C`` (V, E), ``W_h`` (n E, H), ``b_h`` (H,), ``W_y`` (H, V), ``b_y`` (V,).
Forward, for one context i_1 .. i_n (the n previous tokens, oldest first)::

    x = [C[i_1], C[i_2], ..., C[i_n]]          the n embeddings side by side, (n E,)          (M1)
    h = tanh(x W_h + b_h)                      hidden layer                                   (M2)
    y = h W_y + b_y                            logits; P(next | context) = softmax(y)         (M3)

Backward, from dy (the fused softmax cross-entropy gradient of ``layers.py``, eq. 7)::

    dW_y = sum h^T dy,  db_y = sum dy,  dh = dy W_y^T                                         (M4)
    da = dh * (1 - h^2),  dW_h = sum x^T da,  db_h = sum da,  dx = da W_h^T                  (M5)
    dC[i_k] += dx[(k-1) E : k E]  for each slot k: a token in two slots gets both gradients  (M6)

The paper's model also has optional direct connections from x to the logits (``y = b + x W + h U``);
like makemore we leave them out. Positions before the start of a text read the padding token ``pad``
(naturally the start token ``<s>`` of :mod:`scratchgen.text`), so the first token is predicted from n
paddings, as an n-gram model predicts it from n start symbols.
"""

from __future__ import annotations

import numpy as np

from .layers import scatter_add_rows

__all__ = ["context_windows", "mlp_lm_forward", "mlp_lm_backward"]


def context_windows(ids: np.ndarray, n: int, pad: int) -> np.ndarray:
    """The n tokens before each position: ids (B, T) -> (B, T, n), oldest first, ``pad`` before the start.

    >>> context_windows(np.array([[5, 6, 7]]), 2, pad=0)
    array([[[0, 0],
            [0, 5],
            [5, 6]]])
    """
    B, T = ids.shape
    padded = np.concatenate([np.full((B, n), pad, dtype=ids.dtype), ids], axis=1)  # (B, n + T)
    return np.stack([padded[:, k : k + T] for k in range(n)], axis=-1)  # (B, T, n): slot k is t - n + k


def mlp_lm_forward(params: dict, ids: np.ndarray):
    """Logits for the next token of each context, eq. (M1)-(M3).

    Parameters
    ----------
    params : "C" (V, E), "W_h" (n E, H), "b_h" (H,), "W_y" (H, V), "b_y" (V,)
    ids : int array (..., n), the contexts (see :func:`context_windows`)

    Returns
    -------
    Y : (..., V) logits
    cache : dict

    >>> V, E, n, H = 3, 2, 2, 4               # all weights zero: every logit is 0, P uniform
    >>> p = {"C": np.zeros((V, E)), "W_h": np.zeros((n * E, H)), "b_h": np.zeros(H),
    ...      "W_y": np.zeros((H, V)), "b_y": np.zeros(V)}
    >>> mlp_lm_forward(p, np.array([[0, 2]]))[0]
    array([[0., 0., 0.]])
    """
    C = params["C"]  # (V, E)
    lead, n = ids.shape[:-1], ids.shape[-1]
    flat = ids.reshape(-1, n)  # (M, n), M contexts
    X = C[flat].reshape(len(flat), -1)  # (M, n E) eq. (M1)
    Hh = np.tanh(X @ params["W_h"] + params["b_h"])  # (M, H) eq. (M2)
    Y = Hh @ params["W_y"] + params["b_y"]  # (M, V) eq. (M3)
    return Y.reshape(*lead, -1), {"ids": flat, "X": X, "H": Hh, "lead": lead}


def mlp_lm_backward(params: dict, cache: dict, dY: np.ndarray):
    """All gradients by eq. (M4)-(M6). Returns grads and None (the ids have no gradient)."""
    C = params["C"]
    flat, X, Hh = cache["ids"], cache["X"], cache["H"]
    dY = dY.reshape(len(flat), -1)  # (M, V)
    grads = {"W_y": Hh.T @ dY, "b_y": dY.sum(axis=0)}  # eq. (M4)
    dA = (dY @ params["W_y"].T) * (1.0 - Hh * Hh)  # (M, H) eq. (M5)
    grads["W_h"] = X.T @ dA
    grads["b_h"] = dA.sum(axis=0)
    dX = dA @ params["W_h"].T  # (M, n E) eq. (M5)
    grads["C"] = scatter_add_rows(C.shape[0], flat, dX.reshape(-1, C.shape[1]))  # (V, E) eq. (M6)
    return grads, None
