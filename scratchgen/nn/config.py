"""How an RNN is trained: :class:`TrainConfig`, a small dataclass saved with checkpoints only.

What *defines* a model (H, L, E, the dtype, the tokenizer) is its architecture: the constructor of
:class:`~scratchgen.nn.rnn.RNNModel` takes it and the model file stores it. How the weights were
*found* (rates, schedules, batches, seeds) is this configuration: a checkpoint stores it, because a
resumed run must follow the same recipe; a model file does not, because sampling and scoring never
need it. Where files go and what is shown while training are neither: they are the callbacks of a
run (:mod:`scratchgen.nn.callbacks`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import ScratchgenError
from .optim import OPTIMIZERS, SCHEDULES

__all__ = ["TrainConfig", "FLAGS", "check_int", "check_config", "config_from"]

#: The command-line flag of each option (architecture and training), so a message names both.
FLAGS = {
    "hidden": "--hidden",
    "layers": "--layers",
    "embedding": "--embedding",
    "dtype": "--dtype",
    "seq_len": "--seq-len",
    "batch_size": "--batch",
    "lr": "--lr",
    "epochs": "--epochs",
    "optimizer": "--optimizer",
    "weight_decay": "--weight-decay",
    "dropout": "--dropout",
    "lr_schedule": "--schedule",
    "warmup": "--warmup",
    "clip": "--clip",
    "max_steps": "--max-steps",
    "running_text": "--mode",
    "valid_fraction": "--valid-fraction",
    "patience": "--patience",
    "eval_interval": "--eval-every",
    "min_count": "--min-count",
    "seed": "--seed",
    "time_limit": "--time-limit",
    "clock": "--clock",
    "threads": "--threads",
}


@dataclasses.dataclass
class TrainConfig:
    """The training recipe of an RNN (defaults train a sensible character model on names).

    Attributes
    ----------
    seq_len : int
        T, steps of truncated backpropagation through time: long enough to carry a word's context.
    batch_size : int
        B, parallel streams (running text) or sequences (a line corpus) per step.
    lr : float
        Base learning rate: 3e-3 is Adam's safe middle for a small RNN.
    epochs : int
        Passes over the training data (at most; early stopping usually ends sooner).
    optimizer : {"adam", "adamw", "sgd", "adagrad"}
    weight_decay : float
        lambda of AdamW (only with ``optimizer="adamw"``).
    dropout : float
        Rate of (inverted) dropout on the top hidden states, in training only.
    lr_schedule : {"constant", "cosine", "step"}
        Cosine decays the rate to zero over the run, which ends it in a calm minimum.
    warmup : int
        Steps of linear warm-up.
    clip : float or None
        Largest global gradient norm (None: no clipping); 5 tames an RNN's exploding gradients.
    max_steps : int or None
        Stop after this many optimiser steps (the schedule then spans them).
    running_text : {"auto", True, False}
        True: consecutive pieces of one text, trained as B streams with the state carried; False:
        separate sequences, padded and masked; "auto": True when the mean length is at least ``seq_len``.
    valid_fraction : float
        Held out for validation (the last part of running text; a random part of a line corpus).
    patience : int or None
        Early stopping after this many evaluations without a better validation loss.
    eval_interval : int or None
        Evaluate every this many steps (besides the end of every epoch).
    min_count : int
        Tokens seen fewer times become ``<unk>`` (it shapes the vocabulary, so it is part of the recipe).
    seed : int
        Initialisation, data order and dropout masks all follow from it.
    time_limit : float or None
        Stop after this many seconds (a cosine schedule then spans that time).
    clock : {"wall", "cpu"}
        What ``time_limit`` counts: wall-clock seconds or this process's CPU seconds.
    threads : int
        k, the threads of a training step: the batch is cut into k shards of rows, each computed in its
        own thread on one core (:mod:`scratchgen.nn.parallel`); a batch or network too small for shards is
        not cut, and a Transformer then hands its weight gradients and half of each block's forward to
        the second thread instead (:mod:`scratchgen.nn.overlap`); an LSTM's shards run in worker processes
        rather than threads (:mod:`scratchgen.nn.process_shards`: no interpreter lock between them).
        1 by default, because a second thread only helps when a core is free: on an idle 2-core
        machine (benchmarks/RESULTS.md, sections nn-speed, deep-gated-speed, deep_transformer_speed), 2 threads
        made the Transformer at E 128, T 128 1.42x as fast as 1, the RNN at H 512 1.38x, the GRU and the LSTM
        at H 256 1.18x and 1.22x, and left the RNN at H 256 even (0.96x). The result differs from 1 thread's
        only by rounding, so a checkpoint may be resumed with another number (bit for bit with the same).
    """

    seq_len: int = 64
    batch_size: int = 32
    lr: float = 3e-3
    epochs: int = 20
    optimizer: str = "adam"
    weight_decay: float = 0.01
    dropout: float = 0.0
    lr_schedule: str = "cosine"
    warmup: int = 0
    clip: float | None = 5.0
    max_steps: int | None = None
    running_text: bool | str = "auto"
    valid_fraction: float = 0.1
    patience: int | None = 3
    eval_interval: int | None = None
    min_count: int = 1
    seed: int = 0
    time_limit: float | None = None
    clock: str = "wall"
    threads: int = 1


FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def config_from(config: TrainConfig | None = None, **options) -> TrainConfig:
    """``config`` (or the defaults) with ``options`` replaced; an unknown name is refused by name."""
    unknown = sorted(set(options) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown RNN option {unknown[0]!r}; the training options are {', '.join(FIELDS)}")
    return dataclasses.replace(config or TrainConfig(), **options)


def _bad(name: str, value, what: str) -> ScratchgenError:
    return ScratchgenError(f"{name} ({FLAGS[name]}) must be {what}, got {value!r}")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def check_int(name: str, value, low: int = 1, optional: bool = False) -> None:
    """An integer >= ``low`` (or None when ``optional``), else an error naming the flag."""
    if optional and value is None:
        return
    if not (_is_int(value) and value >= low):
        raise _bad(name, value, f"an integer >= {low}" + (" or None" if optional else ""))


def check_config(c: TrainConfig) -> None:
    """Check every training option (no side effect); a message names the option and its flag,
    e.g. "batch_size (--batch) must be an integer >= 1, got 0"."""
    if not isinstance(c, TrainConfig):
        raise ScratchgenError(f"config must be a TrainConfig, got {type(c).__name__}")
    for name in ("seq_len", "batch_size", "epochs", "min_count", "threads"):
        check_int(name, getattr(c, name))
    for name in ("max_steps", "patience", "eval_interval"):
        check_int(name, getattr(c, name), optional=True)
    for name in ("warmup", "seed"):
        check_int(name, getattr(c, name), low=0)
    if not (_is_number(c.lr) and c.lr > 0):
        raise _bad("lr", c.lr, "a positive finite number")
    if not (_is_number(c.weight_decay) and c.weight_decay >= 0):
        raise _bad("weight_decay", c.weight_decay, "a finite number >= 0")
    for name, choices in (("optimizer", OPTIMIZERS), ("lr_schedule", SCHEDULES), ("clock", ("wall", "cpu"))):
        if getattr(c, name) not in choices:
            raise _bad(name, getattr(c, name), f"one of {', '.join(choices)}")
    if not (_is_number(c.valid_fraction) and 0 <= c.valid_fraction < 1):
        raise _bad("valid_fraction", c.valid_fraction, "a fraction in [0, 1)")
    if not (isinstance(c.running_text, bool) or c.running_text == "auto"):
        raise ScratchgenError(
            f"running_text must be 'auto', True (--mode chunks) or False (--mode lines), got {c.running_text!r}"
        )
    if c.clip is not None and not (_is_number(c.clip) and c.clip > 0):
        raise _bad("clip", c.clip, "a positive number, or None for no clipping (--clip 0)")
    if not (_is_number(c.dropout) and 0 <= c.dropout < 1):
        raise _bad("dropout", c.dropout, "a fraction in [0, 1)")
    if c.time_limit is not None and not (_is_number(c.time_limit) and c.time_limit > 0):
        raise _bad("time_limit", c.time_limit, "a positive number of seconds or None")
