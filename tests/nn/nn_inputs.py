"""Small networks of every kind and chunks of inputs for them, as the Trainer builds them: shared by the tests
that compare one way of computing a training step with another (test_parallel.py, test_lstm_overlap.py)."""

from __future__ import annotations

import numpy as np

from scratchgen.nn.conditioning import input_label_width, label_params
from scratchgen.nn.gated import GatedNetwork, gated_label_params, gated_label_width, init_gated_params
from scratchgen.nn.mlp import MLPNetwork, init_mlp_params, label_mlp_params
from scratchgen.nn.network import RNNNetwork
from scratchgen.nn.optim import init_params
from scratchgen.nn.transformer import TransformerNetwork, init_transformer

V, H, E, L, C = 7, 5, 4, 2, 3  # vocabulary, hidden, embedding, layers, labels
KINDS = ("tanh", "gru", "lstm", "mlp", "transformer")


def network(kind: str, labelled: bool, rng: np.random.Generator, L: int = L, E: int | None = E):
    """A small network of each kind and its parameters (every table, the label ones too, nonzero): ``L`` layers
    of a recurrent one, embedding ``E`` (None, one-hot inputs: the recurrent ones only)."""
    if kind == "tanh":
        net, p = RNNNetwork(L), init_params(V, H, L, E, rng)
        if labelled:
            p.update(label_params(C, input_label_width(V, H, E), H, L))
    elif kind in ("gru", "lstm"):
        net, p = GatedNetwork(kind, L), init_gated_params(kind, V, H, L, E, rng)
        if labelled:
            p.update(gated_label_params(kind, C, gated_label_width(V, E), H, L))
    elif kind == "mlp":
        net, p = MLPNetwork(3), init_mlp_params(V, 3, E, H, rng)
        if labelled:
            p.update(label_mlp_params(C, E, H, seed=0))
    else:
        net, p = TransformerNetwork(2), init_transformer(V, E, 2, 6, rng, labels=C if labelled else 0)
    return net, {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in p.items()}


def chunk_inputs(net, params, kind, B, T, labelled, masked, dropout, carried, rng) -> tuple:
    """(x, y, mask, state[, dropout][, labels]) of a chunk, as the Trainer builds them."""
    x, y = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))
    mask = (rng.random((B, T)) < 0.7) if masked else None
    state = None
    if carried and kind in ("tanh", "gru", "lstm"):
        state = rng.normal(size=net.start_state(params, B).shape)
    elif carried and kind == "mlp":
        state = rng.integers(0, V, size=(B, 3))
    elif not labelled:
        state = net.start_state(params, B)
    inputs: tuple = (x, y, mask, state)
    shape = net.dropout_shape(params, x) if dropout else None
    inputs += (None if shape is None else (rng.random(shape) >= 0.3, 0.3),)
    if labelled:
        inputs += (rng.integers(0, C, size=B),)
    return inputs
