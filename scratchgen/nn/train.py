"""The training loop: mini-batches, optimiser steps, validation, early stopping, guards, checkpoints.

One optimiser step on one chunk of T steps (see :mod:`scratchgen.nn.data`)::

    (loss, h_T), cache = net.forward(params, (inputs, targets, mask, h))   eq. (1)-(6) of layers (an RNN)
    grads = net.backward(params, cache)                                     eq. (7)-(13) of layers
        (both on k shards of the batch's rows in k threads, combined by eq. (P1)-(P3) of nn/parallel.py)
    clip grads to norm c; params <- optimiser(params, grads, eta_s)              optim eq. (1)-(8)
    h <- h_T                            (running text: the state is carried to the next chunk)

A labelled run (a line corpus with one label id a sequence) passes each batch's label ids as the
network's sixth input, and starts each batch from its labels' states (h = None at a fresh start).

``net`` is the model's :class:`~scratchgen.nn.network.Network` (``model.network()``; an RNN's by default):
the loop knows only its forward, backward, start state and dropout shape, so every deep model trains here.

Everything a run depends on is in its state: parameters, optimiser state, the random generator
(as JSON, ``rng.bit_generator.state``), the epoch, the position in the epoch, the carried hidden
state, the schedule step, the best parameters so far and the learning-rate scale of the NaN guard.
A checkpoint stores all of it (:mod:`scratchgen.nn.checkpoint`), so resuming reproduces the
uninterrupted run bit for bit. What a run does besides training (progress, checkpoints, the curve)
is a list of callbacks (:mod:`scratchgen.nn.callbacks`); the loop itself has no flags for them.

The guards of a run:

- NaN/inf: the parameters and optimiser state are copied *before* the first update (then after
  every finite evaluation); a non-finite loss, gradient or weight restores that copy and halves the
  learning rate, at most ``MAX_RESTORES`` times before the run stops with :class:`TrainingError`.
  A non-finite model is never saved.
- A loss above ln V (a uniform guess over the vocabulary) is reported (a :class:`TrainingWarning`,
  or a line of the progress display): the network has learned less than nothing, usually from a
  learning rate far too high.
- The training loss of the curve is an exponential moving average ``a_t = 0.98 a_{t-1} + 0.02 l_t``
  from ``a_0 = 0``, divided by ``1 - 0.98^t`` (bias correction, as Adam's eq. (4)), so early points are
  the mean of the losses seen, not pulled towards the first one.
"""

from __future__ import annotations

import math
import time
import warnings
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..threads import one_blas_thread
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    RESUME_OPTIONS,
    load_checkpoint,
    save_checkpoint,
)
from .data import check_labelled_layout, chunk_batch, chunk_labels, epoch_plan, planned_steps, stream_array
from .losses import sequences_loss, stream_loss
from .memory import training_memory
from .network import RNNNetwork
from .optim import clip_by_global_norm, learning_rate, make_optimizer
from .parallel import DataParallel

__all__ = [
    "Trainer",
    "TrainingWarning",
    "stream_loss",
    "sequences_loss",
    "training_memory",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "MAX_RESTORES",
    "RESUME_OPTIONS",
    "worse_than_uniform",
]

MAX_RESTORES = 10  # NaN/inf restores before a run is declared diverged (lr / 2^10 by then)


def worse_than_uniform(loss: float, V: int) -> bool:
    """Whether a loss is clearly worse than the uniform guess ln V (by 10%): a fresh network starts near ln V
    and its first losses wander around it, so only a clear excess means it is not learning."""
    return loss > 1.1 * math.log(V)


EMA_DECAY = 0.98  # smoothing of the training loss shown and recorded


class TrainingWarning(UserWarning):
    """Training went on, but something is worth knowing (a loss worse than uniform, a finished run resumed)."""


def _all_finite(arrays: dict) -> bool:
    return all(np.isfinite(v).all() for v in arrays.values())


class Trainer:
    """Trains the ``params_`` of an :class:`~scratchgen.nn.rnn.RNNModel` in place, by a :class:`TrainConfig`.

    Parameters
    ----------
    model : RNNModel
        Read for its architecture (``layers``, ``hidden``, ``vocab_``); its ``params_`` are trained.
    config : TrainConfig
        The recipe (rates, batches, epochs, limits).
    train, valid : list of int arrays (sequences) or, for running text, one int array each (the stream)
    running : bool
        Running text (streams) or separate sequences (padded batches).
    rng : numpy Generator
        Its state is part of the run's state.
    labels, valid_labels : int arrays or None
        A labelled run: the label id of each training and validation sequence (line corpora only).
    """

    def __init__(
        self,
        model,
        config,
        train,
        valid,
        running: bool,
        rng: np.random.Generator,
        labels: np.ndarray | None = None,
        valid_labels: np.ndarray | None = None,
    ):
        self.m, self.config = model, config
        self.params = model.params_
        self.train, self.valid, self.running, self.rng = train, valid, running, rng
        if labels is not None:
            check_labelled_layout(running)
        self.labels, self.valid_labels = labels, valid_labels
        # dropout masks come from their own generator: the data order replays from the epoch's start
        # on resume, the masks continue from where they were
        self.drop_rng = np.random.default_rng([config.seed, 1])
        self.net = model.network() if hasattr(model, "network") else RNNNetwork(model.layers)
        self.opt = make_optimizer(config.optimizer, config.weight_decay)
        self.epoch = 0
        self.step_in_epoch = 0
        self.step = 0
        self.tokens = 0
        self.lr_scale = 1.0
        self.restores = 0  # NaN/inf restores so far
        self.last_failure = ""  # what the last restore was for
        self.best_loss = math.inf
        self.bad_evals = 0
        self.best: dict[str, np.ndarray] | None = None  # best params (a copy) by validation loss
        # (params, optimiser state, optimiser steps) last known good
        self.good: tuple[dict[str, np.ndarray], dict[str, np.ndarray], int] | None = None
        self.h: np.ndarray | None = None  # carried state (running text), (L, B, H)
        self.epoch_rng_state: Mapping[str, Any] | None = None  # the data order's generator at the epoch's start
        self.history: list[dict] = []
        self.stopped = ""
        self.ema = 0.0  # moving average of the loss, from 0
        self.ema_steps = 0  # its number of terms (bias correction)
        self.worse_than_uniform = False  # a loss above ln V was seen (and reported)
        self.resumed_finished = False  # resumed from a run that had ended
        self.callbacks: list = []
        self.parallel = DataParallel(self.net)  # the threads of a step; run() opens the configured ones
        if running:
            self.rows = stream_array(train, config.batch_size)  # (B, n+1)
        self.data = self.rows if running else train  # what the plan of an epoch cuts (:mod:`scratchgen.nn.data`)
        c = config
        self.total_steps = planned_steps(self.data, running, c.seq_len, c.batch_size, c.epochs, c.max_steps)

    @property
    def train_loss(self) -> float | None:
        """The bias-corrected moving average of the training loss (None before the first step)."""
        if not self.ema_steps:
            return None
        return self.ema / (1.0 - EMA_DECAY**self.ema_steps)

    @property
    def remaining_steps(self) -> int:
        """Optimiser steps left to the planned end of the run (what a progress bar counts down)."""
        return max(self.total_steps - self.step, 0)

    def note(self, message: str) -> None:
        """A line for whoever shows the run (the progress callback); nothing without one."""
        for callback in self.callbacks:
            callback.on_note(self, message)

    def warn(self, message: str) -> None:
        """Something the user should know: a line of the progress display, else a :class:`TrainingWarning`."""
        if any(callback.shows_notes for callback in self.callbacks):
            self.note(f"scratchgen: warning: {message}")
        else:
            warnings.warn(message, TrainingWarning, stacklevel=3)

    # --- evaluation -------------------------------------------------------------------------------

    def evaluate(self, params=None) -> float:
        """Validation loss in nats per token; NaN when there is no validation data."""
        params = params or self.params
        if self.valid is None or len(self.valid) == 0:
            return math.nan
        if self.running:
            return self.net.stream_loss(params, self.valid, self.config.batch_size, max(self.config.seq_len, 64))[0]
        return self.net.sequences_loss(params, self.valid, labels=self.valid_labels)[0]

    # --- the loop ---------------------------------------------------------------------------------

    def run(self, callbacks=()) -> None:
        """Train until the epochs, ``max_steps``, the time limit or early stopping end it.

        ``callbacks`` (:mod:`scratchgen.nn.callbacks`) show progress, write checkpoints and the curve.
        The BLAS runs on one thread: the products of a step are small enough that a second BLAS thread
        mostly waits for the first (and on a busy machine, for a core), measured slower here. The cores
        are used instead by ``config.threads`` threads, each computing a shard of the batch's rows
        (:mod:`scratchgen.nn.parallel`).
        """
        self.callbacks = list(callbacks)
        self.clock = time.process_time if self.config.clock == "cpu" else time.perf_counter
        # overflow to inf or NaN is expected with too high a rate: the guards below handle it, not numpy's warnings
        with (
            one_blas_thread(),
            DataParallel(self.net, self.config.threads) as self.parallel,
            np.errstate(over="ignore", invalid="ignore", divide="ignore"),
        ):
            try:
                for callback in self.callbacks:
                    callback.on_start(self)
                self._run()
            finally:
                for callback in self.callbacks:
                    callback.close(self)
        for callback in self.callbacks:
            callback.on_end(self)

    def _run(self) -> None:
        c = self.config
        self.clock_start, self.cpu_start = self.clock(), time.process_time()
        start_time, tokens_at_start = time.perf_counter(), self.tokens
        if self.stopped or self.epoch >= c.epochs:
            self.resumed_finished = True
            self.warn(
                f"the checkpoint's run had already finished ({self.stopped or f'{c.epochs} epochs'}): "
                "nothing left to train; its best model is saved"
            )
        while self.epoch < c.epochs and not self.stopped:
            if self.epoch_rng_state is None:  # a fresh epoch: remember the draw's start
                self.epoch_rng_state = self.rng.bit_generator.state
            else:  # resumed mid-epoch: replay the same draw
                self.rng.bit_generator.state = self.epoch_rng_state
            plan = epoch_plan(self.data, self.running, c.seq_len, c.batch_size, self.rng)
            while self.step_in_epoch < len(plan):
                lr, norm = self._train_step(plan[self.step_in_epoch])
                self.step_in_epoch += 1
                last = self.step_in_epoch == len(plan)
                if last:  # the position is always "the next step"
                    self.epoch += 1
                    self.step_in_epoch = 0
                    self.epoch_rng_state = None
                done = bool(c.max_steps and self.step >= c.max_steps)
                out_of_time = bool(c.time_limit and self.clock() - self.clock_start > c.time_limit)
                if self.ema_steps and (
                    last or done or out_of_time or (c.eval_interval and self.step % c.eval_interval == 0)
                ):
                    elapsed = time.perf_counter() - start_time
                    self._evaluate_and_record(lr, norm, elapsed, (self.tokens - tokens_at_start) / max(elapsed, 1e-9))
                if done:
                    self.stopped = f"reached max_steps={c.max_steps}"
                if out_of_time:
                    self.stopped = f"reached time_limit={c.time_limit}s"
                for callback in self.callbacks:
                    callback.after_step(self, last)
                if last or self.stopped:
                    break
        self._finish()

    def _train_step(self, item) -> tuple[float, float]:
        """One optimiser step on one chunk (the equations of the module docstring); (lr, gradient norm).

        A non-finite loss, gradient or weight does not count as a step: the NaN guard restores.
        """
        c = self.config
        x, y, mask, fresh = chunk_batch(self.data, self.running, item, c.seq_len)
        labels = chunk_labels(self.labels, item)  # (B,) or None
        if labels is not None and (fresh or self.h is None):
            self.h = None  # the labels' start states (eq. L2 of conditioning), made by the network
        elif fresh or self.h is None:
            self.h = self.net.start_state(self.params, x.shape[0])  # an RNN's (L, B, H) zeros
        schedule_step = self.step
        if c.time_limit:  # a time-limited run spans its schedule over the time it has
            elapsed_fraction = (self.clock() - self.clock_start) / c.time_limit
            schedule_step = max(schedule_step, int(elapsed_fraction * self.total_steps))
        lr = learning_rate(schedule_step, self.total_steps, c.lr, c.lr_schedule, c.warmup) * self.lr_scale
        inputs: tuple = (x, y, mask, self.h)
        shape = self.net.dropout_shape(self.params, x) if c.dropout else None
        if shape is not None:  # a fresh mask every step (eq. (14) of layers for an RNN: (B, T, H))
            keep = self.drop_rng.random(shape) >= c.dropout
            inputs += ((keep, c.dropout),)
        if labels is not None:
            inputs = inputs[:4] + ((inputs[4] if len(inputs) > 4 else None), labels)
        loss, hT, grads = self.parallel.step(self.params, inputs)  # the shards' threads (nn/parallel.py)
        norm = clip_by_global_norm(grads, c.clip)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            self._recover(f"non-finite loss ({loss:g}) or gradient norm ({norm:g}) at step {self.step + 1}")
            return lr, norm
        if self.good is None:  # before the first update: the initial weights
            self._snapshot_good()
        self.opt.step(self.params, grads, lr, self.parallel.defer)  # with 2 threads, half the parameters on the second
        if not _all_finite(self.params):
            self._recover(f"the weights became non-finite at step {self.step + 1}")
            return lr, norm
        self.h = hT
        self.step += 1
        self.tokens += int(mask.sum()) if mask is not None else y.size
        self.ema = EMA_DECAY * self.ema + (1.0 - EMA_DECAY) * loss
        self.ema_steps += 1
        for callback in self.callbacks:
            callback.on_step(self)
        return lr, norm

    def _finish(self) -> None:
        """After the loop: refuse a run without one good step; keep the best model, not the last."""
        if self.restores and not self.ema_steps:  # not one step succeeded: nothing was learned
            raise TrainingError(
                f"training diverged: {self.last_failure}, and after {self.restores} restores of the "
                f"initial weights (the learning rate halved each time) not one step succeeded; "
                f"lower --lr (it is {self.config.lr:g})"
            )
        if self.best is not None:
            for k in self.params:
                self.params[k][...] = self.best[k]
        if self.stopped and not self.resumed_finished:
            self.note(f"stopped: {self.stopped}")

    def _snapshot_good(self) -> None:
        self.good = (
            {k: v.copy() for k, v in self.params.items()},
            {k: v.copy() for k, v in self.opt.state.items()},
            self.opt.steps,
        )

    def _recover(self, what: str) -> None:
        """NaN/inf guard: back to the last good parameters, half the learning rate, and say so.

        After ``MAX_RESTORES`` restores the run is diverging whatever we do: stop with the reason.
        """
        self.restores += 1
        self.last_failure = what
        if self.restores > MAX_RESTORES:
            raise TrainingError(
                f"training diverged: {what} and restoring the last good weights did not help "
                f"({MAX_RESTORES} restores, the learning rate halved each time); lower --lr (it is {self.config.lr:g})"
            )
        self.lr_scale *= 0.5
        if self.good is not None:
            params, state, steps = self.good
            for k in self.params:
                self.params[k][...] = params[k]
        else:
            state, steps = {}, 0
        self.opt.state = {k: v.copy() for k, v in state.items()}
        self.opt.steps = steps
        self.h = None
        # A progress note, not a warning: a run that recovers says how often in its summary, and one that
        # does not ends in the error above, which says it all.
        self.note(
            f"{what}: restored the last good weights and lowered the learning rate to "
            f"{self.lr_scale:g} x lr (restore {self.restores} of at most {MAX_RESTORES})"
        )

    def _evaluate_and_record(self, lr, norm, seconds, speed) -> None:
        val = self.evaluate()
        train_loss = self.train_loss
        assert train_loss is not None, "called only after a counted step (ema_steps > 0)"
        self.history.append(
            {
                "step": self.step,
                "epoch": self.epoch + (1 if self.step_in_epoch else 0),
                "tokens": self.tokens,
                "train_loss": float(train_loss),
                "valid_loss": float(val),
                "lr": float(lr),
                "grad_norm": float(norm),
                "seconds": round(float(seconds), 3),
                "cpu_seconds": round(time.process_time() - self.cpu_start, 3),
            }
        )
        val_text = f"validation loss {val:.4f}" if math.isfinite(val) else "no validation data"
        self.note(
            f"step {self.step} (epoch {self.history[-1]['epoch']}): train loss {train_loss:.4f}, "
            f"{val_text} nats/token, {speed:,.0f} tok/s, lr {lr:.3g}"
        )
        self._check_against_uniform(
            val if math.isfinite(val) else train_loss, "validation" if math.isfinite(val) else "training"
        )
        if math.isfinite(val):
            self._snapshot_good()
            if val < self.best_loss:
                self.best_loss = val
                self.best = {k: v.copy() for k, v in self.params.items()}
                self.bad_evals = 0
            else:
                self.bad_evals += 1
                if self.config.patience and self.bad_evals >= self.config.patience:
                    self.stopped = f"early stopping: no better validation loss in {self.bad_evals} evaluations"

    def _check_against_uniform(self, loss: float, which: str) -> None:
        """Say once when a loss is clearly above ln V: a uniform guess over the vocabulary would do better."""
        uniform = math.log(len(self.m.vocab_))
        if worse_than_uniform(loss, len(self.m.vocab_)) and not self.worse_than_uniform:
            self.worse_than_uniform = True
            self.warn(
                f"the {which} loss {loss:.4g} nats/token is worse than a uniform guess (ln V = {uniform:.2f}): "
                f"the network is not learning; lower --lr (it is {self.config.lr:g})"
            )

    # --- checkpoints (:mod:`scratchgen.nn.checkpoint`) --------------------------------------------

    def fingerprint(self) -> int:
        """A checksum of the training data, so a checkpoint is not resumed on another corpus."""
        data = self.train if self.running else np.concatenate([np.append(s, -1) for s in self.train])
        crc = zlib.crc32(np.ascontiguousarray(data, dtype=np.int64).tobytes())
        if self.labels is not None:  # and the label of each sequence
            crc = zlib.crc32(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes(), crc)
        return crc

    def save_checkpoint(self, path: str) -> None:
        """Write the whole state of this run to ``path`` (:func:`scratchgen.nn.checkpoint.save_checkpoint`)."""
        save_checkpoint(self, path)

    def load_checkpoint(self, path: str) -> None:
        """Continue the run saved at ``path`` (:func:`scratchgen.nn.checkpoint.load_checkpoint`)."""
        load_checkpoint(self, path)
