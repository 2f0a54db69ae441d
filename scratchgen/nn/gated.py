r"""The gated RNN language models: GRU and LSTM cells (:mod:`scratchgen.nn.cells`) in the network of an RNN.

``RNNModel(cell="gru")`` and ``RNNModel(cell="lstm")`` are the network of :mod:`scratchgen.nn.rnn` with
the tanh layer of eq. (1) there replaced by a stack of gated layers; everything around the recurrence
is the same (embedding or one-hot inputs, dropout on the top states, output projection, masked
cross-entropy)::

    x^1_t = C[x_{t-1}] (or the one-hot row of x_{t-1}),  x^l_t = h^{l-1}_t for l > 1              (1)
    h^l_t = GRU(x^l_t, h^l_{t-1})                 eq. (G1)-(G6) of cells                           (2)
    (h^l_t, c^l_t) = LSTM(x^l_t, h^l_{t-1}, c^l_{t-1})   eq. (L1)-(L5) of cells                    (3)
    P(x_t = v | x_<t) = softmax(h^L_t W_hy + b_y)[v]                                               (4)

With an embedding table and no labels, the first layer's input product reads one row of a (V, kH) table
instead of multiplying each embedding row: ``x^1_t W_xg.0 = C[x_{t-1}] W_xg.0 = (C W_xg.0)[x_{t-1}]``,
so the T B products of eq. (G1)/(L1) become one (V, E) x (E, kH) product and a row lookup. Backward, with
S = sum, over the positions that read row v, of their da_t (a (V, kH) scatter-add, eq. 13 of layers)::

    dW_xg.0 = C^T S,        dC = S W_xg.0^T                                                       (6)

(the gradient of the table C W_xg.0 is S; each factor's is S times the other's transpose): two small
products in place of two (T B, E) x (E, kH) products, worth it when V < T B (:func:`folds_embedding`).

The carried state of a chunk is an array: (L, B, H) of h for a GRU, (2, L, B, H) of [h, c] for an LSTM,
so the Trainer and the checkpoints carry and store it as they do the tanh RNN's.

A labelled gated model (eqs. (L1)-(L4) of :mod:`scratchgen.nn.conditioning`) adds its label's vector
``L_in[c]`` to the input x^1_t of every step and starts each layer from h^l_0 = tanh(L_h.l[c]). Two
choices of our own, argued:

- **The LSTM's memory cell gets its own start table**, ``L_c.l`` (C, H) a layer, used as it is::

      c^l_0 = L_c.l[c],            dL_c.l[c] = sum over the sequences b of label c of dc^l_{b,0}   (5)

  without a tanh: the memory cell is not squashed (c_t = f c_{t-1} + i g grows by adding), so a start
  of any size is one it can hold, and the copy path c_t = f_t c_{t-1} (eq. L8 of cells) carries the
  label's information forward as long as the forget gate stays open. A single table for h alone would
  leave c^l_0 = 0, and the label would reach the cell only through the gates of the first step.
- **One-hot inputs**: the gated cells read a one-hot x_t as the row W_xg[i_t] of a (V, kH) matrix, with
  no place to add a vector beside it. The label vector is then added to the one-hot vector itself,
  ``L_in`` is (C, V) and x_t = onehot(i_t) + L_in[c] (a dense (B, T, V) input, one product more): the
  literal eq. (L1). It is as expressive as a (C, kH) vector added to the gate inputs when V >= kH, and
  it costs C V numbers; a model with an embedding table (``--embedding``) has ``L_in`` (C, E) and no
  dense input.

Initial parameters (:func:`init_gated_params`) follow ``optim.init_params`` and PyTorch's rule for
nn.GRU/nn.LSTM (U(-1/sqrt(H), 1/sqrt(H)) for the input weights), with each gate's block of ``W_hg``
orthogonal and the LSTM's forget-gate bias at 1 (Gers et al. 2000; Jozefowicz et al. 2015, "An
Empirical Exploration of Recurrent Network Architectures"): the cell starts by remembering.

Reading order: :mod:`scratchgen.nn.cells` (one cell, its backward), this module (the network around
it), :mod:`scratchgen.nn.gated_reference` (the same numbers one sequence at a time).
"""

from __future__ import annotations

import math

import numpy as np

from .cells import (
    cell_params,
    gru_stack_backward,
    gru_stack_forward,
    gru_step,
    lstm_stack_backward,
    lstm_stack_forward,
    lstm_step,
)
from .conditioning import (
    label_input_backward,
    label_input_forward,
    label_states_backward,
    label_states_forward,
)
from .layers import (
    dropout_backward,
    dropout_forward,
    embedding_backward,
    embedding_forward,
    linear_backward,
    linear_forward,
    softmax_ce_backward,
    softmax_ce_forward,
)
from .network import Network
from .optim import orthogonal

__all__ = [
    "CELLS",
    "GATES",
    "GatedNetwork",
    "gated_inputs",
    "gated_label_start",
    "gated_label_width",
    "gated_shapes",
    "init_gated_params",
    "gated_label_params",
    "gated_start",
    "gated_states",
    "folds_embedding",
    "gated_step",
]

CELLS = ("tanh", "gru", "lstm")
GATES = {"tanh": 1, "gru": 3, "lstm": 4}  # column blocks of the recurrent weights


def gated_label_width(V: int, embedding: int | None) -> int:
    """D, the width of a gated model's ``L_in``: E, or V for one-hot inputs (module docstring)."""
    return embedding or V


def gated_shapes(cell: str, V: int, H: int, L: int, E: int | None, labels: int = 0) -> dict:
    """The shape of every parameter of a gated network (the model file's schema is built from it)."""
    k = GATES[cell]
    shapes: dict[str, tuple[int, ...]] = {"C": (V, E)} if E else {}
    for layer in range(L):
        shapes[f"W_xg.{layer}"] = ((E or V) if layer == 0 else H, k * H)
        shapes[f"W_hg.{layer}"] = (H, k * H)
        shapes[f"b_g.{layer}"] = (k * H,)
        if cell == "gru":
            shapes[f"b_hn.{layer}"] = (H,)
    shapes["W_hy"] = (H, V)
    shapes["b_y"] = (V,)
    if labels:
        shapes["L_in"] = (labels, gated_label_width(V, E))
        for layer in range(L):
            shapes[f"L_h.{layer}"] = (labels, H)
            if cell == "lstm":
                shapes[f"L_c.{layer}"] = (labels, H)
    return shapes


def init_gated_params(
    cell: str, V: int, H: int, L: int, E: int | None, rng: np.random.Generator, dtype=np.float64
) -> dict:
    """Initial parameters (module docstring): the scales of ``optim.init_params``, a gate at a time."""
    k = GATES[cell]
    bound = 1.0 / math.sqrt(H)
    p: dict[str, np.ndarray] = {}
    if E:
        p["C"] = rng.normal(size=(V, E))
    for layer in range(L):
        if layer == 0 and not E:  # one-hot inputs: the rows are the input (see optim.init_params)
            p["W_xg.0"] = rng.uniform(-1.0, 1.0, size=(V, k * H))
        else:
            p[f"W_xg.{layer}"] = rng.uniform(-bound, bound, size=((E or H) if layer == 0 else H, k * H))
        p[f"W_hg.{layer}"] = np.concatenate([orthogonal(H, rng) for _ in range(k)], axis=1)  # (H, kH)
        p[f"b_g.{layer}"] = np.zeros(k * H)
        if cell == "lstm":
            p[f"b_g.{layer}"][H : 2 * H] = 1.0  # the forget gate starts open
        if cell == "gru":
            p[f"b_hn.{layer}"] = np.zeros(H)
    p["W_hy"] = rng.normal(scale=0.1 / math.sqrt(H), size=(H, V))
    p["b_y"] = np.zeros(V)
    return {key: v.astype(dtype) for key, v in p.items()}


def gated_label_params(cell: str, C: int, width: int, H: int, L: int, dtype=np.float64) -> dict:
    """Zero label tables ``L_in`` (C, D), ``L_h.l`` (C, H) and, for an LSTM, ``L_c.l`` (C, H)."""
    p = {"L_in": np.zeros((C, width), dtype=dtype)}
    for layer in range(L):
        p[f"L_h.{layer}"] = np.zeros((C, H), dtype=dtype)
        if cell == "lstm":
            p[f"L_c.{layer}"] = np.zeros((C, H), dtype=dtype)
    return p


# --- the label's start state: eq. (L2) of conditioning, and eq. (5) for the LSTM's cell ----------------


def gated_label_start(cell: str, params: dict, labels: np.ndarray):
    """The start state of each sequence from its label: (L, B, H), or (2, L, B, H) for an LSTM."""
    h0, cache = label_states_forward(params, labels)  # (L, B, H) eq. (L2)
    if cell != "lstm":
        return h0, cache
    c0 = np.stack([params[f"L_c.{layer}"][labels] for layer in range(h0.shape[0])])  # (L, B, H) eq. (5)
    return np.stack([h0, c0]), cache


def gated_label_start_backward(cell: str, params: dict, cache, d_state: np.ndarray, labels: np.ndarray) -> dict:
    """eq. (L4) of conditioning for ``L_h.l``; eq. (5) for ``L_c.l``: a sum per label, ``np.add.at``."""
    if cell != "lstm":
        return label_states_backward(params, cache, d_state)[0]
    grads = label_states_backward(params, cache, d_state[0])[0]
    for layer in range(d_state.shape[1]):
        dL_c = np.zeros_like(params[f"L_c.{layer}"])  # (C, H)
        np.add.at(dL_c, labels, d_state[1, layer])  # eq. (5): a repeated label adds up
        grads[f"L_c.{layer}"] = dL_c
    return grads


def _one_hot(ids: np.ndarray, V: int, dtype) -> np.ndarray:
    """Dense one-hot rows (..., V) of int ids (...): the input a label vector is added to (one-hot case)."""
    out = np.zeros(ids.shape + (V,), dtype=dtype)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


def gated_inputs(params: dict, ids: np.ndarray, labels: np.ndarray | None, cache: dict):
    """x^1_t of eq. (1), with the label vector added (eq. L1 of conditioning) when there are labels."""
    if "C" in params:
        X, cache["emb"] = embedding_forward(params, ids)  # (B, T, E)
    elif labels is not None:
        X = _one_hot(ids, params["W_xg.0"].shape[0], params["W_hg.0"].dtype)  # (B, T, V)
    else:
        return ids  # (B, T) one-hot ids: the cells read rows of W_xg.0
    if labels is not None:
        X, cache["label"] = label_input_forward(params, (X, labels))  # (B, T, D) eq. (L1)
    return X


def folds_embedding(params: dict, ids: np.ndarray, labels) -> bool:
    """Whether eq. (6) applies: an embedding table, no labels, and fewer rows V than positions T B."""
    return "C" in params and labels is None and params["C"].shape[0] < ids.size


def gated_states(cell: str, params: dict, X: np.ndarray, state: np.ndarray):
    """The top states (B, T, H) and the last state (the carried array) of the stack of eqs. (2)/(3)."""
    if cell == "gru":
        (Hs, hT), cache = gru_stack_forward(params, (X, state))  # eq. (2)
        return Hs, hT, cache
    (Hs, hT, cT), cache = lstm_stack_forward(params, (X, state[0], state[1]))  # eq. (3)
    return Hs, np.stack([hT, cT]), cache


class GatedNetwork(Network):
    """The network of eqs. (1)-(4) for the Trainer: the state is (L, B, H) (GRU) or (2, L, B, H) (LSTM)."""

    state_batch_axis = -2  # (L, B, H) or (2, L, B, H): B is second from last in both

    def __init__(self, cell: str, layers: int):
        if cell not in ("gru", "lstm"):
            raise ValueError(f"a gated network's cell is gru or lstm, got {cell!r}")
        self.cell = cell
        self.layers = layers
        # two threads: the GRU shards its batch over threads (nn/parallel.py: 1.35x-1.44x one thread, idle); the LSTM
        # over processes (nn/process_shards.py): its recurrence is ~20 small NumPy calls a step, and two threads hand
        # the interpreter's lock to each other between them (threads: 1.25x one thread in session 20, overlap
        # (nn/lstm_overlap.py) 1.14x). overlaps_recurrence: the overlapped step instead (benchmarks, tests)
        self.shards_in_processes = cell == "lstm"
        self.overlaps_recurrence = False

    def arguments(self) -> dict:
        """The constructor's arguments (JSON): a worker process builds the same network from them (process_shards)."""
        return {"cell": self.cell, "layers": self.layers}

    def overlap_step(self, params: dict, inputs: tuple, submit):
        """((loss, state_T), grads) of one chunk, on the calling thread and ``submit``'s (nn/lstm_overlap.py)."""
        from .lstm_overlap import overlap_step

        return overlap_step(self, params, inputs, submit)

    def forward(self, params: dict, inputs: tuple):
        """((loss, state_T), cache) of one chunk; ``inputs`` as in :mod:`scratchgen.nn.network`."""
        X, rnn_params, state, cache = self._inputs(params, inputs)
        targets, mask = inputs[1:3]
        dropout = inputs[4] if len(inputs) > 4 else None
        H, state_T, cache["rnn"] = gated_states(self.cell, rnn_params, X, state)  # (B, T, H)
        if dropout is not None:
            H, cache["drop"] = dropout_forward({}, (H, *dropout))  # (B, T, H) eq. (14) of layers
        Y, cache["out"] = linear_forward(params, H)  # (B, T, V) eq. (4)
        loss, cache["ce"] = softmax_ce_forward({}, (Y, targets, mask))
        return (loss, state_T), cache

    def _inputs(self, params: dict, inputs: tuple):
        """(X, the parameters of the stack, the carried-in state, cache): everything below eq. (2)/(3)."""
        ids, state = inputs[0], inputs[3]
        labels = inputs[5] if len(inputs) > 5 else None
        cache: dict = {"labelled": labels is not None, "labels": labels}
        if labels is not None and state is None:
            state, cache["start"] = gated_label_start(self.cell, params, labels)  # a fresh labelled start
        elif state is None:
            state = self.start_state(params, ids.shape[0])
        if folds_embedding(params, ids, labels):  # eq. (6): layer 0 reads rows of C W_xg.0
            cache["fold"] = params["C"] @ params["W_xg.0"]  # (V, kH)
            return ids, {**params, "W_xg.0": cache["fold"]}, state, cache
        return gated_inputs(params, ids, labels, cache), params, state, cache

    def backward(self, params: dict, cache, d_outputs=(1.0, None)):
        """All gradients, and that of the carried-in state (None when it was the labels' start)."""
        d_loss, d_state_T = d_outputs
        _, (dY, _, _) = softmax_ce_backward({}, cache["ce"], d_loss)  # (B, T, V)
        grads, dH = linear_backward(params, cache["out"], dY)  # (B, T, H)
        if "drop" in cache:
            _, (dH, _, _) = dropout_backward({}, cache["drop"], dH)
        rnn_params = params if "fold" not in cache else {**params, "W_xg.0": cache["fold"]}
        if self.cell == "gru":
            g, (dX, d_state) = gru_stack_backward(rnn_params, cache["rnn"], (dH, d_state_T))
        else:
            d_last = (None, None) if d_state_T is None else (d_state_T[0], d_state_T[1])
            g, (dX, dh0, dc0) = lstm_stack_backward(rnn_params, cache["rnn"], (dH, *d_last))
            d_state = np.stack([dh0, dc0])  # (2, L, B, H)
        grads.update(g)
        return self._input_grads(params, cache, grads, dX, d_state)

    def _input_grads(self, params: dict, cache: dict, grads: dict, dX, d_state):
        """The gradients below eq. (2)/(3) (the folded table, labels, embedding), added to ``grads``; the
        backward's return value."""
        if "fold" in cache:  # eq. (6): g["W_xg.0"] is S, the gradient of the table C W_xg.0
            S = grads.pop("W_xg.0")  # (V, kH)
            grads["C"] = S @ params["W_xg.0"].T  # (V, E)
            grads["W_xg.0"] = params["C"].T @ S  # (E, kH)
        if "label" in cache:  # eq. (L3) of conditioning
            grads.update(label_input_backward(params, cache["label"], dX)[0])  # dx_t passes through
        if "emb" in cache:
            grads.update(embedding_backward(params, cache["emb"], dX)[0])
        if not cache["labelled"]:
            return grads, (None, None, None, d_state)
        for key in params:
            if key.startswith(("L_h.", "L_c.")):
                grads[key] = np.zeros_like(params[key])  # a carried state: no gradient reaches the tables
        if "start" in cache:
            grads.update(gated_label_start_backward(self.cell, params, cache["start"], d_state, cache["labels"]))
            d_state = None
        return grads, (None, None, None, d_state, None, None)

    def start_state(self, params: dict, batch: int) -> np.ndarray:
        """Zeros: (L, B, H) for a GRU, (2, L, B, H) ([h, c]) for an LSTM, in the parameters' dtype."""
        W = params["W_hg.0"]
        shape = (self.layers, batch, W.shape[0])
        return np.zeros(shape if self.cell == "gru" else (2, *shape), dtype=W.dtype)

    def dropout_shape(self, params: dict, x: np.ndarray) -> tuple[int, ...]:
        return (x.shape[0], x.shape[1], params["W_hg.0"].shape[0])  # (B, T, H) on the top states


# --- the stepping interface: one step of eqs. (1)-(3) ------------------------------------------------


def gated_step(cell: str, params: dict, layers: int, state: tuple, ids: np.ndarray, labels=None) -> tuple:
    """Advance a stepping state by one token of each row.

    ``state`` is the tuple (h^0 .. h^{L-1}) for a GRU, (h^0 .. h^{L-1}, c^0 .. c^{L-1}) for an LSTM,
    each (B, H); returns the same layout (without any label ids: the caller appends them).
    """
    if "C" in params:
        x = params["C"][ids]  # (B, E)
        if labels is not None:
            x = x + params["L_in"][labels]  # eq. (L1)
    else:
        x = _one_hot(ids, params["W_xg.0"].shape[0], params["W_hg.0"].dtype)  # (B, V)
        if labels is not None:
            x = x + params["L_in"][labels]  # eq. (L1), one-hot: the label added to the one-hot row
    hs, cs = [], []
    for layer in range(layers):
        p = cell_params(params, layer, cell)
        if cell == "gru":
            x = gru_step(p, x, state[layer])  # eq. (2)
        else:
            x, c = lstm_step(p, x, state[layer], state[layers + layer])  # eq. (3)
            cs.append(c)
        hs.append(x)
    return tuple(hs + cs)


def gated_start(cell: str, params: dict, layers: int, batch: int, labels=None) -> tuple:
    """The stepping state before any token: zeros, or the labels' start states (eq. L2 and eq. 5)."""
    if labels is not None:
        state, _ = gated_label_start(cell, params, labels)
    else:
        state = GatedNetwork(cell, layers).start_state(params, batch)
    if cell == "lstm":
        return tuple(state[0]) + tuple(state[1])
    return tuple(state)
