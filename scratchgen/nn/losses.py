"""The loss of held-out text under the network: mean nats per token, the number validation reports.

Running text is read as parallel streams with the state carried from chunk to chunk (as in training,
:mod:`scratchgen.nn.data` eq. (1)); separate sequences as padded, masked batches (eq. (2)), each
starting from zeros. Both return the mean over every counted target and the count, so that losses of
several pieces can be pooled.
"""

from __future__ import annotations

import numpy as np

from .data import padded_batch, stream_array, stream_chunks
from .layers import network_forward

__all__ = ["stream_loss", "sequences_loss", "zeros_state"]


def zeros_state(params: dict, layers: int, batch: int) -> np.ndarray:
    """The hidden state of a fresh start: zeros of shape (L, B, H) in the parameters' dtype."""
    H = params["W_hh.0"].shape[0]
    return np.zeros((layers, batch, H), dtype=params["W_hh.0"].dtype)  # (L, B, H)


def stream_loss(params: dict, layers: int, ids: np.ndarray, streams: int = 32, seq_len: int = 256) -> tuple[float, int]:
    """Mean nats per token of a running text, state carried: (loss, number of targets)."""
    streams = max(1, min(streams, (len(ids) - 1) // 2))
    rows = stream_array(ids, streams)  # (B, n+1)
    h = zeros_state(params, layers, streams)  # (L, B, H)
    total, count = 0.0, 0
    for x, y in stream_chunks(rows, seq_len):
        (loss, h), _ = network_forward(params, (x, y, None, h))
        total += loss * y.size
        count += y.size
    return total / max(count, 1), count


def sequences_loss(
    params: dict, layers: int, sequences: list[np.ndarray], batch: int = 256, labels: np.ndarray | None = None
) -> tuple[float, int]:
    """Mean nats per token (``</s>`` counted) of separate sequences: (loss, number of targets).

    ``labels`` (a labelled network): the label id of each sequence, which then starts from its label's
    state and reads its label at every step (eqs. (L1)-(L2) of :mod:`scratchgen.nn.conditioning`).
    """
    order = np.argsort([len(s) for s in sequences], kind="stable")
    total, count = 0.0, 0
    for i in range(0, len(order), batch):
        rows = order[i : i + batch]
        x, y, m = padded_batch([sequences[j] for j in rows])
        if labels is None:
            (loss, _), _ = network_forward(params, (x, y, m, zeros_state(params, layers, len(x))))
        else:  # h0 None: the labels' start states
            (loss, _), _ = network_forward(params, (x, y, m, None, None, labels[rows]))
        n = int(m.sum())
        total += loss * n
        count += n
    return total / max(count, 1), count
