r"""Label conditioning of a deep model, P(x | c): the label pieces, each a pair of plain functions.

A labelled network learns two tables of label vectors. ``L_in`` (C, D) holds one vector a label that is
added to the model's input vector at every step, and ``L_h`` (C, H) one vector a label that sets a
recurrent layer's initial state. Both are indexed by the label id ``c_b`` of each sequence b of the batch::

    x_t <- x_t + L_in[c]                   the label added to the input, every step t          (L1)
    h_0 = tanh(L_h[c])                     the label's initial state (each recurrent layer)     (L2)

and backward, by the chain rule (``dZ`` means d loss / d Z)::

    dx_t passes through (L1) unchanged;   dL_in[c] = sum over the sequences b with c_b = c
                                                     of sum_t dx_{b,t}                          (L3)
    dL_h[c] = sum over the sequences b with c_b = c of dh_{b,0} * (1 - h_{b,0}^2)               (L4)

A table row is shared by every step of a sequence and every sequence with that label, so its gradient
is a sum over both (eq. L3, L4): ``np.add.at`` adds every row of a repeated label (``dL[labels] += ...``
would keep only one of them, as for the embedding table's eq. (13)).

Why these choices:

- **tanh in eq. (L2)**, not ``h_0 = L_h[c]``: every later state h_t is a tanh, in (-1, 1); a tanh start
  is on the same scale, so W_hh sees no state it was never trained on, however far L_h drifts. The
  cost is the factor (1 - h_0^2) in eq. (L4), the same tanh' as the layer's own eq. (10).
- **An initial state per layer** (``L_h.l`` for l = 0 .. L-1), not for the first layer only: each
  layer's state is that layer's memory; with a label start only at the bottom, upper layers would begin
  every sequence from the same zero state and learn of the label one step late. It costs L C H numbers.
- **The input vector at the first layer only** (upper layers read h_t of the layer below, which
  already carries the label). With an embedding table (``C``, of shape (V, E)), x_t = C[i_t] and
  ``L_in`` is (C, E), C labels.
  **Without a table** (one-hot inputs) the rows of ``W_xh.0`` are the token embeddings (as in
  min-char-rnn: x_t W_xh = W_xh[i_t], an H-vector), so the label vector lives where they do:
  ``L_in`` is (C, H) and is added to W_xh[i_t] inside the recurrence, a_t = W_xh[i_t] + L_in[c] +
  h_{t-1} W_hh + b_h. A (C, V) vector added to the one-hot x_t itself would reach the network only as
  the H-vector L_in[c] W_xh: no more functions (W_xh has rank H when V >= H), C V numbers instead of
  C H, and one dense product more.
- **Zero initial tables**: tanh(0) = 0 and a zero input vector, so at initialisation a labelled network
  computes exactly what the unlabelled one of the same seed does; the labels move it from there.

The pieces take the input array and the label ids and know nothing of the recurrence, so any deep model
reuses them: :func:`label_input_forward` adds the label to any (B, ..., D) input (a GRU's, an LSTM's,
an MLP's context embeddings, a Transformer's token embeddings), and :func:`label_state_forward` gives
the (B, H) start of any recurrent state. Letters: B batch, T time, C the number of labels (in shapes;
the parameter ``C`` is the token embedding table), D the width of the vector the label is added to (E,
or H for one-hot inputs), H hidden width, L layers.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "label_input_forward",
    "label_input_backward",
    "label_state_forward",
    "label_state_backward",
    "label_states_forward",
    "label_states_backward",
    "label_params",
    "input_label_width",
]


def input_label_width(V: int, hidden: int, embedding: int | None) -> int:
    """D, the width of ``L_in``: the embedding width E, or H for one-hot inputs (module docstring)."""
    return embedding or hidden


def label_params(C: int, width: int, hidden: int, layers: int, dtype=np.float64) -> dict:
    """Zero tables ``L_in`` (C, D) and ``L_h.l`` (C, H): at the start the network ignores the label.

    No random numbers are drawn, so the other parameters are those of the unlabelled model of the same seed.
    """
    p = {"L_in": np.zeros((C, width), dtype=dtype)}  # (C, D)
    for layer in range(layers):
        p[f"L_h.{layer}"] = np.zeros((C, hidden), dtype=dtype)  # (C, H)
    return p


# --- the label added to the input: eq. (L1) and (L3) ----------------------------------------------


def label_input_forward(params: dict, inputs):
    """x_t + L_in[c] for every step of every sequence: eq. (L1).

    Parameters
    ----------
    params : dict with "L_in" of shape (C, D)
    inputs : (X, labels)
        X : float array (B, T, D), or any (B, ..., D); or None for the label vectors alone, (B, D),
            which a caller adds itself (the one-hot RNN adds them to a_t inside its recurrence)
        labels : int array (B,), the label id of each sequence

    Returns
    -------
    X + L_in[labels] (same shape as X; (B, D) when X is None), and the cache

    >>> L_in = np.array([[0.0, 0.0], [10.0, 20.0]])            # C = 2 labels, D = 2
    >>> out, _ = label_input_forward({"L_in": L_in}, (np.ones((2, 3, 2)), np.array([1, 0])))
    >>> out[0].tolist(), out[1].tolist()                          # label 1 on every step of row 0
    ([[11.0, 21.0], [11.0, 21.0], [11.0, 21.0]], [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    """
    X, labels = inputs
    L_in = params["L_in"]  # (C, D)
    labels = np.asarray(labels)
    vectors = L_in[labels]  # (B, D)
    cache = {"labels": labels, "C": L_in.shape[0]}
    if X is None:
        return vectors, cache  # (B, D)
    shape = (len(labels),) + (1,) * (np.ndim(X) - 2) + (L_in.shape[1],)  # (B, 1, .., D): broadcast over steps
    return X + vectors.reshape(shape), cache  # (B, ..., D) eq. (L1)


def label_input_backward(params: dict, cache: dict, dX: np.ndarray):
    """dL_in: each sequence's dx_t summed over its steps, then over the sequences of each label: eq. (L3).

    Returns ({"L_in": dL_in}, (dX, None)): dX passes through (L1) unchanged, the ids have no gradient.
    """
    B = len(cache["labels"])
    per_sequence = dX.reshape(B, -1, dX.shape[-1]).sum(axis=1)  # (B, D) sum over the steps
    dL_in = np.zeros((cache["C"], dX.shape[-1]), dtype=dX.dtype)  # (C, D)
    np.add.at(dL_in, cache["labels"], per_sequence)  # (C, D) eq. (L3): a repeated label adds up
    return {"L_in": dL_in}, (dX, None)


# --- the label's initial state: eq. (L2) and (L4) -------------------------------------------------


def label_state_forward(params: dict, labels: np.ndarray):
    """h_0 = tanh(L_h[c]) of every sequence: eq. (L2).

    params : "L_h" (C, H); labels : int (B,) -> h0 : (B, H)

    >>> h0, _ = label_state_forward({"L_h": np.array([[0.0], [100.0]])}, np.array([1, 0, 1]))
    >>> h0.ravel().tolist()
    [1.0, 0.0, 1.0]
    """
    labels = np.asarray(labels)
    h0 = np.tanh(params["L_h"][labels])  # (B, H) eq. (L2)
    return h0, {"labels": labels, "h0": h0, "C": params["L_h"].shape[0]}


def label_state_backward(params: dict, cache: dict, dh0: np.ndarray):
    """dL_h[c] = sum over the sequences of label c of dh_0 (1 - h_0^2): eq. (L4). Returns ({"L_h": ...}, None)."""
    dpre = dh0 * (1.0 - cache["h0"] ** 2)  # (B, H) tanh'
    dL_h = np.zeros((cache["C"], dh0.shape[-1]), dtype=dh0.dtype)  # (C, H)
    np.add.at(dL_h, cache["labels"], dpre)  # (C, H) eq. (L4)
    return {"L_h": dL_h}, None


def label_states_forward(params: dict, labels: np.ndarray):
    """eq. (L2) for each of the L layers of a stack (keys ``L_h.l``): h0 of shape (L, B, H)."""
    layers = sum(key.startswith("L_h.") for key in params)
    caches, states = [], []
    for layer in range(layers):
        h0, c = label_state_forward({"L_h": params[f"L_h.{layer}"]}, labels)  # (B, H)
        states.append(h0)
        caches.append(c)
    return np.stack(states), {"layers": caches}  # (L, B, H)


def label_states_backward(params: dict, cache: dict, dh0: np.ndarray):
    """eq. (L4) for each layer: dh0 (L, B, H) -> grads ``L_h.l``."""
    grads = {}
    for layer, c in enumerate(cache["layers"]):
        grads[f"L_h.{layer}"] = label_state_backward({}, c, dh0[layer])[0]["L_h"]  # (C, H)
    return grads, None
