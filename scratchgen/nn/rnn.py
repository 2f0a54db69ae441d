r"""The vanilla RNN language model: the network of :mod:`scratchgen.nn.layers` behind the protocol.

The model of the chain rule P(x) = prod_t P(x_t | x_<t) is::

    h^l_t = tanh(x^l_t W_xh^l + h^l_{t-1} W_hh^l + b_h^l),  x^1_t = C[x_{t-1}] (or one-hot),
                                                             x^l_t = h^{l-1}_t for l > 1      (1)
    P(x_t = v | x_<t) = softmax(h^L_t W_hy + b_y)[v],        x_0 = <s>, h_0 = 0               (2)

The state of the stepping interface is the tuple of the L hidden states ``h^l`` (each (B, H)):
``initial_state`` is the state after reading ``<s>`` from zeros, ``advance`` applies eq. (1) once,
and ``next_logprobs`` is the log of eq. (2) with the ``<s>`` entry set to -inf (it is never a next
token) and the rest renormalised. ``token_logprobs`` runs eq. (1) and (2) over whole padded
batches (one matrix product for all steps of the input and output projections).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import CorpusError, ModelFileError, ScratchgenError, TrainingError
from ..io import ArraySpec
from ..model import LanguageModel, register_model
from ..resources import check_memory
from ..text import Vocabulary
from .data import BOS, EOS, padded_batch
from .layers import layer_params, linear_forward, stack_forward
from .optim import OPTIMIZERS, SCHEDULES, init_params
from .train import Trainer, stream_loss, training_memory

__all__ = ["RNNModel"]

DTYPES = ("float64", "float32")
MAX_LAYERS = 1000   # also bounds the schema a (possibly edited) file header asks to build


# The largest |weight| a model file may hold. A trained RNN's weights are below 100 and even a diverged run's
# (--lr 1e6) far below this; yet with |h| <= 1 no product in eqs. (2) and (4) can overflow float32 below it
# (E |w|^2 and H |w| stay under 1e38), so every finite file gives finite log-probabilities.
MAX_WEIGHT = 1e15


def _log_softmax(Y: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, in float64, with the <s> column excluded (-inf)."""
    Y = np.array(Y, dtype=np.float64)                            # (..., V)
    Y[..., BOS] = -np.inf
    Y -= Y.max(axis=-1, keepdims=True)
    Y -= np.log(np.exp(Y).sum(axis=-1, keepdims=True))
    return Y


@register_model
class RNNModel(LanguageModel):
    """A vanilla (Elman, tanh) recurrent network language model, trained by hand-written BPTT.

    Parameters
    ----------
    hidden : int
        H, the width of each hidden state.
    layers : int
        L, stacked tanh layers.
    embedding : int or None
        E, width of an embedding table C; None feeds one-hot vectors (the rows of W_xh are then the
        embeddings, as in min-char-rnn).
    seq_len : int
        T, steps of truncated backpropagation through time (the length of a training chunk).
    batch_size : int
        B, parallel streams (running text) or sequences (a line corpus) per step.
    lr : float
        Base learning rate.
    epochs : int
        Passes over the training data (at most).
    optimizer : {"adam", "adamw", "sgd", "adagrad"}
    weight_decay : float
        lambda of AdamW (only with ``optimizer="adamw"``).
    dropout : float
        Rate of (inverted) dropout on the top hidden states before the output projection, in
        training only (a regulariser: tinyshakespeare overfits without it).
    lr_schedule : {"constant", "cosine", "step"}
    warmup : int
        Steps of linear warm-up.
    clip : float or None
        Largest global gradient norm (None: no clipping).
    max_steps : int or None
        Stop after this many optimiser steps (the schedule then spans them).
    running_text : {"auto", True, False}
        True: the corpus is consecutive pieces of one text (``read_corpus(mode="chunks")``), trained
        as B parallel streams with the state carried across chunks; False: separate sequences,
        padded and masked; "auto": True when the mean sequence length is at least ``seq_len``.
    valid_fraction : float
        Held out for validation (the last part of running text; a random part of a line corpus).
    patience : int or None
        Early stopping after this many evaluations without a better validation loss.
    eval_interval : int or None
        Evaluate every this many steps (besides the end of every epoch).
    min_count : int
        Tokens seen fewer times become ``<unk>``.
    dtype : {"float64", "float32"}
    seed : int
    verbose : bool
        Print progress lines to stderr.
    checkpoint : str or None
        Write a checkpoint here every ``checkpoint_every`` steps and at the end of every epoch.
    checkpoint_every : int
    curve_csv : str or None
        Write the learning curve (step, tokens, train and validation loss) to this CSV file.
    time_limit : float or None
        Stop training after this many seconds (a cosine schedule then spans that time).
    clock : {"wall", "cpu"}
        What ``time_limit`` counts: wall-clock seconds, or this process's CPU seconds (a fair limit
        on a shared machine: training uses one BLAS thread, so CPU seconds are one core's busy time).
    tokenizer : Tokenizer or None

    Attributes
    ----------
    params_ : dict of ndarray
        ``C`` (V, E) if any, ``W_xh.l``, ``W_hh.l``, ``b_h.l``, ``W_hy`` (H, V), ``b_y`` (V,).
    vocab_ : Vocabulary
    history_ : list of dict
        One row per evaluation: step, epoch, tokens, train_loss, valid_loss, lr, grad_norm, seconds,
        cpu_seconds.
    valid_loss_ : float
        Best validation loss (nats per token), nan without a validation split.

    Examples
    --------
    >>> m = RNNModel(hidden=8, epochs=2, batch_size=2, seq_len=8, valid_fraction=0, seed=0)
    >>> m = m.fit(["abab", "abba", "baba"])
    >>> lp = m.next_logprobs(m.initial_state(1))
    >>> lp.shape, bool(np.isclose(np.exp(lp).sum(), 1.0))   # V = <unk> <s> </s> a b
    ((1, 5), True)
    """

    def __init__(self, *, hidden: int = 256, layers: int = 1, embedding: int | None = None, seq_len: int = 64,
                 batch_size: int = 32, lr: float = 3e-3, epochs: int = 20, optimizer: str = "adam",
                 weight_decay: float = 0.01, dropout: float = 0.0, lr_schedule: str = "cosine", warmup: int = 0,
                 clip: float | None = 5.0, max_steps: int | None = None, running_text="auto",
                 valid_fraction: float = 0.1, patience: int | None = 3, eval_interval: int | None = None,
                 min_count: int = 1, dtype: str = "float64", seed: int = 0, verbose: bool = False,
                 checkpoint: str | None = None, checkpoint_every: int = 200, curve_csv: str | None = None,
                 time_limit: float | None = None, clock: str = "wall", tokenizer=None):
        super().__init__(tokenizer=tokenizer)
        self.hidden = hidden
        self.layers = layers
        self.embedding = embedding
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.lr = lr
        self.epochs = epochs
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.lr_schedule = lr_schedule
        self.warmup = warmup
        self.clip = clip
        self.max_steps = max_steps
        self.running_text = running_text
        self.valid_fraction = valid_fraction
        self.patience = patience
        self.eval_interval = eval_interval
        self.min_count = min_count
        self.dtype = dtype
        self.seed = seed
        self.verbose = verbose
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.curve_csv = curve_csv
        self.time_limit = time_limit
        self.clock = clock

    # --- validation of hyperparameters ------------------------------------------------------------

    #: The command-line flag of each hyperparameter, so a message names both.
    FLAGS = {"hidden": "--hidden", "layers": "--layers", "embedding": "--embedding", "seq_len": "--seq-len",
             "batch_size": "--batch", "lr": "--lr", "epochs": "--epochs", "optimizer": "--optimizer",
             "weight_decay": "--weight-decay", "dropout": "--dropout", "lr_schedule": "--schedule",
             "warmup": "--warmup", "clip": "--clip", "max_steps": "--max-steps", "running_text": "--mode",
             "valid_fraction": "--valid-fraction", "patience": "--patience", "eval_interval": "--eval-every",
             "min_count": "--min-count", "dtype": "--dtype", "seed": "--seed", "checkpoint": "--checkpoint",
             "checkpoint_every": "--checkpoint-every", "curve_csv": "--curve", "time_limit": "--time-limit",
             "clock": "--clock", "verbose": "--quiet"}

    def _check_params(self) -> None:
        """Check every constructor argument (no side effect: also run on the header of a file being loaded).

        A message names the argument and its command-line flag, e.g. "batch_size (--batch) must be an
        integer >= 1, got 0".
        """
        def bad(name: str, what: str) -> ScratchgenError:
            return ScratchgenError(f"{name} ({self.FLAGS[name]}) must be {what}, got {getattr(self, name)!r}")

        def is_int(v) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_number(v) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)

        for name in ("hidden", "layers", "seq_len", "batch_size", "epochs", "min_count", "checkpoint_every"):
            if not (is_int(getattr(self, name)) and getattr(self, name) >= 1):
                raise bad(name, "an integer >= 1")
        if self.layers > MAX_LAYERS:
            raise bad("layers", f"at most {MAX_LAYERS} (a deeper vanilla RNN does not train)")
        for name in ("embedding", "max_steps", "patience", "eval_interval"):
            v = getattr(self, name)
            if v is not None and not (is_int(v) and v >= 1):
                raise bad(name, "an integer >= 1 or None")
        for name in ("warmup", "seed"):
            if not (is_int(getattr(self, name)) and getattr(self, name) >= 0):
                raise bad(name, "an integer >= 0")
        if not (is_number(self.lr) and self.lr > 0):
            raise bad("lr", "a positive finite number")
        if not (is_number(self.weight_decay) and self.weight_decay >= 0):
            raise bad("weight_decay", "a finite number >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in SCHEDULES:
            raise bad("lr_schedule", f"one of {', '.join(SCHEDULES)}")
        if self.dtype not in DTYPES:
            raise bad("dtype", f"one of {', '.join(DTYPES)}")
        if not (is_number(self.valid_fraction) and 0 <= self.valid_fraction < 1):
            raise bad("valid_fraction", "a fraction in [0, 1)")
        if not (isinstance(self.running_text, bool) or self.running_text == "auto"):
            raise ScratchgenError(f"running_text must be 'auto', True (--mode chunks) or False (--mode lines), "
                                  f"got {self.running_text!r}")
        if self.clip is not None and not (is_number(self.clip) and self.clip > 0):
            raise bad("clip", "a positive number, or None for no clipping (--clip 0)")
        if not (is_number(self.dropout) and 0 <= self.dropout < 1):
            raise bad("dropout", "a fraction in [0, 1)")
        if self.time_limit is not None and not (is_number(self.time_limit) and self.time_limit > 0):
            raise bad("time_limit", "a positive number of seconds or None")
        if self.clock not in ("wall", "cpu"):
            raise bad("clock", "'wall' or 'cpu'")
        if not isinstance(self.verbose, bool):
            raise ScratchgenError(f"verbose must be True or False, got {self.verbose!r}")
        for name in ("checkpoint", "curve_csv"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise bad(name, "a path (str) or None")

    def _array_schema(self) -> dict:
        """Every parameter array, its exact shape from the header (H, L, E, V), float, finite and bounded."""
        V, H, E = len(self.vocab_), self.hidden, self.embedding
        shapes = {"C": (V, E)} if E else {}
        for layer in range(self.layers):
            shapes[f"W_xh.{layer}"] = ((E or V) if layer == 0 else H, H)
            shapes[f"W_hh.{layer}"] = (H, H)
            shapes[f"b_h.{layer}"] = (H,)
        shapes["W_hy"] = (H, V)
        shapes["b_y"] = (V,)
        return {f"param/{k}": ArraySpec(shape, low=-MAX_WEIGHT, high=MAX_WEIGHT) for k, shape in shapes.items()}

    # --- training ---------------------------------------------------------------------------------

    def fit(self, corpus, resume: str | None = None, _interrupt_at: int | None = None) -> "RNNModel":
        """Train on a corpus and return ``self``.

        Parameters
        ----------
        corpus : list of str or of token lists
        resume : str or None
            A checkpoint written by an earlier run with the same corpus and hyperparameters: training
            continues from it, and ends with the same parameters as an uninterrupted run.

        Raises
        ------
        ResourceError
            The run would need more memory than the machine has (checked before allocating).
        TrainingError
            Training diverged (non-finite weights that restoring could not cure); nothing is kept.
        """
        self._check_params()
        sequences = self.tokenize_corpus(corpus)
        if not any(sequences):
            raise CorpusError("cannot train an RNN on a corpus without tokens")
        self.vocab_ = Vocabulary.build(sequences, min_count=self.min_count)
        ids = [self.vocab_.encode(s) for s in sequences]
        running = self.running_text
        if running == "auto":
            running = float(np.mean([len(s) for s in ids])) >= self.seq_len
        self.running_text_ = bool(running)
        self._check_memory(ids, bool(running))
        rng = np.random.default_rng(self.seed)
        self.params_ = init_params(len(self.vocab_), self.hidden, self.layers, self.embedding, rng,
                                   dtype=np.dtype(self.dtype))
        if running:
            stream = np.concatenate([[BOS], *ids, [EOS]]).astype(np.int64)   # one running text
            n_valid = int(len(stream) * self.valid_fraction)
            train, valid = stream[:len(stream) - n_valid], (stream[len(stream) - n_valid - 1:] if n_valid > 1 else None)
            if len(train) < self.batch_size + 1:
                raise CorpusError(f"a running text of {len(train)} training tokens is too short for "
                                  f"{self.batch_size} parallel streams (--batch {self.batch_size}); lower --batch")
        else:
            order = rng.permutation(len(ids))
            n_valid = int(len(ids) * self.valid_fraction)
            valid = [ids[i] for i in order[:n_valid]] or None
            train = [ids[i] for i in order[n_valid:]]
            if not train:
                raise CorpusError("no training sequences left after the validation split (--valid-fraction)")
        self.has_validation_ = valid is not None
        trainer = Trainer(self, train, valid, bool(running), rng)
        if resume is not None:
            trainer.load_checkpoint(resume)
        trainer.run(checkpoint=self.checkpoint, checkpoint_every=self.checkpoint_every, curve_csv=self.curve_csv,
                    verbose=self.verbose, time_limit=self.time_limit, interrupt_at=_interrupt_at,
                    clock=self.clock)
        if not all(np.isfinite(v).all() for v in self.params_.values()):   # the guards make this unreachable
            raise TrainingError("training diverged: the weights are not finite; lower --lr")
        self.history_ = trainer.history
        self.valid_loss_ = trainer.best_loss if math.isfinite(trainer.best_loss) else math.nan
        self.stopped_ = trainer.stopped
        self.worse_than_uniform_ = trainer.worse_than_uniform
        self.resumed_finished_ = trainer.resumed_finished
        self.restores_ = trainer.restores
        self.curve_written_ = trainer.curve_written
        return self

    def _check_memory(self, ids: list, running: bool) -> None:
        """Refuse a run that cannot fit in memory before allocating it (:func:`training_memory`)."""
        V = len(self.vocab_)
        if running:
            eval_rows, eval_len = self.batch_size, max(self.seq_len, 64)
        else:
            eval_rows = min(256, max(int(len(ids) * self.valid_fraction), 1))
            eval_len = max(len(s) for s in ids) + 1
        nbytes = training_memory(V, self.hidden, self.layers, self.embedding, self.batch_size, self.seq_len,
                                 np.dtype(self.dtype).itemsize, self.optimizer, eval_rows, eval_len)
        check_memory(nbytes, f"training an RNN of hidden {self.hidden} with vocabulary {V}, {self.layers} layer(s), "
                             f"batch {self.batch_size} x {self.seq_len} steps in {self.dtype}",
                     "lower --hidden, --batch or --seq-len")

    def _fitted_params(self) -> dict:
        self.fitted_vocab()
        return self.params_

    # --- the stepping interface: eq. (1) and (2) --------------------------------------------------

    def _step(self, state, ids: np.ndarray):
        p = self._fitted_params()
        x = None
        new = []
        for layer in range(self.layers):
            lp = layer_params(p, layer)
            if layer == 0:
                a = p["C"][ids] @ lp["W_xh"] if "C" in p else lp["W_xh"][ids]   # (B, H) x_t W_xh
            else:
                a = x @ lp["W_xh"]                                   # (B, H)
            a = a + state[layer] @ lp["W_hh"] + lp["b_h"]            # (B, H) eq. (1)
            x = np.tanh(a)                                           # (B, H)
            new.append(x)
        return tuple(new)

    def initial_state(self, batch_size: int = 1):
        """The L hidden states (each (B, H)) after reading ``<s>`` from zero states."""
        p = self._fitted_params()
        zeros = tuple(np.zeros((batch_size, self.hidden), dtype=p["W_hh.0"].dtype) for _ in range(self.layers))
        return self._step(zeros, np.full(batch_size, BOS, dtype=np.int64))

    def advance(self, state, ids):
        ids = self._check_ids(np.asarray(ids).reshape(-1))
        return self._step(state, ids)

    def next_logprobs(self, state) -> np.ndarray:
        p = self._fitted_params()
        return _log_softmax(state[-1] @ p["W_hy"] + p["b_y"])        # (B, V) eq. (2)

    def token_logprobs(self, sequences):
        """Vectorised: eq. (1)-(2) over padded batches, projections as one product for all steps."""
        p = self._fitted_params()
        seqs = [self._check_ids(s) for s in sequences]
        out = [None] * len(seqs)
        order = np.argsort([len(s) for s in seqs], kind="stable")
        for start in range(0, len(order), 256):
            rows = order[start:start + 256]
            x, y, m = padded_batch([seqs[i] for i in rows])              # (B, T)
            h0 = np.zeros((self.layers, len(rows), self.hidden), dtype=p["W_hh.0"].dtype)   # (L, B, H)
            X = p["C"][x] if "C" in p else x                              # (B, T, E) or ids
            (H, _), _ = stack_forward(p, (X, h0))                          # (B, T, H)
            Y, _ = linear_forward(p, H)                                    # (B, T, V)
            logp = _log_softmax(Y)                                         # (B, T, V)
            picked = np.take_along_axis(logp, y[:, :, None], axis=2)[:, :, 0]   # (B, T)
            for r, i in enumerate(rows):
                out[i] = picked[r, :len(seqs[i]) + 1]
        return out

    def stream_loss(self, corpus, streams: int = 32) -> float:
        """Mean nats per token of a running text (pieces joined, ``<s>`` first), state carried."""
        ids, _ = self.encode_corpus(corpus)
        stream = np.concatenate([[BOS], *ids, [EOS]]).astype(np.int64)
        return stream_loss(self._fitted_params(), self.layers, stream, streams)[0]

    # --- files ------------------------------------------------------------------------------------

    def _save_state(self):
        extra = {"running_text_": getattr(self, "running_text_", None), "history_": getattr(self, "history_", []),
                 "valid_loss_": getattr(self, "valid_loss_", math.nan)}
        return extra, {f"param/{k}": v for k, v in self._fitted_params().items()}

    def _load_state(self, extra, arrays):
        """The arrays (already checked against :meth:`_array_schema`) and the header's fitted state."""
        history, valid_loss, running = extra.get("history_", []), extra.get("valid_loss_", math.nan), \
            extra.get("running_text_")
        if not (isinstance(history, list) and all(isinstance(row, dict) for row in history)):
            raise ModelFileError("its training history (state.history_) is not a list of JSON objects")
        if valid_loss is None:                                   # JSON null: no validation data
            valid_loss = math.nan
        if not isinstance(valid_loss, (int, float)) or isinstance(valid_loss, bool):
            raise ModelFileError(f"its validation loss (state.valid_loss_) is not a number: {valid_loss!r}")
        if running is not None and not isinstance(running, bool):
            raise ModelFileError(f"its state.running_text_ is not true, false or null: {running!r}")
        self.params_ = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
        self.running_text_ = running
        self.history_ = history
        self.valid_loss_ = float(valid_loss)
