"""The training loop: mini-batches, optimiser steps, validation, early stopping, guards, checkpoints.

One optimiser step on one chunk of T steps (see :mod:`scratchgen.nn.data`)::

    (loss, h_T), cache = network_forward(params, (inputs, targets, mask, h))   eq. (1)-(6) of layers
    grads = network_backward(params, cache)                                     eq. (7)-(13) of layers
    clip grads to norm c; params <- optimiser(params, grads, eta_s)              optim eq. (1)-(8)
    h <- h_T                            (running text: the state is carried to the next chunk)

Everything a run depends on is in its state: parameters, optimiser state, the random generator
(as JSON, ``rng.bit_generator.state``), the epoch, the position in the epoch, the carried hidden
state, the schedule step, the best parameters so far and the learning-rate scale of the NaN guard.
A checkpoint stores all of it (atomically, ``.npz`` + JSON, no pickle), so resuming reproduces the
uninterrupted run bit for bit.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
import zlib

import numpy as np

from ..errors import ModelFileError
from ..io import atomic_write
from .data import padded_batch, padded_plan, stream_array, stream_chunks
from .layers import network_backward, network_forward, one_blas_thread
from .optim import clip_by_global_norm, learning_rate, make_optimizer

__all__ = ["Trainer", "stream_loss", "sequences_loss", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "scratchgen-rnn-checkpoint"


def _zeros_state(params: dict, layers: int, batch: int) -> np.ndarray:
    H = params["W_hh.0"].shape[0]
    return np.zeros((layers, batch, H), dtype=params["W_hh.0"].dtype)   # (L, B, H)


def stream_loss(params: dict, layers: int, ids: np.ndarray, streams: int = 32, seq_len: int = 256) -> tuple[float, int]:
    """Mean nats per token of a running text, state carried: (loss, number of targets)."""
    streams = max(1, min(streams, (len(ids) - 1) // 2))
    rows = stream_array(ids, streams)                            # (B, n+1)
    h = _zeros_state(params, layers, streams)                    # (L, B, H)
    total, count = 0.0, 0
    for x, y in stream_chunks(rows, seq_len):
        (loss, h), _ = network_forward(params, (x, y, None, h))
        total += loss * y.size
        count += y.size
    return total / max(count, 1), count


def sequences_loss(params: dict, layers: int, sequences: list[np.ndarray], batch: int = 256) -> tuple[float, int]:
    """Mean nats per token (``</s>`` counted) of separate sequences: (loss, number of targets)."""
    order = np.argsort([len(s) for s in sequences], kind="stable")
    total, count = 0.0, 0
    for i in range(0, len(order), batch):
        x, y, m = padded_batch([sequences[j] for j in order[i:i + batch]])
        (loss, _), _ = network_forward(params, (x, y, m, _zeros_state(params, layers, len(x))))
        n = int(m.sum())
        total += loss * n
        count += n
    return total / max(count, 1), count


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Trainer:
    """Trains ``params`` in place for an :class:`~scratchgen.nn.rnn.RNNModel` (its hyperparameters).

    Parameters
    ----------
    model : RNNModel (read for its hyperparameters; its ``params_`` are trained)
    train, valid : list of int arrays (sequences) or, for running text, one int array each (the stream)
    running : bool, running text (streams) or separate sequences (padded batches)
    rng : numpy Generator (its state is part of the run's state)
    """

    def __init__(self, model, train, valid, running: bool, rng: np.random.Generator):
        self.m = model
        self.params = model.params_
        self.train, self.valid, self.running, self.rng = train, valid, running, rng
        # dropout masks come from their own generator: the data order replays from the epoch's start
        # on resume, the masks continue from where they were
        self.drop_rng = np.random.default_rng([model.seed, 1])
        self.L = model.layers
        self.opt = make_optimizer(model.optimizer, model.weight_decay)
        self.epoch = 0
        self.step_in_epoch = 0
        self.step = 0
        self.tokens = 0
        self.lr_scale = 1.0
        self.best_loss = math.inf
        self.bad_evals = 0
        self.best = None                                         # best params (a copy) by validation loss
        self.good = None                                         # (params, optimiser state) last known good
        self.h = None                                            # carried state (running text)
        self.epoch_rng_state = None
        self.history: list[dict] = []
        self.stopped = ""
        self.running_loss = None                                 # smoothed training loss
        if running:
            self.rows = stream_array(train, model.batch_size)    # (B, n+1)
        self.total_steps = self._total_steps()

    # --- the plan of an epoch ---------------------------------------------------------------------

    def _plan(self) -> list:
        """The steps of one epoch: chunk starts (running text) or (batch, chunk start) pairs."""
        T = self.m.seq_len
        if self.running:
            return list(range(0, self.rows.shape[1] - 1, T))
        plan = []
        for batch in padded_plan(len(self.train), self.m.batch_size, self.rng):
            longest = max(len(self.train[i]) for i in batch) + 1
            plan += [(batch, start) for start in range(0, longest, T)]
        return plan

    def _total_steps(self) -> int:
        T = self.m.seq_len
        if self.running:
            per_epoch = math.ceil((self.rows.shape[1] - 1) / T)
        else:  # an estimate (chunks per batch depend on the draw): batches times the mean chunk count
            mean_chunks = float(np.mean([math.ceil((len(s) + 1) / T) for s in self.train]))
            per_epoch = math.ceil(len(self.train) / self.m.batch_size * mean_chunks)
        total = per_epoch * self.m.epochs
        return min(total, self.m.max_steps) if self.m.max_steps else total

    def _batch(self, item):
        """inputs, targets, mask (or None) and whether the state starts afresh."""
        T = self.m.seq_len
        if self.running:
            start = item
            x = self.rows[:, start:start + T]                    # (B, T)
            y = self.rows[:, start + 1:start + T + 1]            # (B, T)
            return x[:, :y.shape[1]], y, None, start == 0
        batch, start = item
        x, y, mask = padded_batch([self.train[i] for i in batch])   # (B, T_b)
        sl = slice(start, start + T)
        return x[:, sl], y[:, sl], mask[:, sl], start == 0

    # --- evaluation -------------------------------------------------------------------------------

    def evaluate(self, params=None) -> float:
        params = params or self.params
        if self.valid is None or len(self.valid) == 0:
            return math.nan
        if self.running:
            return stream_loss(params, self.L, self.valid, self.m.batch_size, max(self.m.seq_len, 64))[0]
        return sequences_loss(params, self.L, self.valid)[0]

    # --- the loop ---------------------------------------------------------------------------------

    def run(self, checkpoint: str | None = None, checkpoint_every: int = 200, curve_csv: str | None = None,
            verbose: bool = False, time_limit: float | None = None, interrupt_at: int | None = None,
            clock: str = "wall") -> None:
        """Train until the epochs, ``max_steps``, the time limit or early stopping end it.

        The BLAS runs on one thread: the products of a step are small enough that a second thread
        mostly waits for the first (and on a busy machine, for a core), measured slower here.
        """
        self.clock = time.process_time if clock == "cpu" else time.perf_counter
        with one_blas_thread():
            self._run(checkpoint, checkpoint_every, curve_csv, verbose, time_limit, interrupt_at)

    def _run(self, checkpoint, checkpoint_every, curve_csv, verbose, time_limit, interrupt_at) -> None:
        clock_start = self.clock()
        self.cpu_start = time.process_time()
        m = self.m
        start_time = time.perf_counter()
        last_print = start_time
        tokens_at_start = self.tokens
        steps_at_start = self.step
        eval_every = m.eval_interval
        while self.epoch < m.epochs and not self.stopped:
            if self.epoch_rng_state is None:                     # a fresh epoch: remember the draw's start
                self.epoch_rng_state = self.rng.bit_generator.state
            else:                                                # resumed mid-epoch: replay the same draw
                self.rng.bit_generator.state = self.epoch_rng_state
            plan = self._plan()
            while self.step_in_epoch < len(plan):
                x, y, mask, fresh = self._batch(plan[self.step_in_epoch])
                if fresh or self.h is None:
                    self.h = _zeros_state(self.params, self.L, x.shape[0])   # (L, B, H)
                schedule_step = self.step
                if time_limit:  # a time-limited run spans its schedule over the time it has
                    elapsed_fraction = (self.clock() - clock_start) / time_limit
                    schedule_step = max(schedule_step, int(elapsed_fraction * self.total_steps))
                lr = learning_rate(schedule_step, self.total_steps, m.lr, m.lr_schedule, m.warmup) * self.lr_scale
                inputs = (x, y, mask, self.h)
                if m.dropout:                                    # a fresh mask every step, eq. (14) of layers
                    keep = self.drop_rng.random((x.shape[0], x.shape[1], m.hidden)) >= m.dropout   # (B, T, H)
                    inputs += ((keep, m.dropout),)
                (loss, hT), cache = network_forward(self.params, inputs)
                grads, _ = network_backward(self.params, cache)
                norm = clip_by_global_norm(grads, m.clip)
                self.step_in_epoch += 1
                if math.isfinite(loss) and math.isfinite(norm):
                    self.opt.step(self.params, grads, lr)
                    self.h = hT
                    self.step += 1
                    self.tokens += int(mask.sum()) if mask is not None else y.size
                    self.running_loss = loss if self.running_loss is None else 0.98 * self.running_loss + 0.02 * loss
                    if self.good is None:
                        self._snapshot_good()
                else:
                    self._recover(loss, norm)
                last = self.step_in_epoch == len(plan)
                if last:                                         # the position is always "the next step"
                    self.epoch += 1
                    self.step_in_epoch = 0
                    self.epoch_rng_state = None
                done = bool(m.max_steps and self.step >= m.max_steps)
                out_of_time = bool(time_limit and self.clock() - clock_start > time_limit)
                if self.running_loss is not None and (last or done or out_of_time
                                                 or (eval_every and self.step % eval_every == 0)):
                    self._evaluate_and_record(self.running_loss, lr, norm, time.perf_counter() - start_time, curve_csv)
                if done:
                    self.stopped = f"reached max_steps={m.max_steps}"
                if out_of_time:
                    self.stopped = f"reached time_limit={time_limit}s"
                if checkpoint and (self.step % checkpoint_every == 0 or last or self.stopped):
                    self.save_checkpoint(checkpoint)
                now = time.perf_counter()
                if verbose and self.running_loss is not None and (now - last_print > 5 or last or self.stopped):
                    last_print = now
                    elapsed = now - start_time
                    speed = (self.tokens - tokens_at_start) / max(elapsed, 1e-9)
                    steps_done = max(self.step - steps_at_start, 1)
                    left = (self.total_steps - self.step) * elapsed / steps_done
                    if time_limit:
                        left = min(left, (time_limit - (self.clock() - clock_start)) * elapsed / max(
                            self.clock() - clock_start, 1e-9))
                    val = self.history[-1]["valid_loss"] if self.history else math.nan
                    print(f"epoch {min(self.epoch + 1, m.epochs)}/{m.epochs} step {self.step}/{self.total_steps}  "
                          f"loss {self.running_loss:.4f}  val {val:.4f}  {speed:,.0f} tok/s  |g| {norm:.3g}  "
                          f"lr {lr:.3g}  left {_fmt_time(left)}", file=sys.stderr, flush=True)
                if interrupt_at is not None and self.step >= interrupt_at:
                    raise KeyboardInterrupt(f"interrupted at step {self.step} (test hook)")
                if last or self.stopped:
                    break
        if self.best is not None:                                # keep the best model, not the last
            for k in self.params:
                self.params[k][...] = self.best[k]
        if verbose and self.stopped:
            print(f"stopped: {self.stopped}", file=sys.stderr)

    def _snapshot_good(self) -> None:
        self.good = ({k: v.copy() for k, v in self.params.items()},
                     {k: v.copy() for k, v in self.opt.state.items()}, self.opt.steps)

    def _recover(self, loss: float, norm: float) -> None:
        """NaN/inf guard: back to the last good parameters, half the learning rate, and say so."""
        self.lr_scale *= 0.5
        if self.good is not None:
            params, state, steps = self.good
            for k in self.params:
                self.params[k][...] = params[k]
            self.opt.state = {k: v.copy() for k, v in state.items()}
            self.opt.steps = steps
        self.h = None
        print(f"scratchgen: warning: non-finite loss ({loss}) or gradient norm ({norm}) at step {self.step}: "
              f"restored the last good parameters and lowered the learning rate to {self.lr_scale:g} x lr",
              file=sys.stderr, flush=True)

    def _evaluate_and_record(self, train_loss, lr, norm, seconds, curve_csv) -> None:
        val = self.evaluate()
        self.history.append({"step": self.step, "epoch": self.epoch + (1 if self.step_in_epoch else 0), "tokens": self.tokens,
                             "train_loss": float(train_loss), "valid_loss": float(val), "lr": float(lr),
                             "grad_norm": float(norm), "seconds": round(float(seconds), 3),
                             "cpu_seconds": round(time.process_time() - self.cpu_start, 3)})
        if math.isfinite(val):
            self._snapshot_good()
            if val < self.best_loss:
                self.best_loss = val
                self.best = {k: v.copy() for k, v in self.params.items()}
                self.bad_evals = 0
            else:
                self.bad_evals += 1
                if self.m.patience and self.bad_evals >= self.m.patience:
                    self.stopped = f"early stopping: no better validation loss in {self.bad_evals} evaluations"
        if curve_csv:
            write_curve(curve_csv, self.history)

    # --- checkpoints ------------------------------------------------------------------------------

    def fingerprint(self) -> int:
        """A checksum of the training data, so a checkpoint is not resumed on another corpus."""
        data = self.train if self.running else np.concatenate([np.append(s, -1) for s in self.train])
        return zlib.crc32(np.ascontiguousarray(data, dtype=np.int64).tobytes())

    def save_checkpoint(self, path: str) -> None:
        arrays = {f"param/{k}": v for k, v in self.params.items()}
        arrays.update({f"opt/{k}": v for k, v in self.opt.state.items()})
        if self.best is not None:
            arrays.update({f"best/{k}": v for k, v in self.best.items()})
        if self.good is not None:
            arrays.update({f"good/{k}": v for k, v in self.good[0].items()})
            arrays.update({f"goodopt/{k}": v for k, v in self.good[1].items()})
        if self.h is not None:
            arrays["h"] = self.h
        header = {
            "format": CHECKPOINT_FORMAT, "model": self.m.get_params(), "vocab": self.m.vocab_.to_list(),
            "data": self.fingerprint(), "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "step": self.step, "tokens": self.tokens, "lr_scale": self.lr_scale, "best_loss": self.best_loss,
            "bad_evals": self.bad_evals, "opt_steps": self.opt.steps,
            "good_opt_steps": None if self.good is None else self.good[2],
            "rng": self.rng.bit_generator.state, "epoch_rng": self.epoch_rng_state,
            "drop_rng": self.drop_rng.bit_generator.state,
            "history": self.history, "stopped": self.stopped, "running_loss": self.running_loss,
        }
        blob = json.dumps(header, allow_nan=True).encode("utf-8")
        arrays["__checkpoint__"] = np.frombuffer(blob, dtype=np.uint8)
        atomic_write(path, lambda f: np.savez(f, **arrays))

    def load_checkpoint(self, path: str) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            header = json.loads(arrays.pop("__checkpoint__").tobytes().decode("utf-8"))
        except FileNotFoundError:
            raise ModelFileError(f"cannot resume from {path!r}: no such file") from None
        except Exception as e:
            raise ModelFileError(f"cannot resume from {path!r}: not a scratchgen checkpoint ({type(e).__name__})") from None
        if header.get("format") != CHECKPOINT_FORMAT:
            raise ModelFileError(f"cannot resume from {path!r}: not a scratchgen RNN checkpoint")
        if header["vocab"] != self.m.vocab_.to_list() or header["data"] != self.fingerprint():
            raise ModelFileError(f"cannot resume from {path!r}: it was made on another corpus")
        ours = self.m.get_params()
        differ = [k for k in ("hidden", "layers", "embedding", "dtype", "seq_len", "batch_size")
                  if header["model"].get(k) != ours.get(k)]
        if differ:
            raise ModelFileError(f"cannot resume from {path!r}: it was made with other {', '.join(differ)} "
                                 f"({', '.join(k + '=' + repr(header['model'].get(k)) for k in differ)})")

        def group(prefix):
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        for k, v in group("param/").items():
            self.params[k][...] = v
        self.opt.state = {k: v.copy() for k, v in group("opt/").items()}
        self.opt.steps = header["opt_steps"]
        self.best = group("best/") or None
        good = group("good/")
        self.good = (good, group("goodopt/"), header["good_opt_steps"]) if good else None
        self.h = arrays.get("h")
        self.epoch, self.step_in_epoch = header["epoch"], header["step_in_epoch"]
        self.step, self.tokens = header["step"], header["tokens"]
        self.lr_scale, self.best_loss, self.bad_evals = header["lr_scale"], header["best_loss"], header["bad_evals"]
        self.rng.bit_generator.state = header["rng"]
        self.epoch_rng_state = header["epoch_rng"]
        self.drop_rng.bit_generator.state = header["drop_rng"]
        self.history = header["history"]
        self.stopped = header["stopped"]
        self.running_loss = header["running_loss"]


def write_curve(path: str, history: list[dict]) -> None:
    """The learning curve as CSV (one row an evaluation), written atomically."""
    fields = ["step", "epoch", "tokens", "train_loss", "valid_loss", "lr", "grad_norm", "seconds", "cpu_seconds"]

    def write(f):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        for row in history:
            w.writerow({k: row.get(k) for k in fields})
        f.write(buf.getvalue())

    atomic_write(path, write, mode="w")
