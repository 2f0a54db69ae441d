"""Why a neural model gave each token its probability: what the network held when it predicted it.

A recurrent model predicts x_t from its top hidden state alone (eq. (2) of :mod:`~scratchgen.nn.rnn`)::

    P(x_t = v | x_<t) = softmax(h^L_t W_hy + b_y)[v],      h^l_t after reading x_{t-1}               (1)

so its "why" is that state: ``hidden_norm`` = ||h^L_t||_2, the Euclidean norm of the top layer's state
when x_t was predicted (at most sqrt(H), since |tanh| < 1; a norm near sqrt(H) means saturated units),
and ``hidden_norms``, one norm a layer, bottom first. The alternatives the network preferred are the
shared record's ``top`` (:mod:`scratchgen.explain`).

**The Transformer** (:func:`explain_transformer`) predicts x_t from the top of its residual stream at the
last position of its window (eq. (T3) of :mod:`~scratchgen.nn.transformer`), so ``hidden_norm`` is that
vector's norm, and its "why" is where it looked: ``attention`` holds, for each layer and head, the weights
softmax(q_t k_s / sqrt(d)) over the window's positions s <= t (eq. (A5)-(A6) of
:mod:`~scratchgen.nn.attention`; each row sums to 1), and ``context`` the tokens of those positions
(``<s>`` first while the window starts at the beginning; past the context, the window of eq. (T4)).
The ``why`` line names, for the last layer, each head's most attended token.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..labels import start_state

__all__ = ["explain_tokens", "explain_transformer", "state_norms"]


def state_norms(state) -> list[float]:
    """||h^l||_2 of each layer of a one-row recurrent state (a tuple of (1, H) arrays), bottom first."""
    return [float(np.linalg.norm(np.asarray(h, dtype=np.float64)[0])) for h in state]


def explain_tokens(model, ids: np.ndarray, label: int | None = None) -> list[dict[str, Any]]:
    """``hidden_norm``, ``hidden_norms`` and a ``why`` line for each token of ``ids`` and ``</s>``.

    ``label``: the label id of a labelled model (whose state starts from its label), None otherwise.
    """
    state = start_state(model, 1, None if label is None else np.array([label]))  # after <s>
    out = []
    layers = int(getattr(model, "layers", len(state)))  # a labelled model's state ends with its label ids
    H = int(np.asarray(state[layers - 1]).shape[1])
    for t in range(len(ids) + 1):
        norms = state_norms(state[:layers])  # eq. (1): the state that predicts x_t
        why = f"|h| = {norms[-1]:.3g} of at most {np.sqrt(H):.3g}"
        out.append({"hidden_norm": norms[-1], "hidden_norms": norms, "why": why})
        if t < len(ids):
            state = model.advance(state, ids[t : t + 1])
    return out


def explain_transformer(model, ids: np.ndarray, label: int | None = None) -> list[dict[str, Any]]:
    """``hidden_norm``, ``attention`` (layers x heads x window), ``context`` and ``why`` for each token and ``</s>``.

    Each token is read from the window that predicts it (eq. (T4)), one forward pass a window, the
    attention weights taken from the blocks' caches.
    """
    from .attention import attention_weights
    from .transformer import _sub, _trunk_forward, layernorm_forward, window_starts

    p = model._fitted_params()
    vocab = model.fitted_vocab()
    x = np.concatenate([[vocab.bos_id], ids]).astype(np.int64)  # (n,) the inputs: <s> then the tokens
    n, T = len(x), model.context
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    labels = None if label is None else np.array([label])
    for s, first, stop in window_starts(n, T):
        window = x[s : s + T][None, :]  # (1, w)
        XL, cache = _trunk_forward(p, window, model.heads, labels)  # (1, w, D)
        top = layernorm_forward(_sub(p, "lnf."), XL)[0][0]  # (w, D) what eq. (T3) reads
        P = [attention_weights(c["attn"])[0] for c in cache["blocks"]]  # each (A, w, w)
        for i in range(first, stop):
            j = i - s  # the position in the window
            weights = [[[float(w) for w in Pl[a, j, : j + 1]] for a in range(Pl.shape[0])] for Pl in P]
            context = vocab.decode(window[0, : j + 1])
            looked = [context[int(np.argmax(head))] for head in weights[-1]]
            out[i] = {
                "hidden_norm": float(np.linalg.norm(np.asarray(XL[0, j], dtype=np.float64))),
                "normed_norm": float(np.linalg.norm(np.asarray(top[j], dtype=np.float64))),
                "attention": weights,
                "context": context,
                "why": "last layer looks most at " + ", ".join(f"head {a}: {t!r}" for a, t in enumerate(looked)),
            }
    return out
