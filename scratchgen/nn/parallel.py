r"""Both cores for one training step: the batch cut into shards, each shard's forward and backward in a thread.

Every network's loss is a mean over the counted targets of a chunk, and every row of a chunk (a stream
or a sequence) is computed independently of the others. So the rows can be cut into k shards
S_1 .. S_k, fixed slices of the batch axis, and each shard's loss and gradients computed apart. With
n_s the number of counted targets of shard s (its mask's sum, or rows * T without a mask) and
N = n_1 + ... + n_k::

    loss = sum_s (n_s / N) loss_s                                  the mean over all counted targets   (P1)
    dloss/dtheta = sum_s (n_s / N) dloss_s/dtheta                  the gradient is linear in the loss  (P2)
    state_T = concat_s state_T(s) along the state's batch axis     rows never mix                      (P3)

A shard with nothing counted (n_s = 0: only padding) has loss 0 and zero gradients, and weight 0.
The batch axis of every input is 0: ids x, targets y and the mask (B, T), the dropout keep-mask
(B, T, ...), the label ids (B,); that of the carried state is the network's ``state_batch_axis``
(1 for an RNN's (L, B, H), -2 for a GRU's (L, B, H) and an LSTM's (2, L, B, H), 0 for the MLP's
window (B, N)). The dropout mask of the whole batch is drawn before the split, so a run's random
numbers do not depend on k.

Why Python threads: NumPy releases the interpreter's lock inside its matrix products and ufunc
loops, so two threads, each calling a one-thread BLAS on half the rows, run on two cores at once. A
threaded BLAS would split each small product itself, and pay a synchronisation for each of them
(its waiting threads spin, and on a busy machine they spin against the work: see
:mod:`scratchgen.threads`); here the threads meet once a step. The first shard runs in the calling
thread, the others in a pool of k - 1 threads kept for the whole run.

Deterministic: the shard boundaries depend only on B and k (:func:`shard_bounds`), and the sums
(P1)-(P2) are taken in the order s = 1 .. k whatever thread finishes first. With k = 1 nothing is
cut: the step is exactly the network's forward and backward. Different k give the same numbers up to
rounding (the sums over the rows are taken in another order); a test checks that to 1e-12 in float64.

The plain version of the same step is :func:`sharded_step_reference`: the shards one after another.
A network that declares ``overlaps`` (the Transformer) and gets one shard uses the second thread the
other way, :mod:`scratchgen.nn.overlap`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..threads import one_blas_thread
from .overlap import Overlap, run_now

__all__ = [
    "MIN_SHARD_ROWS",
    "MIN_SHARD_WORK",
    "parameter_count",
    "DataParallel",
    "shard_bounds",
    "shard_inputs",
    "combine",
    "sharded_step_reference",
]

#: Fewest rows a shard gets.
MIN_SHARD_ROWS = 4
#: Least work a shard must have, in rows x parameters (each weight is used about once a row and a step):
#: below it the per-step costs of Python and of handing the interpreter's lock between the threads
#: outweigh the second core. Measured (benchmarks/bench_nn.py, deep_gated.py, deep_transformer.py): a GRU
#: at H 128 (~0.1 M parameters, 16 rows a shard) and the tanh RNN at H 256 lose with two threads; on an idle
#: machine the GRU and the LSTM at H 256 gained 1.2x, the RNN at H 512 1.38x, and the Transformer at
#: makemore's size (0.2 M parameters) only 1.06x with a limit of 1 M instead (41.4 against 43.9 ms); so it is a
#: judgement from those runs, not a measured break-even.
MIN_SHARD_WORK = 4_000_000


def shard_bounds(B: int, k: int, n_params: int | None = None, min_work: int | None = None) -> list[tuple[int, int]]:
    """The row slices [start, stop) of at most k shards of a batch of B rows, each of >= MIN_SHARD_ROWS
    rows and >= min_work / n_params rows (a batch too small for two shards is one shard); the first
    B mod k shards get one row more. ``n_params`` None: no work limit; ``min_work`` None: MIN_SHARD_WORK.

    >>> shard_bounds(10, 2), shard_bounds(11, 2), shard_bounds(5, 2), shard_bounds(32, 2, n_params=100_000)
    ([(0, 5), (5, 10)], [(0, 6), (6, 11)], [(0, 5)], [(0, 32)])
    """
    min_work = MIN_SHARD_WORK if min_work is None else min_work
    least = MIN_SHARD_ROWS if n_params is None else max(MIN_SHARD_ROWS, -(-min_work // max(n_params, 1)))
    k = max(1, min(k, B // least))
    size, extra = divmod(B, k)
    bounds, start = [], 0
    for s in range(k):
        stop = start + size + (s < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def _rows(a, start: int, stop: int, axis: int = 0):
    """Rows start:stop of ``a`` along ``axis`` (None stays None)."""
    if a is None:
        return None
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, stop)
    return a[tuple(index)]


def shard_inputs(inputs: tuple, start: int, stop: int, state_axis: int) -> tuple:
    """One shard's inputs (x, y, mask, state[, dropout][, labels]): rows start:stop of each batch axis."""
    x, y, mask, state = inputs[:4]
    shard: tuple = (_rows(x, start, stop), _rows(y, start, stop), _rows(mask, start, stop))
    shard += (_rows(state, start, stop, state_axis),)
    if len(inputs) > 4:
        dropout = inputs[4]
        shard += (None if dropout is None else (_rows(dropout[0], start, stop), dropout[1]),)
    if len(inputs) > 5:
        shard += (_rows(inputs[5], start, stop),)
    return shard


def _counted(inputs: tuple) -> int:
    """n_s: the counted targets of a shard (its mask's sum, else all of y)."""
    y, mask = inputs[1], inputs[2]
    return int(y.size if mask is None else np.count_nonzero(mask))


def combine(results: list, counts: list[int], state_axis: int):
    """eq. (P1)-(P3): the shards' ((loss, state_T), grads), in shard order -> (loss, state_T, grads)."""
    N = sum(counts)
    weights = [n / N if N else 0.0 for n in counts]
    loss = sum(w * r[0][0] for w, r in zip(weights, results))  # eq. (P1)
    grads = {}
    for key in results[0][1]:
        total = results[0][1][key] * weights[0]  # eq. (P2), summed in shard order
        for w, r in zip(weights[1:], results[1:]):
            total += r[1][key] * w
        grads[key] = total
    states = [r[0][1] for r in results]
    state_T = None if states[0] is None else np.concatenate(states, axis=state_axis)  # eq. (P3)
    return float(loss), state_T, grads


def parameter_count(params: dict) -> int:
    """The number of parameters: the measure of a row's work in :func:`shard_bounds`."""
    return sum(v.size for v in params.values())


def _forward_backward(net, params: dict, inputs: tuple):
    """((loss, state_T), grads) of one shard."""
    out, cache = net.forward(params, inputs)
    grads, _ = net.backward(params, cache)
    return out, grads


def sharded_step_reference(net, params: dict, inputs: tuple, k: int, min_work: int | None = None):
    """The sharded step written plainly, the shards one after another: (loss, state_T, grads)."""
    axis = getattr(net, "state_batch_axis", 0)
    bounds = shard_bounds(inputs[0].shape[0], k, parameter_count(params), min_work)
    shards = [shard_inputs(inputs, a, b, axis) for a, b in bounds]
    results = [_forward_backward(net, params, s) for s in shards]
    return combine(results, [_counted(s) for s in shards], axis)


class DataParallel:
    """The forward and backward of a :class:`~scratchgen.nn.network.Network` on k shards, in k threads.

    Use it as a context (the pool of k - 1 threads lives inside), and call :meth:`step`::

        with DataParallel(net, threads=2) as parallel:
            loss, state_T, grads = parallel.step(params, inputs)

    Parameters
    ----------
    net : Network
        Its ``forward``/``backward`` and ``state_batch_axis`` (module docstring).
    threads : int
        k, the most shards of a step (a small batch or network gets fewer: :func:`shard_bounds`); 1: no threads.
    min_work : int or None
        The least rows x parameters of a shard (None: MIN_SHARD_WORK).
    """

    def __init__(self, net, threads: int = 1, min_work: int | None = None):
        self.net = net
        self.threads = threads
        self.min_work = min_work
        self.axis = getattr(net, "state_batch_axis", 0)
        self.pool: ThreadPoolExecutor | None = None
        self.processes: Any = None  # ProcessShards (nn/process_shards.py) if the network has shards_in_processes

    def __enter__(self) -> DataParallel:
        if self.threads > 1:
            self.pool = ThreadPoolExecutor(max_workers=self.threads - 1, thread_name_prefix="scratchgen-shard")
            if getattr(self.net, "shards_in_processes", False):
                from .process_shards import ProcessShards

                self.processes = ProcessShards(self.net, self.threads, self.min_work)
        return self

    def __exit__(self, *exc) -> None:
        if self.processes is not None:
            self.processes.close()
            self.processes = None
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    @property
    def defer(self):
        """What the optimiser may hand work to (nn/overlap.py): the pool's thread, or none (one thread)."""
        return run_now if self.pool is None else Overlap(self.pool)

    def step(self, params: dict, inputs: tuple):
        """(loss, state_T, grads) of one chunk: eq. (P1)-(P3) over the shards, or the network itself for one."""
        if self.processes is not None:  # the LSTM: the shards in processes, nn/process_shards.py
            with one_blas_thread():
                return self.processes.step(params, inputs)
        if self.pool is not None and getattr(self.net, "overlaps_recurrence", False):  # the LSTM: nn/lstm_overlap.py
            with one_blas_thread():
                (loss, state_T), grads = self.net.overlap_step(params, inputs, self.pool.submit)
            return loss, state_T, grads
        bounds = shard_bounds(inputs[0].shape[0], self.threads, parameter_count(params), self.min_work)
        if len(bounds) == 1 and self.pool is not None and getattr(self.net, "overlaps", False):
            # too little work for shards: the second thread computes the weight gradients beside the
            # backward pass and half of each block's forward instead (nn/overlap.py)
            defer = Overlap(self.pool)
            with one_blas_thread():
                (loss, state_T), cache = self.net.forward(params, inputs, defer=defer)
                grads, _ = self.net.backward(params, cache, defer=defer)
            return loss, state_T, grads
        if len(bounds) == 1 or self.pool is None:
            (loss, state_T), grads = _forward_backward(self.net, params, inputs)
            return loss, state_T, grads
        shards = [shard_inputs(inputs, a, b, self.axis) for a, b in bounds]
        # the BLAS is limited to one thread by the caller's thread (a process-wide setting), so that the
        # shards' threads never start BLAS threads of their own
        with one_blas_thread():
            futures = [self.pool.submit(_forward_backward, self.net, params, s) for s in shards[1:]]
            first = _forward_backward(self.net, params, shards[0])
            results = [first] + [f.result() for f in futures]
        return combine(results, [_counted(s) for s in shards], self.axis)
