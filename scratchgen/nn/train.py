"""The training loop: mini-batches, optimiser steps, validation, early stopping, guards, checkpoints.

One optimiser step on one chunk of T steps (see :mod:`scratchgen.nn.data`)::

    (loss, h_T), cache = network_forward(params, (inputs, targets, mask, h))   eq. (1)-(6) of layers
    grads = network_backward(params, cache)                                     eq. (7)-(13) of layers
    clip grads to norm c; params <- optimiser(params, grads, eta_s)              optim eq. (1)-(8)
    h <- h_T                            (running text: the state is carried to the next chunk)

Everything a run depends on is in its state: parameters, optimiser state, the random generator
(as JSON, ``rng.bit_generator.state``), the epoch, the position in the epoch, the carried hidden
state, the schedule step, the best parameters so far and the learning-rate scale of the NaN guard.
A checkpoint stores all of it (atomically, ``.npz`` + JSON, no pickle, with a format version), so
resuming reproduces the uninterrupted run bit for bit; every training option is stored with it and
compared when a run resumes, so a checkpoint is never continued with another recipe by mistake.

The guards of a run:

- NaN/inf: the parameters and optimiser state are copied *before* the first update (then after
  every finite evaluation); a non-finite loss, gradient or weight restores that copy and halves the
  learning rate, at most ``MAX_RESTORES`` times before the run stops with :class:`TrainingError`.
  A non-finite model is never saved.
- A loss above ln V (a uniform guess over the vocabulary) is reported: the network has learned
  less than nothing, usually from a learning rate far too high.
- The training loss of the curve is an exponential moving average ``a_t = 0.98 a_{t-1} + 0.02 l_t``
  from ``a_0 = 0``, divided by ``1 - 0.98^t`` (bias correction, as Adam's eq. (4)), so early points are
  the mean of the losses seen, not pulled towards the first one.
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

from ..errors import ModelFileError, TrainingError
from ..io import ArraySpec, atomic_write, validate_arrays
from ..progress import Progress
from .data import padded_batch, padded_plan, stream_array, stream_chunks
from .layers import network_backward, network_forward, one_blas_thread
from .optim import clip_by_global_norm, learning_rate, make_optimizer

__all__ = ["Trainer", "stream_loss", "sequences_loss", "training_memory", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION",
           "MAX_RESTORES", "RESUME_OPTIONS", "worse_than_uniform"]

CHECKPOINT_FORMAT = "scratchgen-rnn-checkpoint"
CHECKPOINT_VERSION = 2            # 2: optimiser state namespaced, every training option stored and compared
MAX_RESTORES = 10                 # NaN/inf restores before a run is declared diverged (lr / 2^10 by then)


def worse_than_uniform(loss: float, V: int) -> bool:
    """Whether a loss is clearly worse than the uniform guess ln V (by 10%): a fresh network starts near ln V
    and its first losses wander around it, so only a clear excess means it is not learning."""
    return loss > 1.1 * math.log(V)


EMA_DECAY = 0.98                  # smoothing of the training loss shown and recorded

#: The options a resumed run must share with its checkpoint, and the flag that sets each.
#: Where files go, how often checkpoints are written, verbosity and time limits belong to the session
#: and may change; everything that shapes the result is here.
RESUME_OPTIONS = {
    "hidden": "--hidden", "layers": "--layers", "embedding": "--embedding", "seq_len": "--seq-len",
    "batch_size": "--batch", "lr": "--lr", "optimizer": "--optimizer", "weight_decay": "--weight-decay",
    "dropout": "--dropout", "lr_schedule": "--schedule", "warmup": "--warmup", "clip": "--clip",
    "epochs": "--epochs", "max_steps": "--max-steps", "running_text": "--mode",
    "valid_fraction": "--valid-fraction", "patience": "--patience", "eval_interval": "--eval-every",
    "min_count": "--min-count", "dtype": "--dtype", "seed": "--seed",
}


def training_memory(V: int, hidden: int, layers: int, embedding: int | None, batch: int, seq_len: int,
                    itemsize: int, optimizer: str, eval_rows: int, eval_len: int) -> float:
    """Bytes a training run needs, estimated before anything is allocated.

    - parameters P (counted below), their gradients, the best copy, the last good copy with its
      optimiser state, and the optimiser's own state (Adam: m and v; SGD and Adagrad: one array);
    - the activations of one step of B x T tokens: per layer the inputs, states and their gradients
      (about 4 H numbers a token), the logits, probabilities and their gradient (3 V a token), the
      embeddings (2 E a token); validation runs ``eval_rows`` x ``eval_len`` tokens through the same;
    - the orthogonal initialisation of W_hh: a Gaussian matrix and its QR in float64 (3 H^2 numbers).
    """
    H, L, E = hidden, layers, embedding or 0
    first_input = V * E + E * H if E else V * H                  # C and W_xh.0, or the one-hot W_xh.0
    n_params = first_input + (L - 1) * H * H + L * (H * H + H) + H * V + V
    slots = 2 if optimizer in ("adam", "adamw") else 1
    weights = n_params * itemsize * (4 + 2 * slots)              # params, grads, best, good; opt state twice
    per_token = 4 * L * H + 3 * V + 2 * E
    activations = max(batch * seq_len, eval_rows * eval_len) * per_token * itemsize
    init = 3 * H * H * 8 + n_params * 8
    return float(max(weights + activations, init))


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


def _all_finite(arrays: dict) -> bool:
    return all(np.isfinite(v).all() for v in arrays.values())


def _option_text(name: str, value) -> str:
    """An option's value as the command line spells it."""
    if name == "running_text":
        return {True: "chunks", False: "lines"}.get(value, repr(value))
    if value is None:
        return {"clip": "0 (no clipping)", "patience": "0 (never)", "embedding": "not given (one-hot)"}.get(
            name, "not given")
    return f"{value:g}" if isinstance(value, float) else str(value)


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
        self.restores = 0                                        # NaN/inf restores so far
        self.last_failure = ""                                   # what the last restore was for
        self.best_loss = math.inf
        self.bad_evals = 0
        self.best = None                                         # best params (a copy) by validation loss
        self.good = None                                         # (params, optimiser state) last known good
        self.h = None                                            # carried state (running text)
        self.epoch_rng_state = None
        self.history: list[dict] = []
        self.stopped = ""
        self.ema = 0.0                                           # moving average of the loss, from 0
        self.ema_steps = 0                                       # its number of terms (bias correction)
        self.worse_than_uniform = False                          # a loss above ln V was seen (and reported)
        self.resumed_finished = False                            # resumed from a run that had ended
        self.curve_written = False
        self.progress = None
        if running:
            self.rows = stream_array(train, model.batch_size)    # (B, n+1)
        self.total_steps = self._total_steps()

    @property
    def train_loss(self) -> float | None:
        """The bias-corrected moving average of the training loss (None before the first step)."""
        if not self.ema_steps:
            return None
        return self.ema / (1.0 - EMA_DECAY ** self.ema_steps)

    def warn(self, message: str) -> None:
        """A warning on stderr, also with ``--quiet``, without breaking a progress bar."""
        line = f"scratchgen: warning: {message}"
        if self.progress is not None and not self.progress.quiet:
            self.progress.write(line)
        else:
            print(line, file=sys.stderr, flush=True)

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
        """Validation loss in nats per token; NaN when there is no validation data."""
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
        Progress is a bar with the time left on a terminal, plain lines otherwise, nothing unless
        ``verbose`` (:class:`scratchgen.progress.Progress`); evaluations are lines of their own.
        """
        self.clock = time.process_time if clock == "cpu" else time.perf_counter
        remaining = max(self.total_steps - self.step, 0)
        # overflow to inf or NaN is expected with too high a rate: the guards below handle it, not numpy's warnings
        with one_blas_thread(), np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                Progress(remaining, desc="training", unit="steps", quiet=not verbose) as progress:
            self.progress = progress
            try:
                self._run(checkpoint, checkpoint_every, verbose, time_limit, interrupt_at)
            finally:
                self.progress = None
        if curve_csv and self.history:                           # also after a resume of a finished run
            write_curve(curve_csv, self.history)
            self.curve_written = True

    def _run(self, checkpoint, checkpoint_every, verbose, time_limit, interrupt_at) -> None:
        clock_start = self.clock()
        self.cpu_start = time.process_time()
        m = self.m
        start_time = time.perf_counter()
        tokens_at_start = self.tokens
        eval_every = m.eval_interval
        if self.stopped or self.epoch >= m.epochs:
            self.resumed_finished = True
            self.warn(f"the checkpoint's run had already finished ({self.stopped or f'{m.epochs} epochs'}): "
                      "nothing left to train; its best model is saved")
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
                    if self.good is None:                        # before the first update: the initial weights
                        self._snapshot_good()
                    self.opt.step(self.params, grads, lr)
                    if _all_finite(self.params):
                        self.h = hT
                        self.step += 1
                        self.tokens += int(mask.sum()) if mask is not None else y.size
                        self.ema = EMA_DECAY * self.ema + (1.0 - EMA_DECAY) * loss
                        self.ema_steps += 1
                        self.progress.update(1, loss=self.train_loss)
                    else:
                        self._recover(f"the weights became non-finite at step {self.step + 1}")
                else:
                    self._recover(f"non-finite loss ({loss:g}) or gradient norm ({norm:g}) at step {self.step + 1}")
                last = self.step_in_epoch == len(plan)
                if last:                                         # the position is always "the next step"
                    self.epoch += 1
                    self.step_in_epoch = 0
                    self.epoch_rng_state = None
                done = bool(m.max_steps and self.step >= m.max_steps)
                out_of_time = bool(time_limit and self.clock() - clock_start > time_limit)
                if self.ema_steps and (last or done or out_of_time or (eval_every and self.step % eval_every == 0)):
                    elapsed = time.perf_counter() - start_time
                    self._evaluate_and_record(lr, norm, elapsed, (self.tokens - tokens_at_start) / max(elapsed, 1e-9))
                if done:
                    self.stopped = f"reached max_steps={m.max_steps}"
                if out_of_time:
                    self.stopped = f"reached time_limit={time_limit}s"
                if checkpoint and (self.step % checkpoint_every == 0 or last or self.stopped):
                    self.save_checkpoint(checkpoint)
                if interrupt_at is not None and self.step >= interrupt_at:
                    raise KeyboardInterrupt(f"interrupted at step {self.step} (test hook)")
                if last or self.stopped:
                    break
        if self.restores and not self.ema_steps:                 # not one step succeeded: nothing was learned
            raise TrainingError(f"training diverged: {self.last_failure}, and after {self.restores} restores of the "
                                f"initial weights (the learning rate halved each time) not one step succeeded; "
                                f"lower --lr (it is {self.m.lr:g})")
        if self.best is not None:                                # keep the best model, not the last
            for k in self.params:
                self.params[k][...] = self.best[k]
        if verbose and self.stopped and not self.resumed_finished:
            self.progress.write(f"stopped: {self.stopped}")

    def _snapshot_good(self) -> None:
        self.good = ({k: v.copy() for k, v in self.params.items()},
                     {k: v.copy() for k, v in self.opt.state.items()}, self.opt.steps)

    def _recover(self, what: str) -> None:
        """NaN/inf guard: back to the last good parameters, half the learning rate, and say so.

        After ``MAX_RESTORES`` restores the run is diverging whatever we do: stop with the reason.
        """
        self.restores += 1
        self.last_failure = what
        if self.restores > MAX_RESTORES:
            raise TrainingError(
                f"training diverged: {what} and restoring the last good weights did not help "
                f"({MAX_RESTORES} restores, the learning rate halved each time); lower --lr (it is {self.m.lr:g})")
        self.lr_scale *= 0.5
        params, state, steps = self.good if self.good is not None else (None, {}, 0)
        if params is not None:
            for k in self.params:
                self.params[k][...] = params[k]
        self.opt.state = {k: v.copy() for k, v in state.items()}
        self.opt.steps = steps
        self.h = None
        # A progress note, not a warning: a run that recovers says how often in its summary, and one that
        # does not ends in the error above, which says it all.
        if self.progress is not None:
            self.progress.write(f"{what}: restored the last good weights and lowered the learning rate to "
                                f"{self.lr_scale:g} x lr (restore {self.restores} of at most {MAX_RESTORES})")

    def _evaluate_and_record(self, lr, norm, seconds, speed) -> None:
        val = self.evaluate()
        train_loss = self.train_loss
        self.history.append({"step": self.step, "epoch": self.epoch + (1 if self.step_in_epoch else 0),
                             "tokens": self.tokens, "train_loss": float(train_loss), "valid_loss": float(val),
                             "lr": float(lr), "grad_norm": float(norm), "seconds": round(float(seconds), 3),
                             "cpu_seconds": round(time.process_time() - self.cpu_start, 3)})
        val_text = f"validation loss {val:.4f}" if math.isfinite(val) else "no validation data"
        self.progress.write(f"step {self.step} (epoch {self.history[-1]['epoch']}): train loss {train_loss:.4f}, "
                            f"{val_text} nats/token, {speed:,.0f} tok/s, lr {lr:.3g}")
        self._check_against_uniform(val if math.isfinite(val) else train_loss,
                                    "validation" if math.isfinite(val) else "training")
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

    def _check_against_uniform(self, loss: float, which: str) -> None:
        """Say once when a loss is clearly above ln V: a uniform guess over the vocabulary would do better."""
        uniform = math.log(len(self.m.vocab_))
        if worse_than_uniform(loss, len(self.m.vocab_)) and not self.worse_than_uniform:
            self.worse_than_uniform = True
            self.warn(f"the {which} loss {loss:.4g} nats/token is worse than a uniform guess (ln V = {uniform:.2f}): "
                      f"the network is not learning; lower --lr (it is {self.m.lr:g})")

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
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "model": self.m.get_params(), "vocab": self.m.vocab_.to_list(),
            "data": self.fingerprint(), "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "step": self.step, "tokens": self.tokens, "lr_scale": self.lr_scale, "restores": self.restores,
            "best_loss": self.best_loss, "bad_evals": self.bad_evals, "opt_steps": self.opt.steps,
            "good_opt_steps": None if self.good is None else self.good[2],
            "rng": self.rng.bit_generator.state, "epoch_rng": self.epoch_rng_state,
            "drop_rng": self.drop_rng.bit_generator.state,
            "history": self.history, "stopped": self.stopped, "ema": self.ema, "ema_steps": self.ema_steps,
            "worse_than_uniform": self.worse_than_uniform,
        }
        blob = json.dumps(header, allow_nan=True).encode("utf-8")
        arrays["__checkpoint__"] = np.frombuffer(blob, dtype=np.uint8)
        atomic_write(path, lambda f: np.savez(f, **arrays))

    def _compare_options(self, path: str, theirs: dict) -> None:
        """Refuse a checkpoint made with other training options, naming the first that differs."""
        ours = self.m.get_params()
        extendable = self.m.lr_schedule == "constant" and theirs.get("lr_schedule") == "constant"
        for name, flag in RESUME_OPTIONS.items():
            a, b = theirs.get(name), ours.get(name)
            if a == b:
                continue
            if name in ("epochs", "max_steps") and extendable:
                continue                                         # a constant rate may simply go on longer
            problem = f"{flag} is {_option_text(name, a)} in the checkpoint, {_option_text(name, b)} here"
            if name in ("epochs", "max_steps"):
                problem += (f": the {self.m.lr_schedule} schedule spans the whole run, so changing its length "
                            f"would change the learning rate of every step; resume with {flag} "
                            f"{_option_text(name, a)} (only a constant --schedule can be extended)")
            raise ModelFileError(f"cannot resume from {path!r}: {problem}")

    def load_checkpoint(self, path: str) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            header = json.loads(arrays.pop("__checkpoint__").tobytes().decode("utf-8"))
            if not isinstance(header, dict):
                raise TypeError("the header is not a JSON object")
        except FileNotFoundError:
            raise ModelFileError(f"cannot resume from {path!r}: no such file") from None
        except IsADirectoryError:
            raise ModelFileError(f"cannot resume from {path!r}: it is a directory") from None
        except Exception as e:
            raise ModelFileError(f"cannot resume from {path!r}: not a scratchgen checkpoint ({type(e).__name__})") from None
        if header.get("format") != CHECKPOINT_FORMAT:
            raise ModelFileError(f"cannot resume from {path!r}: not a scratchgen RNN checkpoint")
        if header.get("version") != CHECKPOINT_VERSION:
            older = "an older scratchgen (no format version)" if header.get("version") is None else (
                f"checkpoint format {header.get('version')!r}")
            raise ModelFileError(f"cannot resume from {path!r}: it was written by {older}, and this scratchgen "
                                 f"reads checkpoint format {CHECKPOINT_VERSION} only; start afresh without --resume")
        try:
            self._restore(path, header, arrays)
        except ModelFileError as e:
            if str(e).startswith("cannot resume"):
                raise
            raise ModelFileError(f"cannot resume from {path!r}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise ModelFileError(f"cannot resume from {path!r}: not a valid scratchgen RNN checkpoint "
                                 f"({type(e).__name__}: {e})") from None

    def _restore(self, path: str, header: dict, arrays: dict) -> None:
        if not isinstance(header.get("model"), dict):
            raise TypeError("its options are not a JSON object")
        self._compare_options(path, header["model"])
        if header["vocab"] != self.m.vocab_.to_list() or header["data"] != self.fingerprint():
            raise ModelFileError(f"cannot resume from {path!r}: it was made on another corpus, or with other "
                                 "text options (--level, --lowercase, --mode, --chunk-size, --encoding)")

        def group(prefix):
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        like_params = {k: ArraySpec(v.shape) for k, v in self.params.items()}
        namespace = "sgd.momentum." if self.m.optimizer == "sgd" else (
            "adagrad.G." if self.m.optimizer == "adagrad" else "adam.")
        opt_state = group("opt/")
        opt_spec = {k: ArraySpec(self.params[k.split(".", 2)[-1]].shape) for k in opt_state
                    if k.startswith(namespace) and k.split(".", 2)[-1] in self.params}
        where = "RNN checkpoint"
        validate_arrays(where, group("param/"), like_params)
        validate_arrays(where, opt_state, opt_spec)
        for k, v in group("param/").items():
            self.params[k][...] = v
        self.opt.state = {k: v.astype(self.params[k.split(".", 2)[-1]].dtype) for k, v in opt_state.items()}
        self.opt.steps = int(header["opt_steps"])
        best, good = group("best/"), group("good/")
        if best:
            validate_arrays(where, best, like_params)
        if good:
            validate_arrays(where, good, like_params)
        self.best = best or None
        self.good = (good, group("goodopt/"), header["good_opt_steps"]) if good else None
        self.h = arrays.get("h")
        self.epoch, self.step_in_epoch = int(header["epoch"]), int(header["step_in_epoch"])
        self.step, self.tokens = int(header["step"]), int(header["tokens"])
        self.lr_scale, self.best_loss = float(header["lr_scale"]), float(header["best_loss"])
        self.bad_evals, self.restores = int(header["bad_evals"]), int(header["restores"])
        self.rng.bit_generator.state = header["rng"]
        self.epoch_rng_state = header["epoch_rng"]
        self.drop_rng.bit_generator.state = header["drop_rng"]
        self.history = list(header["history"])
        self.stopped = str(header["stopped"] or "")
        self.ema, self.ema_steps = float(header["ema"]), int(header["ema_steps"])
        self.worse_than_uniform = bool(header["worse_than_uniform"])
        # a run stopped by its clock, or by a step limit that is now higher, goes on
        if self.stopped.startswith("reached time_limit") or (
                self.stopped.startswith("reached max_steps") and not (self.m.max_steps and self.step >= self.m.max_steps)):
            self.stopped = ""


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
