r"""The shards of :mod:`scratchgen.nn.parallel` in worker *processes*: two cores without the interpreter's lock.

The sharded step (eq. (P1)-(P3) of :mod:`scratchgen.nn.parallel`) gives each thread half the batch. NumPy
releases the interpreter's lock inside each call, but the LSTM's recurrence is ~20 small NumPy calls a time
step (:mod:`scratchgen.nn.cells`), and between two calls a thread needs the lock back: two threads hand it
to each other thousands of times a chunk, and each hand-over can wait for the other thread to be scheduled.
Measured by CPU time (session 21, LSTM H 256, T 64, E 64), a shard of 16 rows costs 0.54 of a 32-row step, so two
shards on two cores could run 1.85x one thread; two threads reached 1.25x (session 20, idle: 30.1k against 23.6k
chars/s). With the shards in processes (session 21, 20:34-20:38 UTC, a machine loaded 4-6 by other work, four
interleaved rounds), the calling process spent 69-75 ms of CPU a chunk of 32 x 64 and the worker 66-72, where one
thread spent 106-130: a critical path of 0.53-0.68 of one thread. The wall-clock gain on an idle machine is the
row of ``python -m benchmarks.deep_gated``. Session 22 (23:20 UTC, 60 steps, /tmp scripts of helper lstm3): a
16-row shard alone costs 39-44 ms of CPU at best and 54 ms at the median while the other shard runs on the other
core; session 24 measured the same best and median (40-41 and 53 ms) alone and beside a busy core, so the gap is
this machine's noise, not the cores sharing cache and memory. The caller's part that nothing overlaps (copying
the parameters and sending, combining, clipping, Adam) is about 2.3 ms a step: the pair reaches about 1.4-1.5x
one thread. Splitting the hidden units between the processes instead of the batch was built and measured in
session 24 and was no faster (README, "What is not done yet").

Here shard 1 .. k - 1 run in worker processes, each with its own interpreter and lock, and shard 0 in the
calling process. Per step the caller copies the parameters into a shared block of memory (the workers read
them there), sends each worker its shard's inputs through a pipe (a few KB of JSON and raw arrays, no pickle),
runs its own shard, and reads each worker's loss and carried state from the pipe and its gradients from a shared
block of its own. The
combination is :func:`scratchgen.nn.parallel.combine`, in shard order, so the numbers are those of the
threaded sharded step (the same functions on the same rows) and do not depend on timing.

Costs: the workers start once per run, about a second: each is a fresh interpreter,
``python -m scratchgen.nn.process_shards`` with this copy of scratchgen first on its path (not a fork of a
process that has BLAS threads, and not multiprocessing's ``spawn``, which re-runs the caller's main script).
Per step: one copy of the parameters and of each worker's gradients (a few hundred microseconds at H 256)
and a round trip through a pipe. The shared blocks are files in /dev/shm whose names are removed as soon as
both sides have mapped them, so nothing is left behind whatever way the run ends; a worker whose caller
has gone reads the end of its pipe and exits, and ignores Ctrl-C (the caller stops it).

The plain version of the same step is :func:`scratchgen.nn.parallel.sharded_step_reference` (the shards
one after another); ``tests/nn/test_process_shards.py`` checks the two agree.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

from .parallel import _counted, _forward_backward, combine, parameter_count, shard_bounds, shard_inputs

__all__ = ["ProcessShards", "WorkerError"]

_ALIGN = 64  # bytes: each array of a shared block starts on a cache line


class WorkerError(RuntimeError):
    """A worker process failed; the message holds its traceback."""


def _layout(params: dict) -> tuple[list, int]:
    """[(key, shape, dtype str, byte offset)] of the arrays of ``params`` in one block, and its size in bytes."""
    layout, offset = [], 0
    for key, value in params.items():
        layout.append((key, tuple(value.shape), value.dtype.str, offset))
        offset += -(-value.nbytes // _ALIGN) * _ALIGN
    return layout, max(offset, _ALIGN)


def _views(block: np.ndarray, layout: list) -> dict:
    """The arrays of ``layout`` as views into the shared block ``block`` (uint8; no copy), plain ndarrays (not
    np.memmap: NumPy then calls no Python hooks of the subclass in each operation on them)."""
    block = block.view(np.ndarray)
    views = {}
    for key, shape, dtype, offset in layout:
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        views[key] = block[offset : offset + count * dt.itemsize].view(dt).reshape(shape)
    return views


def _shared_block(size: int) -> tuple[str, np.ndarray]:
    """A new file of ``size`` bytes in memory (/dev/shm where there is one) and its mapping."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
    fd, path = tempfile.mkstemp(prefix="scratchgen-shard-", dir=folder)
    os.close(fd)
    return path, np.memmap(path, dtype=np.uint8, mode="w+", shape=(size,))


def _worker_environment() -> dict:
    """The caller's environment, with this copy of scratchgen first on the path (the worker runs the same code
    whatever the working directory) and one BLAS thread."""
    here = str(Path(__file__).resolve().parents[2])  # the folder that holds the scratchgen package
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    threads = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return {**os.environ, "PYTHONPATH": path, **threads}


# --- messages on the pipes: JSON and raw arrays, no pickle ---------------------------------------------------
#
# A message is a value built of None, bool, int, float, str, tuples, lists, dicts with str keys and NumPy arrays
# (or scalars). It goes as the 8-byte length of a JSON text, the JSON text, then the bytes of each array in order:
# in the JSON an array is {"a": [dtype, shape]}, a tuple {"t": [...]}, a dict {"d": {...}}, a NumPy scalar an array
# of shape (). Reading it back runs no code, as a model file's reading does not (scratchgen/io.py).


def _encode(value, arrays: list):
    """The JSON form of ``value``; its arrays appended to ``arrays`` (C-contiguous)."""
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)  # shape () for a scalar (np.ascontiguousarray would give (1,))
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        if array.dtype.hasobject:
            raise TypeError("an array of Python objects cannot be sent to a worker")
        arrays.append(array)
        return {"a": [array.dtype.str, list(array.shape), isinstance(value, np.generic)]}
    if isinstance(value, tuple):
        return {"t": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        return {"d": {str(k): _encode(v, arrays) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a {type(value).__name__} cannot be sent to a worker")


def _send(stream, message) -> None:
    """Write ``message`` to ``stream`` (see above) and flush it."""
    arrays: list = []
    text = json.dumps(_encode(message, arrays)).encode("utf-8")
    stream.write(len(text).to_bytes(8, "little") + text)
    for array in arrays:
        stream.write(array.reshape(-1).view(np.uint8).data)
    stream.flush()


def _read_exactly(stream, n: int) -> bytearray:
    data = bytearray(n)
    view, got = memoryview(data), 0
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            raise EOFError("the pipe ended inside a message")
        got += k
    return data


def _receive_from(stream):
    """The next message of ``stream``; EOFError at its end."""
    length = _read_exactly(stream, 8)
    skeleton = json.loads(_read_exactly(stream, int.from_bytes(length, "little")).decode("utf-8"))

    def decode(value):
        if isinstance(value, list):
            return [decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "t" in value:
            return tuple(decode(v) for v in value["t"])
        if "d" in value:
            return {k: decode(v) for k, v in value["d"].items()}
        dtype, shape, scalar = np.dtype(value["a"][0]), tuple(value["a"][1]), value["a"][2]
        if dtype.hasobject:
            raise ValueError("a worker message holds an array of Python objects")
        count = int(np.prod(shape, dtype=np.int64))
        array = np.frombuffer(_read_exactly(stream, count * dtype.itemsize), dtype=dtype).reshape(shape)
        return array[()] if scalar else array

    return decode(skeleton)  # arrays are read in the order _encode met them: the same walk


def _spec(net) -> dict:
    """What a worker needs to build the same network: its class and its constructor's arguments (JSON)."""
    return {"module": type(net).__module__, "name": type(net).__qualname__, "arguments": net.arguments()}


def _network(spec: dict):
    """The network of :func:`_spec`, built in the worker (a class of scratchgen.nn only)."""
    if not spec["module"].startswith(__package__ + "."):
        raise ValueError(f"a worker builds networks of {__package__} only, not of {spec['module']!r}")
    return getattr(importlib.import_module(spec["module"]), spec["name"])(**spec["arguments"])


def _serve(inp, out) -> None:
    """A worker's loop (``python -m scratchgen.nn.process_shards``): first (the network's spec, layout, the two
    blocks' paths), then for each shard received its forward and backward on the shared parameters, the gradients
    into the gradient block and (loss, state_T, keys, extra gradients) back. None stops it."""
    from ..allocator import reuse_freed_memory
    from ..threads import one_blas_thread

    reuse_freed_memory()  # a worker only runs training steps: as fit does, keep freed memory (no fresh page faults)
    spec, layout, param_path, grad_path = _receive_from(inp)
    net = _network(spec)
    size = max(
        offset + np.dtype(dtype).itemsize * int(np.prod(shape, dtype=np.int64)) for _, shape, dtype, offset in layout
    )
    params = _views(np.memmap(param_path, dtype=np.uint8, mode="r", shape=(size,)), layout)
    grads_out = _views(np.memmap(grad_path, dtype=np.uint8, mode="r+", shape=(size,)), layout)
    _send(out, ("ready",))
    with one_blas_thread():
        while True:
            try:
                shard = _receive_from(inp)
            except EOFError:  # the caller has gone
                break
            if shard is None:
                break
            try:
                (loss, state_T), grads = _forward_backward(net, params, shard)
                extra = {}
                for key, g in grads.items():
                    if key in grads_out and grads_out[key].shape == g.shape:
                        np.copyto(grads_out[key], g)
                    else:  # not laid out like a parameter: through the pipe
                        extra[key] = g
                _send(out, ("ok", loss, state_T, list(grads), extra))
            except Exception:  # the caller raises it as WorkerError
                _send(out, ("error", traceback.format_exc()))


class ProcessShards:
    """The sharded step of :class:`scratchgen.nn.parallel.DataParallel` with shards 1 .. k - 1 in processes.

    Use it as a context (the workers live inside; they start at the first step that is cut)::

        with ProcessShards(net, processes=2) as shards:
            loss, state_T, grads = shards.step(params, inputs)

    Parameters
    ----------
    net : Network
        A network of scratchgen.nn with ``arguments()`` (its constructor's arguments: each worker builds its
        own copy from them, :func:`_spec`); its ``forward``/``backward`` and ``state_batch_axis``.
    processes : int
        k, the most shards of a step, one of them in the calling process (:func:`shard_bounds`).
    min_work : int or None
        As in :func:`shard_bounds` (None: MIN_SHARD_WORK).
    """

    def __init__(self, net, processes: int = 2, min_work: int | None = None):
        self.net = net
        self.processes = processes
        self.min_work = min_work
        self.axis = getattr(net, "state_batch_axis", 0)
        self.layout: list | None = None
        self.workers: list = []  # (process, gradient views)
        self.params_shared: dict = {}

    def __enter__(self) -> ProcessShards:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (each finishes its current shard first) and drop the shared blocks."""
        for process, _ in self.workers:
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
        self.workers = []
        self.layout = None
        self.params_shared = {}

    def _start(self, params: dict, n_workers: int) -> None:
        """Start ``n_workers`` workers for parameters laid out as ``params`` (again if the layout changed)."""
        layout, size = _layout(params)
        if layout == self.layout and len(self.workers) == n_workers:
            return
        self.close()
        paths = []
        try:
            path, block = _shared_block(size)
            paths.append(path)
            self.params_shared = _views(block, layout)
            for _ in range(n_workers):
                grad_path, grad_block = _shared_block(size)
                paths.append(grad_path)
                process = subprocess.Popen(
                    [sys.executable, "-m", "scratchgen.nn.process_shards"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=_worker_environment(),
                )
                self.workers.append((process, _views(grad_block, layout)))
                _send(process.stdin, (_spec(self.net), layout, path, grad_path))
            for process, _ in self.workers:
                self._receive(process)  # "ready": the worker has mapped both blocks
        except BaseException:
            self.close()
            raise
        finally:
            for p in paths:  # the mappings stay; the names go at once, so nothing is left behind on a crash
                os.unlink(p)
        self.layout = layout

    def _receive(self, process) -> tuple:
        try:
            return _receive_from(process.stdout)
        except (EOFError, ValueError) as exc:
            return ("error", f"the worker process ended without an answer ({exc!r})")

    def step(self, params: dict, inputs: tuple):
        """(loss, state_T, grads) of one chunk: eq. (P1)-(P3) of parallel over the shards."""
        bounds = shard_bounds(inputs[0].shape[0], self.processes, parameter_count(params), self.min_work)
        if len(bounds) == 1:
            (loss, state_T), grads = _forward_backward(self.net, params, inputs)
            return loss, state_T, grads
        self._start(params, len(bounds) - 1)
        for key, value in params.items():
            np.copyto(self.params_shared[key], value)
        shards = [shard_inputs(inputs, a, b, self.axis) for a, b in bounds]
        sent = []
        for (process, _), shard in zip(self.workers, shards[1:]):
            try:
                _send(process.stdin, shard)
                sent.append(True)
            except (BrokenPipeError, OSError):
                sent.append(False)
        results = [_forward_backward(self.net, params, shards[0])]
        failure = None
        for (process, grad_views), ok in zip(self.workers, sent):
            reply: tuple = self._receive(process) if ok else ("error", "the worker process is gone")
            if reply[0] != "ok":
                failure = failure or reply[1]
                continue
            _, loss, state_T, keys, extra = reply
            results.append(((loss, state_T), {key: extra[key] if key in extra else grad_views[key] for key in keys}))
        if failure is not None:
            self.close()
            raise WorkerError(f"a shard's worker process failed:\n{failure}")
        return combine(results, [_counted(s) for s in shards], self.axis)


if __name__ == "__main__":  # a worker: the protocol on stdin/stdout; anything printed goes to stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the caller stops the worker
    _stdin, _stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr
    _serve(_stdin, _stdout)
