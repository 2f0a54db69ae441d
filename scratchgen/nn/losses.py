"""The loss of held-out text under the stacked RNN: mean nats per token, the number validation reports.

(The general form, for every network, is :class:`scratchgen.nn.network.Network`; these are its RNN
case under their historical names.)

Running text is read as parallel streams with the state carried from chunk to chunk (as in training,
:mod:`scratchgen.nn.data` eq. (1)); separate sequences as padded, masked batches (eq. (2)), each
starting from zeros. Both return the mean over every counted target and the count, so that losses of
several pieces can be pooled.
"""

from __future__ import annotations

import numpy as np

from .network import RNNNetwork

__all__ = ["stream_loss", "sequences_loss", "zeros_state"]


def zeros_state(params: dict, layers: int, batch: int) -> np.ndarray:
    """The hidden state of a fresh start: zeros of shape (L, B, H) in the parameters' dtype."""
    return RNNNetwork(layers).start_state(params, batch)  # (L, B, H)


def stream_loss(params: dict, layers: int, ids: np.ndarray, streams: int = 32, seq_len: int = 256) -> tuple[float, int]:
    """Mean nats per token of a running text under the stacked RNN, state carried: (loss, number of targets)."""
    return RNNNetwork(layers).stream_loss(params, ids, streams, seq_len)


def sequences_loss(
    params: dict, layers: int, sequences: list[np.ndarray], batch: int = 256, labels: np.ndarray | None = None
) -> tuple[float, int]:
    """Mean nats per token (``</s>`` counted) of separate sequences under the stacked RNN: see
    :meth:`scratchgen.nn.network.Network.sequences_loss`."""
    return RNNNetwork(layers).sequences_loss(params, sequences, batch, labels)
