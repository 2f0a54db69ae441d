"""What the training loop trains: a network's forward and backward on one chunk, and where a chunk starts.

The :class:`~scratchgen.nn.train.Trainer` knows nothing of recurrences, windows or attention. Every
deep model gives it a :class:`Network` (``model.network()``), plain functions of the parameters:

- ``forward(params, inputs) -> ((loss, state_T), cache)`` on one chunk, ``inputs`` = (x, y, mask,
  state[, dropout][, labels]): ids x and targets y of shape (B, T), the mask of counted targets (None:
  all), the state the chunk starts from (what the previous chunk of a running text left; None: a fresh
  start), an optional dropout ``(keep, rate)`` with ``keep`` of shape :meth:`dropout_shape`, and the
  label ids (B,) of a labelled model. The loss is the mean nats per counted target.
- ``backward(params, cache) -> (grads, _)``: the gradient of that loss for every parameter.
- ``start_state(params, B)``: the state of a fresh start (zeros for an RNN; None for a network that
  carries nothing from chunk to chunk).
- ``dropout_shape(params, x)``: the shape of the keep-mask of a chunk, or None without dropout.
- ``state_batch_axis``: the batch axis of the carried state (the batch axis of every input is 0), so
  that :mod:`scratchgen.nn.parallel` can cut a step into shards of rows without the network's help.

The validation losses (:meth:`stream_loss`, :meth:`sequences_loss`) are written once here, from
``forward`` and ``start_state``, for every network.
"""

from __future__ import annotations

import numpy as np

from .data import padded_batch, stream_array, stream_chunks

__all__ = ["Network", "RNNNetwork"]


class Network:
    """The interface the Trainer uses (see the module docstring); subclasses define the first two."""

    #: The batch axis of the carried state: 0 for a state (B, ...), as the MLP's window (B, N).
    state_batch_axis: int = 0

    def forward(self, params: dict, inputs: tuple):
        raise NotImplementedError

    def backward(self, params: dict, cache):
        raise NotImplementedError

    def start_state(self, params: dict, batch: int):
        """The state a fresh chunk starts from: None (nothing carried) unless the network says otherwise."""
        return None

    def dropout_shape(self, params: dict, x: np.ndarray) -> tuple[int, ...] | None:
        """Shape of a chunk's dropout keep-mask; None: the network has no dropout."""
        return None

    def stream_loss(self, params: dict, ids: np.ndarray, streams: int = 32, seq_len: int = 256) -> tuple[float, int]:
        """Mean nats per token of a running text, the state carried: (loss, number of targets)."""
        streams = max(1, min(streams, (len(ids) - 1) // 2))
        rows = stream_array(ids, streams)  # (B, n+1)
        state = self.start_state(params, streams)
        total, count = 0.0, 0
        for x, y in stream_chunks(rows, seq_len):
            (loss, state), _ = self.forward(params, (x, y, None, state))
            total += loss * y.size
            count += y.size
        return total / max(count, 1), count

    def sequences_loss(
        self, params: dict, sequences: list[np.ndarray], batch: int = 256, labels: np.ndarray | None = None
    ) -> tuple[float, int]:
        """Mean nats per token (``</s>`` counted) of separate sequences: (loss, number of targets).

        ``labels`` (a labelled network): the label id of each sequence, which then starts from its label's
        state and reads its label at every step (:mod:`scratchgen.nn.conditioning`).
        """
        order = np.argsort([len(s) for s in sequences], kind="stable")
        total, count = 0.0, 0
        for i in range(0, len(order), batch):
            rows = order[i : i + batch]
            x, y, m = padded_batch([sequences[j] for j in rows])
            if labels is None:
                (loss, _), _ = self.forward(params, (x, y, m, self.start_state(params, len(x))))
            else:  # state None: the labels' start states
                (loss, _), _ = self.forward(params, (x, y, m, None, None, labels[rows]))
            n = int(m.sum())
            total += loss * n
            count += n
        return total / max(count, 1), count


class RNNNetwork(Network):
    """The stacked RNN of :mod:`scratchgen.nn.layers`: the state is the hidden state (L, B, H), carried."""

    state_batch_axis = 1  # (L, B, H)

    def __init__(self, layers: int):
        self.layers = layers

    def forward(self, params: dict, inputs: tuple):
        from .layers import network_forward

        return network_forward(params, inputs)

    def backward(self, params: dict, cache):
        from .layers import network_backward

        return network_backward(params, cache)

    def start_state(self, params: dict, batch: int) -> np.ndarray:
        """Zeros of shape (L, B, H) in the parameters' dtype."""
        W = params["W_hh.0"]
        return np.zeros((self.layers, batch, W.shape[0]), dtype=W.dtype)  # (L, B, H)

    def dropout_shape(self, params: dict, x: np.ndarray) -> tuple[int, ...]:
        return (x.shape[0], x.shape[1], params["W_hh.0"].shape[0])  # (B, T, H): eq. (14) of layers
