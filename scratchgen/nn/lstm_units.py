r"""Two processes for one LSTM training step, the hidden units split between them.

The batch shards of :mod:`scratchgen.nn.process_shards` give each process half the rows, and every matrix
product of the recurrence becomes a product of 16 rows by a whole W_hg: OpenBLAS packs all of W_hg (1 MiB at
H 256, float32) for each product whatever the rows, so a half batch costs 0.58 of a whole one (session 23,
(16, 256) x (256, 1024) against (32, 256) x (256, 1024), one core). Here each process takes half of the *hidden
units* and all the rows instead: its products are a whole batch by half of W_hg, (32, 256) x (256, 512), which
took 0.46 of the whole product (125 against 269 us, /tmp/s24/mm2.py, session 24); what oneDNN's LSTM does with
its threads is the same kind of cut.

Part k of P = 2 owns the units U_k = [k n, (k + 1) n), n = H / P, and of every (., 4H) gate matrix the
columns J_k = {g H + u : g = 0 .. 3, u in U_k}, the four gates of its units. Eq. (L1)-(L12) of
:mod:`scratchgen.nn.cells` then split as::

    a_t[:, J_k] = x_t W_xg[:, J_k] + b_g[J_k] + h_{t-1} W_hg[:, J_k]      the whole h_{t-1}              (U1)
    (L2)-(L5), (L6)-(L9): elementwise on the columns J_k and units U_k, within the part                (U2)
    dh_{t-1}[:, U_k] = da_t W_hg[U_k, :]^T                               the whole da_t                 (U3)
    dW_hg[:, J_k] = sum_t h_{t-1}^T da_t[:, J_k];  db_g[J_k], dW_xg[:, J_k] likewise, within the part  (U4)

So at each step the parts exchange h_t (forward) and da_t (backward): each writes its columns into an
array both have mapped (a block of shared memory), then both wait until the other has written (one
barrier a step: a count in a flag each, a cache line apart, that the other polls). The output layer
(eq. (4)-(8) of :mod:`scratchgen.nn.layers`) is cut by rows instead, as eq. (P1)-(P2) of
:mod:`scratchgen.nn.parallel`: part k takes rows R_k of the batch, and its dH (all units) goes into
a shared array that the backward of both parts reads. In the shared array of da the columns are kept
part by part, J_0 then J_1, so that a part's gate gradients are one block of columns and (U4) is one
product; the rows of W_hg^T in (U3) are put in the same order.

Part 0 runs in the calling process, part 1 in a worker process (``python -m scratchgen.nn.lstm_units``,
started as those of process_shards are, and as cleanly gone: the shared blocks' names are removed once both
have mapped them). The calling process then assembles the gradients: a part's columns J_k of W_hg, b_g
and the table W_xg (or C W_xg, eq. (6) of :mod:`scratchgen.nn.gated`), and the sums of the two row parts
of W_hy and b_y, part 0's first: the numbers do not depend on timing, and they differ from the
one-process step only by rounding (sums grouped another way), which ``tests/nn/test_lstm_units.py``
checks in float64.

The barrier spins: a step of the recurrence is ~0.2 ms, and waking a sleeping process costs tens of
microseconds. After :data:`SPINS` polls a waiting part yields its core at each poll, so on a busy machine the
other part (or the other program) gets it. Polling a flag for data written by another process relies on
the processor keeping stores in order (x86-64 does); on other processors the step keeps the batch shards.

Served: one layer of an LSTM reading ids (one-hot, or an embedding folded into the table), without dropout
or labels, with an even H, at least two rows and enough work (:data:`scratchgen.nn.parallel.MIN_SHARD_WORK`).
Anything else takes the batch shards (:class:`~scratchgen.nn.process_shards.ProcessShards`).
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from typing import Any

import numpy as np

from ..threads import one_blas_thread
from .cells import (
    FACTOR_STEPS,
    _gate_products,
    _lstm_back_steps,
    _lstm_factors,
    _lstm_param_grads,
    _lstm_steps,
    time_blocks,
)
from .gated import folds_embedding
from .lstm_overlap import output_block
from .parallel import MIN_SHARD_WORK, parameter_count
from .process_shards import WorkerError, _layout, _receive_from, _send, _shared_block, _views, _worker_environment

__all__ = ["PARTS", "SPINS", "UnitSplit", "part_step", "unit_columns"]

#: The parts of the hidden units: the calling process and one worker.
PARTS = 2
#: Polls of the other part's flag before a waiting part starts yielding its core at each poll (about 0.1 us a poll).
SPINS = 20_000
_FAILED = -(2**62)  # a flag's value once its part has failed: the other stops waiting
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


class PartnerFailed(RuntimeError):
    """The other part failed or is gone while this one waited for it."""


class _Barrier:
    """Where the two parts meet, once a time step: each counts its arrivals in its own flag and waits until the
    other's count has reached its own. ``alive()`` says whether the other part's process still runs."""

    def __init__(self, flags: np.ndarray, me: int, alive):
        self.mine, self.other = flags[me], flags[1 - me]  # int64 (8,) each: a cache line of the shared block
        self.alive = alive
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        n = self.count
        self.mine[0] = n
        other = self.other
        for _ in range(SPINS):
            if other[0] >= n:
                return
        polls = 0
        while other[0] < n:
            if other[0] == _FAILED:
                raise PartnerFailed("the other part of the step failed")
            polls += 1
            if polls % 1024 == 0 and not self.alive():
                raise PartnerFailed("the other part's process has gone")
            if polls > 100_000:
                time.sleep(0.001)  # a long wait: something is wrong or the machine is very busy; stop burning a core
            else:
                os.sched_yield()

    def fail(self) -> None:
        """Tell the other part that this one will not come (it raises PartnerFailed where it waits)."""
        self.mine[0] = _FAILED


def unit_columns(H: int, k: int, parts: int = PARTS) -> np.ndarray:
    """J_k of eq. (U1): the columns of a (., 4H) gate matrix that hold the gates of part k's units.

    >>> unit_columns(4, 1)
    array([ 2,  3,  6,  7, 10, 11, 14, 15])
    """
    n = H // parts
    return (np.arange(4)[:, None] * H + np.arange(k * n, (k + 1) * n)).ravel()


def _columns(W: np.ndarray, k: int) -> np.ndarray:
    """The columns J_k of W (..., 4H), a view: the same as ``W[..., unit_columns(H, k)]``, without a gather."""
    n = W.shape[-1] // (4 * PARTS)
    return W.reshape(*W.shape[:-1], 4, PARTS, n)[..., k, :]  # (..., 4, n)


def _rows(B: int, k: int) -> slice:
    """R_k: the rows of the batch whose output layer part k computes."""
    return slice(k * B // PARTS, (k + 1) * B // PARTS)


def _part_params(params: dict, k: int, folded: bool) -> dict:
    """What part k reads: "W_x" the columns J_k of the table read by ids (W_xg.0, or C W_xg.0 when eq. (6) of
    gated folds the embedding), "b_g" its J_k, "W_hg" whole, "W_hy" and "b_y"."""
    W_x = _columns(params["W_xg.0"], k).reshape(params["W_xg.0"].shape[0], -1)  # a copy (V or E, 4n)
    return {
        "W_x": params["C"] @ W_x if folded else W_x,
        "b_g": _columns(params["b_g.0"], k).reshape(-1),
        "W_hg": params["W_hg.0"],
        "W_hy": params["W_hy"],
        "b_y": params["b_y"],
    }


def part_step(k: int, p: dict, ids, targets, mask, shared: dict, sync):
    """Part k's share of one training step: eq. (U1)-(U4), and the output layer of rows R_k.

    Parameters
    ----------
    k : 0 or 1
    p : dict, as :func:`_part_params` gives
    ids, targets, mask : (B, T) int, int and bool (or None)
    shared : dict of the arrays both parts have mapped: "Hs" (T + 1, B, H) with Hs[0] = h_0, "c0" (B, H),
        "dH" (T, B, H) and "dA" (T, B, 4H) (columns J_0 then J_1)
    sync : the barrier, called once a step forward and backward, and once between the two

    Returns
    -------
    (loss share, {"W_hg": (H, 4n), "b_g": (4n,), "W_xg": (V, 4n)} of the columns J_k, {"W_hy", "b_y"} of the
    rows R_k, c_T of the units U_k (B, n))
    """
    Hs, dHs, dA = shared["Hs"], shared["dH"], shared["dA"]
    T, B, H = dHs.shape
    n = H // PARTS
    units = slice(k * n, (k + 1) * n)
    dt = p["W_hg"].dtype
    neg_s = np.full(4 * n, -1.0, dtype=dt)  # the gate scale of lstm_forward, eq. (L2'), on the columns J_k
    neg_s[2 * n : 3 * n] = -2.0
    A, X_tm = _gate_products(p["W_x"], p["b_g"], ids, 4, neg_s)  # (4, T, B, n) eq. (U1), input part
    W_h = np.multiply(_columns(p["W_hg"], k).transpose(1, 0, 2), neg_s.reshape(4, 1, n))  # (4, H, n) gate blocks
    Cs = np.empty((T + 1, B, n), dtype=dt)
    Cs[0] = shared["c0"][:, units]
    TC = np.empty((T, B, n), dtype=dt)
    with np.errstate(over="ignore"):  # exp overflows to inf where a gate saturates at 0, as in lstm_forward
        _lstm_steps(A, W_h, Hs, Cs, TC, np.empty((4, B, n), dtype=dt), np.empty((B, n), dtype=dt), 0, T, units, sync)
    c_T = Cs[T].copy()

    R = _rows(B, k)  # the output layer of rows R_k, eq. (P1)-(P2) of parallel
    N = int(targets.size if mask is None else np.count_nonzero(mask))
    out = {"W_hy": p["W_hy"], "b_y": p["b_y"]}
    H_rows = np.swapaxes(Hs[1:, R], 0, 1)  # (B_k, T, H)
    loss, out_grads, dH = output_block(out, H_rows, targets[R], None if mask is None else mask[R], None, N)
    dHs[:, R] = np.swapaxes(dH, 0, 1)
    sync()  # both parts' rows of dH are written

    # (4H, n): W_hg[U_k, :]^T of eq. (U3), its rows in dA's order of columns, J_0 then J_1
    W_T = np.ascontiguousarray(p["W_hg"][units].reshape(n, 4, PARTS, n).transpose(2, 1, 3, 0)).reshape(4 * H, n)
    mine = dA[:, :, k * 4 * n : (k + 1) * 4 * n]  # (T, B, 4n): this part's gate gradients, a view
    dh, dc = np.zeros((B, n), dtype=dt), np.zeros((B, n), dtype=dt)  # truncated: nothing from later chunks
    dH_units = np.swapaxes(dHs[:, :, units], 0, 1)  # (B, T, n)
    work = (np.empty((B, n), dtype=dt),)
    for t0, t1 in reversed(time_blocks(T, FACTOR_STEPS)):
        _lstm_factors(A, Cs, TC, t0, t1)
        _lstm_back_steps(A, Cs, TC, W_T, dA, dh, dc, dH_units[:, t0:t1], work, t0, t1, mine, sync)  # (U2), (U3)
    grads, _ = _lstm_param_grads(p["W_x"], X_tm, Hs, mine, 0, T)  # eq. (U4)
    return loss, grads, out_grads, c_T


def _work_layout(B: int, T: int, H: int, V: int, dt: np.dtype) -> dict:
    """The shapes and dtypes of the step's shared arrays (part_step's ``shared``, the inputs, part 1's results)."""
    n = H // PARTS
    return {
        "Hs": ((T + 1, B, H), dt),
        "c0": ((B, H), dt),
        "dH": ((T, B, H), dt),
        "dA": ((T, B, 4 * H), dt),
        "ids": ((B, T), np.dtype(np.int64)),
        "targets": ((B, T), np.dtype(np.int64)),
        "mask": ((B, T), np.dtype(bool)),
        "W_hg": ((H, 4 * n), dt),  # part 1's results from here on
        "b_g": ((4 * n,), dt),
        "W_xg": ((V, 4 * n), dt),
        "W_hy": ((H, V), dt),
        "b_y": ((V,), dt),
        "c_T": ((B, n), dt),
    }


def _block_of(arrays: dict) -> tuple[list, str, dict]:
    """A new shared block laid out for ``arrays`` ({name: (shape, dtype)}): (layout, path, views)."""
    layout, size = _layout({key: np.empty(shape, dtype) for key, (shape, dtype) in arrays.items()})
    path, block = _shared_block(size)
    return layout, path, _views(block, layout)


def _mapped(layout: list, path: str, writable: bool) -> dict:
    """The views of a block another process made (``_block_of``)."""
    size = max(off + np.dtype(dt).itemsize * int(np.prod(shape, dtype=np.int64)) for _, shape, dt, off in layout)
    return _views(np.memmap(path, dtype=np.uint8, mode="r+" if writable else "r", shape=(size,)), layout)


def _serve(inp, out) -> None:
    """The worker's loop: first (the flags' path, the caller's pid); then for each ("step", params block, work
    block, masked, folded) part 1 of the step, its results into the work block and ("ok", loss share) back."""
    from ..allocator import reuse_freed_memory

    reuse_freed_memory()
    flags_path, caller = _receive_from(inp)
    flags = np.memmap(flags_path, dtype=np.int64, mode="r+", shape=(PARTS, 8)).view(np.ndarray)
    barrier = _Barrier(flags, 1, lambda: os.getppid() == caller)
    params = work = None
    _send(out, ("ready",))
    with one_blas_thread():
        while True:
            try:
                message = _receive_from(inp)
            except EOFError:  # the caller has gone
                break
            if message is None:
                break
            _, params_block, work_block, masked, folded = message
            try:
                if params_block is not None:
                    params = _mapped(params_block[0], params_block[1], writable=False)
                if work_block is not None:
                    work = _mapped(work_block[0], work_block[1], writable=True)
                assert params is not None and work is not None
                loss, grads, out_grads, c_T = part_step(
                    1,
                    _part_params(params, 1, folded),
                    work["ids"],
                    work["targets"],
                    work["mask"] if masked else None,
                    work,
                    barrier,
                )
                for key, value in (*grads.items(), *out_grads.items(), ("c_T", c_T)):
                    np.copyto(work[key], value)
                _send(out, ("ok", float(loss)))
            except PartnerFailed:
                _send(out, ("aborted",))
            except Exception:  # the caller raises it as WorkerError
                barrier.fail()
                _send(out, ("error", traceback.format_exc()))


class UnitSplit:
    """One LSTM training step in two processes, the hidden units split between them (module docstring); the
    steps it does not serve go to ``fallback`` (the batch shards).

    Use it as a context, as :class:`~scratchgen.nn.process_shards.ProcessShards`::

        with UnitSplit(net, ProcessShards(net)) as split:
            loss, state_T, grads = split.step(params, inputs)
    """

    def __init__(self, net, fallback, min_work: int | None = None):
        self.net = net
        self.fallback = fallback
        self.min_work = MIN_SHARD_WORK if min_work is None else min_work
        self.process: Any = None  # the worker's subprocess.Popen, with its pipes
        self.barrier: _Barrier | None = None
        self.params: tuple | None = None  # (layout, path, views) of the parameters' block
        self.work: tuple | None = None  # (key, layout, path, views) of the step's block

    def __enter__(self) -> UnitSplit:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker and drop the shared blocks; close the fallback."""
        process, self.process = self.process, None
        if process is not None:
            try:
                _send(process.stdin, None)
                process.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()
        self.barrier = self.params = self.work = None
        self.fallback.close()

    def serves(self, params: dict, inputs: tuple) -> bool:
        """Whether the step of ``inputs`` is split by units (module docstring), not given to the fallback."""
        ids = inputs[0]
        extra = [a for a in inputs[4:] if a is not None]  # dropout, labels
        H = params["W_hg.0"].shape[0] if "W_hg.0" in params else 0
        return (
            _X86
            and getattr(self.net, "cell", None) == "lstm"
            and getattr(self.net, "layers", 0) == 1
            and not extra
            and np.issubdtype(ids.dtype, np.integer)
            and ids.ndim == 2
            and ids.shape[0] >= PARTS
            and H >= PARTS
            and H % PARTS == 0
            and ("C" not in params or folds_embedding(params, ids, None))
            and ids.shape[0] * parameter_count(params) >= self.min_work
        )

    def _start(self) -> None:
        """The worker process and the flags of the barrier (once a run)."""
        if self.process is not None:
            return
        path, block = _shared_block(PARTS * 8 * 8)
        try:
            flags = block.view(np.int64).reshape(PARTS, 8).view(np.ndarray)
            flags[...] = 0
            process = subprocess.Popen(
                [sys.executable, "-m", "scratchgen.nn.lstm_units"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=_worker_environment(),
            )
            self.process = process
            _send(process.stdin, (path, os.getpid()))
            reply = self._receive()
            if reply[0] != "ready":
                raise WorkerError(f"the unit split's worker process did not start:\n{reply[1]}")
        except BaseException:
            self.close()
            raise
        finally:
            os.unlink(path)  # the mappings stay; the name goes at once
        self.barrier = _Barrier(flags, 0, lambda: process.poll() is None)

    def _receive(self) -> tuple:
        assert self.process is not None
        try:
            return _receive_from(self.process.stdout)
        except (EOFError, ValueError) as exc:
            return ("error", f"the worker process ended without an answer ({exc!r})")

    def _blocks(self, params: dict, B: int, T: int):
        """The shared blocks of this step (new ones when the parameters' layout or the chunk's shape changed),
        and what the worker must be sent of them (None: it has them)."""
        send_params = send_work = None
        layout, _ = _layout(params)
        if self.params is None or self.params[0] != layout:
            layout, path, views = _block_of({k: (v.shape, v.dtype) for k, v in params.items()})
            self.params = (layout, path, views)
            send_params = (layout, path)
        W = params["W_hg.0"]
        key = (B, T, W.shape[0], params["W_hy"].shape[1], W.dtype.str)
        if self.work is None or self.work[0] != key:
            layout, path, views = _block_of(_work_layout(B, T, W.shape[0], params["W_hy"].shape[1], W.dtype))
            self.work = (key, layout, path, views)
            send_work = (layout, path)
        return send_params, send_work

    def step(self, params: dict, inputs: tuple):
        """(loss, state_T, grads) of one chunk, as :meth:`ProcessShards.step`."""
        if not self.serves(params, inputs):
            return self.fallback.step(params, inputs)
        ids, targets, mask, state = inputs[:4]
        B, T = ids.shape
        self._start()
        assert self.process is not None and self.barrier is not None
        send_params, send_work = self._blocks(params, B, T)
        paths = [block[1] for block in (send_params, send_work) if block is not None]
        try:
            shared_params, work = self.params[2], self.work[3]  # type: ignore[index]
            for key, value in params.items():
                np.copyto(shared_params[key], value)
            np.copyto(work["ids"], ids)
            np.copyto(work["targets"], targets)
            if mask is not None:
                np.copyto(work["mask"], mask)
            H = params["W_hg.0"].shape[0]
            if state is None:
                work["Hs"][0] = 0.0
                work["c0"][...] = 0.0
            else:
                np.copyto(work["Hs"][0], state[0, 0])
                np.copyto(work["c0"], state[1, 0])
            folded = "C" in params
            try:
                _send(self.process.stdin, ("step", send_params, send_work, mask is not None, folded))
            except (BrokenPipeError, OSError):
                raise WorkerError("the unit split's worker process is gone") from None
            try:
                loss, grads, out_grads, c_T = part_step(
                    0, _part_params(params, 0, folded), ids, targets, mask, work, self.barrier
                )
            except PartnerFailed:
                reply = self._receive()
                raise WorkerError(f"the unit split's worker process failed:\n{reply[-1]}") from None
            reply = self._receive()
            if reply[0] != "ok":
                raise WorkerError(f"the unit split's worker process failed:\n{reply[-1]}")
        except BaseException:
            if self.barrier is not None:
                self.barrier.fail()
            self.close()
            raise
        finally:
            for path in paths:
                try:
                    os.unlink(path)  # the worker has answered (or is gone): its mapping stays, the name goes
                except FileNotFoundError:
                    pass
        return self._assemble(params, work, (loss, grads, out_grads, c_T), float(reply[1]), H)

    def _assemble(self, params: dict, work: dict, mine: tuple, loss_1: float, H: int):
        """(loss, state_T, grads) from part 0's results and part 1's (in the work block)."""
        loss_0, grads_0, out_0, c_T0 = mine
        dt = params["W_hg.0"].dtype
        grads = {"W_hy": out_0["W_hy"] + work["W_hy"], "b_y": out_0["b_y"] + work["b_y"]}  # part 0 first
        for key in ("W_hg", "b_g", "W_xg"):  # W_xg: of the table read by ids (V, 4H), folded or not
            whole = np.empty(grads_0[key].shape[:-1] + (4 * H,), dtype=dt)
            _columns(whole, 0)[...] = grads_0[key].reshape(*whole.shape[:-1], 4, -1)
            _columns(whole, 1)[...] = work[key].reshape(*whole.shape[:-1], 4, -1)
            grads[f"{key}.0"] = whole
        cache = {"labelled": False, "fold": True} if "C" in params else {"labelled": False}
        grads, _ = self.net._input_grads(params, cache, grads, None, None)  # the table's gradient to C, W_xg.0
        h_T = work["Hs"][-1].copy()
        c_T = np.concatenate([c_T0, work["c_T"]], axis=1)
        return loss_0 + loss_1, np.stack([h_T, c_T])[:, None], grads


if __name__ == "__main__":  # the worker: the protocol on stdin/stdout; anything printed goes to stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the caller stops the worker
    _stdin, _stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr
    _serve(_stdin, _stdout)
