"""Why a neural model gave each token its probability: what the network held when it predicted it.

A recurrent model predicts x_t from its top hidden state alone (eq. (2) of :mod:`~scratchgen.nn.rnn`)::

    P(x_t = v | x_<t) = softmax(h^L_t W_hy + b_y)[v],      h^l_t after reading x_{t-1}               (1)

so its "why" is that state: ``hidden_norm`` = ||h^L_t||_2, the Euclidean norm of the top layer's state
when x_t was predicted (at most sqrt(H), since |tanh| < 1; a norm near sqrt(H) means saturated units),
and ``hidden_norms``, one norm a layer, bottom first. The alternatives the network preferred are the
shared record's ``top`` (:mod:`scratchgen.explain`).

**Adding a family member.** The hook returns one dict a token, so another network adds its own keys
beside these: a Transformer's ``_explain`` would add ``attention``, for each layer and head the weights
over the context x_0..x_{t-1} (a list of lists a token, shape (layers, heads, t)), read from its cache
as it steps. :func:`state_norms` takes the state's layers from :meth:`_state_layers`-like access, so only
the part that reads the state is the model's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..labels import start_state

__all__ = ["explain_tokens", "state_norms"]


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
