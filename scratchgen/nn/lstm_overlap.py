r"""Two threads for one LSTM training step by overlap: the recurrence on one, the big products on the other.

Sharding (:mod:`scratchgen.nn.parallel`) gives each thread half the batch, so each runs the whole
recurrence, ~30 small NumPy calls a time step, on half-sized blocks: the calls cost nearly as much as
before and the two threads queue for the interpreter's lock between them. But only the recurrence is
sequential: the steps of eq. (L1)-(L5) of :mod:`scratchgen.nn.cells` forward and (L6)-(L10) backward.
Everything else is a large matrix product over many time steps at once, and NumPy releases the lock
inside it. So here the calling thread runs the whole recurrence of the whole batch, and a worker
thread computes the rest, a block of time steps [t0, t1) at a time, as soon as the recurrence has
produced what it needs:

- forward, for each block of the top layer's states, the output layer, the loss and its gradient
  (eq. (4)-(8) and (14) of :mod:`scratchgen.nn.layers`): the logits, the block's share of the loss,
  dY, its parts of dW_hy and db_y, and dH of the block; so the backward finds dH ready;
- backward, for each block of gate gradients da_t, its parts of eq. (L11)-(L12): h_{t-1}^T da_t,
  x_t^T da_t (or the one-hot rows' sums) and da_t W_xg^T.

Each of these is a sum over time steps, so a sum over the blocks. With N the counted targets of the
chunk and n_k those of block k, the mean loss and its gradient split as::

    loss = sum_k (n_k / N) loss_k,          dloss/dy_t = (m_t / N)(p_t - onehot(j_t))               (O1)
    dW = sum_k dW_k,  the parts of a product over t taken a block at a time                          (O2)

(eq. (O1) is eq. (P1) of parallel over blocks of time instead of shards of rows: ``softmax_ce_backward``
with d_loss = n_k / N gives each block's dY exactly eq. (7) of layers.) The parts are added in a fixed
order (first block first forward, last block first backward), whatever thread finished first, so a
step's numbers do not depend on timing; they differ from the one-thread step only by rounding (the
sums are grouped differently), which ``tests/nn/test_lstm_overlap.py`` checks.

The calling thread's work is then the recurrence alone, plus waiting for the last forward block's
output and the first backward block's products: with blocks of :data:`STEPS` steps, a fraction of one
block's work. Both threads call a one-thread BLAS (:func:`scratchgen.threads.one_blas_thread`).
"""

from __future__ import annotations

import numpy as np

from .cells import lstm_stack_backward, lstm_stack_forward
from .layers import (
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    softmax_ce_backward,
    softmax_ce_forward,
)

__all__ = ["STEPS", "output_block", "overlap_step"]

#: Time steps a block: smaller blocks leave less work at the two ends of the loop where the calling thread
#: waits, larger blocks fewer hand-overs and larger products.
STEPS = 8


def output_block(params: dict, H_block: np.ndarray, targets, mask, dropout, N: int):
    """The output layer, loss and gradient of one block of time (eq. (O1)): (loss share, grads, dH_block).

    H_block (B, tb, H) the top states of the block; targets, mask (B, tb) (mask may be None); dropout
    (keep (B, tb, H), rate) or None; N the counted targets of the whole chunk. grads: "W_hy", "b_y".
    """
    n = int(targets.size if mask is None else np.count_nonzero(mask))  # n_k
    if dropout is not None:
        H_block, drop = dropout_forward({}, (H_block, *dropout))  # eq. (14) of layers
    Y, out = linear_forward(params, H_block)  # (B, tb, V) eq. (4)
    loss, ce = softmax_ce_forward({}, (Y, targets, mask))  # the mean over the block's n_k targets
    share = n / N if N else 0.0
    _, (dY, _, _) = softmax_ce_backward({}, ce, share)  # (B, tb, V): (m_t / N)(p_t - onehot(j_t)), eq. (O1)
    grads, dH = linear_backward(params, out, dY)  # (B, tb, H)
    if dropout is not None:
        _, (dH, _, _) = dropout_backward({}, drop, dH)
    return loss * share, grads, dH


def overlap_step(net, params: dict, inputs: tuple, submit, steps: int = STEPS):
    """((loss, state_T), grads) of one chunk of a GatedNetwork("lstm"), with ``submit`` (a one-thread
    ``ThreadPoolExecutor.submit``) running the blocks' products (module docstring); the gradient of the
    carried-in state is dropped (truncated backpropagation through time, as the Trainer's step)."""
    targets, mask = inputs[1:3]
    dropout = inputs[4] if len(inputs) > 4 else None
    N = int(targets.size if mask is None else np.count_nonzero(mask))
    X, rnn_params, state, cache = net._inputs(params, inputs)
    outputs: list = []  # the futures of output_block, first block first

    def on_block(t0: int, t1: int, H_block: np.ndarray) -> None:
        block_mask = None if mask is None else mask[:, t0:t1]
        block_drop = None if dropout is None else (dropout[0][:, t0:t1], *dropout[1:])
        outputs.append(submit(output_block, params, H_block, targets[:, t0:t1], block_mask, block_drop, N))

    (_, hT, cT), rnn_cache = lstm_stack_forward(rnn_params, (X, state[0], state[1]), steps, on_block)
    g, (dX, dh0, dc0) = lstm_stack_backward(
        rnn_params, rnn_cache, (lambda k: outputs[k].result()[2], None, None), steps, submit
    )
    results = [f.result() for f in outputs]
    loss = sum(share for share, _, _ in results)  # eq. (O1), first block first
    grads = results[0][1]  # fresh arrays: the other blocks' parts are added into them, eq. (O2)
    for _, part, _ in results[1:]:
        for key in grads:
            grads[key] += part[key]
    grads.update(g)
    grads, _ = net._input_grads(params, cache, grads, dX, np.stack([dh0, dc0]))
    return (float(loss), np.stack([hT, cT])), grads
