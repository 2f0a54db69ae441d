r"""The second core for one sequence of layers: weight gradients computed beside the backward pass.

A linear map Y = X W + b has three gradients in the backward pass::

    dX = dY W^T                  needed at once: the layer below waits for it        (O1)
    dW = X^T dY,  db = sum dY    needed only by the optimiser, after the whole pass   (O2)

(O1) is the critical path of the backward pass, layer after layer; (O2) is as much work again (for
a square W, the same number of multiply-adds) and nothing waits for it until the step's end. So a
backward pass can hand every (O2) to a second thread and go on with (O1) in its own: the two run on
two cores at once, because NumPy releases the interpreter's lock inside its matrix products and
reductions (each thread calls a one-thread BLAS, :mod:`scratchgen.threads`). This is *overlap*; the
other use of the second core, *shards* (:mod:`scratchgen.nn.parallel`), cuts the batch instead and
pays the per-call costs of Python twice: it wins when each shard's products are large, overlap when
they are small (a Transformer at makemore's size).

The forward pass has no such spare work, but each sequence's attention and each row's MLP are
computed apart from the others: with two threads, the forward cuts the attention into blocks of the
batch (two halves at makemore's size) and the MLP into blocks of rows, half of the blocks on each
thread (:func:`split`); the backward does the same with the attention's dO, eq. (A16)-(A18) and dX and
with the MLP's dG, GELU' and dX, beside the weight gradients.

A piece of the network takes a ``defer`` argument, a function ``defer(fn, *args)``:

- :func:`run_now` (the default) returns ``fn(*args)``: the step is exactly the one-thread step;
- :class:`Overlap` submits ``fn(*args)`` to its thread and returns a :class:`~concurrent.futures.Future`.

A piece that defers a task returning several arrays names them with :func:`part` (the array itself
after :func:`run_now`, a :class:`Pending` after :class:`Overlap`), and the caller at the top of the
pass turns the gradients into arrays with :func:`resolve`. The arrays handed over must not be written
afterwards by the pass (none is: every buffer the pass writes in place is one it has just made).

The numbers: the deferred gradients are the same function of the same arrays, so the same bits; the
blocks of the forward are matrix products of some of the rows, which a BLAS may round otherwise than the
product of all of them (measured: float32 gradients within a relative 1e-6 of one thread's). Whoever
computes a block, it is the same block, so two threads give the same bits at every run (the tests check
both).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

__all__ = ["run_now", "part", "Pending", "resolve", "split", "Overlap"]


def run_now(fn, *args):
    """``defer`` of one thread: ``fn(*args)``, now."""
    return fn(*args)


class Pending:
    """Item ``index`` of the tuple a deferred task will return (:meth:`result` waits for it)."""

    __slots__ = ("future", "index")

    def __init__(self, future: Future, index: int):
        self.future, self.index = future, index

    def result(self) -> np.ndarray:
        return self.future.result()[self.index]


def part(value, index: int):
    """Item ``index`` of a task's tuple: at once after :func:`run_now`, a :class:`Pending` after :class:`Overlap`."""
    return Pending(value, index) if isinstance(value, Future) else value[index]


def resolve(grads: dict) -> dict:
    """The gradients with every :class:`Pending` (or Future) replaced by its array, the keys in their order."""
    return {k: v.result() if isinstance(v, (Pending, Future)) else v for k, v in grads.items()}


def _run_all(fn, pieces) -> None:
    for args in pieces:
        fn(*args)


def split(defer, fn, pieces: list) -> None:
    """``fn(*args)`` for every ``args`` of ``pieces`` (each writes its own part of the outputs, nothing else).

    With :func:`run_now`, one after another. With an :class:`Overlap`, the second half of the pieces is
    handed to the worker while this thread does the first half; if the worker has not started it by
    then (it is busy with weight gradients), this thread takes it back and does it too. Each piece is the
    same computation whoever runs it, so the numbers never depend on which thread ran it.
    """
    if not isinstance(defer, Overlap) or len(pieces) < 2:
        _run_all(fn, pieces)
        return
    half = (len(pieces) + 1) // 2
    rest = defer(_run_all, fn, pieces[half:])
    _run_all(fn, pieces[:half])
    if rest.cancel():  # still queued: the worker is busy, do it here
        _run_all(fn, pieces[half:])
    else:
        rest.result()


def _with_errstate(err: dict, fn, args):
    with np.errstate(**err):  # the submitter's floating-point settings (they are per thread)
        return fn(*args)


class Overlap:
    """``defer`` on a thread of its own: tasks run one after another, in the order they were submitted.

    Use it as a context (the thread lives inside)::

        with Overlap() as defer:
            grads = resolve(network_backward(params, cache, defer=defer))

    Or wrap a pool that exists already (``Overlap(pool)``, one worker: the order of the tasks is then
    the order of submission, which keeps every sum in a fixed order).
    """

    def __init__(self, pool: ThreadPoolExecutor | None = None):
        self.pool, self._own = pool, pool is None

    def __enter__(self) -> Overlap:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scratchgen-overlap")
        return self

    def __exit__(self, *exc) -> None:
        if self._own and self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def __call__(self, fn, *args) -> Future:
        assert self.pool is not None, "use Overlap as a context: with Overlap() as defer: ..."
        return self.pool.submit(_with_errstate, dict(np.geterr()), fn, args)
