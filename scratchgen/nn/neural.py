"""What the neural language models share: the recipe, the preparation of a fit, the training run and the files.

:class:`NeuralModel` is the base of :class:`~scratchgen.nn.rnn.RNNModel` (tanh, GRU and LSTM cells),
:class:`~scratchgen.nn.mlp.MLPModel` and :class:`~scratchgen.nn.transformer.TransformerModel`. Each of them is
its architecture (the constructor's arguments, all a model file stores) and its mathematics (a network for the
:class:`~scratchgen.nn.train.Trainer`, the stepping interface, vectorised scoring). What is the same for all of
them is here, once:

- the recipe: a :class:`~scratchgen.nn.config.TrainConfig` given to :meth:`NeuralModel.fit` or, as a convenience,
  as keywords to the constructor, kept in ``config``;
- :meth:`NeuralModel.fit`: tokenize, read the labels, build the vocabulary, decide running text or separate
  sequences, refuse a run that cannot fit in memory, initialise the parameters, then :func:`run_training`
  (the validation split, the Trainer, what the run leaves on the model). A model says what differs through
  three hooks: :meth:`~NeuralModel._recipe`, :meth:`~NeuralModel._check_memory` and
  :meth:`~NeuralModel._init_params`;
- the fitted state a file holds besides the parameters: the training history and the validation loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from ..allocator import reuse_freed_memory
from ..errors import CorpusError, ModelFileError, ScratchgenError, TrainingError
from ..labels import required_label_ids
from ..model import LanguageModel
from ..text import Vocabulary
from .callbacks import Callback
from .config import TrainConfig, check_config, config_from
from .data import BOS, EOS, check_labelled_layout
from .train import Trainer

__all__ = ["DTYPES", "MAX_WEIGHT", "NeuralModel", "run_training"]

M = TypeVar("M", bound="NeuralModel")

DTYPES = ("float64", "float32")

# The largest |weight| a model file may hold. A trained RNN's weights are below 100 and even a diverged run's
# (--lr 1e6) far below this; yet with |h| <= 1 no product in eqs. (2) and (4) of rnn.py can overflow float32
# below it (E |w|^2 and H |w| stay under 1e38), so every finite file gives finite log-probabilities.
MAX_WEIGHT = 1e15


def _log_softmax(Y: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, in float64, with the <s> column excluded (-inf)."""
    Y = np.array(Y, dtype=np.float64)  # (..., V)
    Y[..., BOS] = -np.inf
    Y -= Y.max(axis=-1, keepdims=True)
    Y -= np.log(np.exp(Y).sum(axis=-1, keepdims=True))
    return Y


def _split(ids: list, running: bool, c: TrainConfig, rng: np.random.Generator, labels: np.ndarray | None = None):
    """Training and validation data: the last ``valid_fraction`` of running text (one stream, ``<s>``
    first), or a random ``valid_fraction`` of the sequences; validation is None when nothing is held out.

    Returns (train, valid, train_labels, valid_labels); the labels (a line corpus) follow their sequences."""
    if running:
        stream = np.concatenate([[BOS], *ids, [EOS]]).astype(np.int64)  # one running text
        n_valid = int(len(stream) * c.valid_fraction)
        train, valid = stream[: len(stream) - n_valid], (stream[len(stream) - n_valid - 1 :] if n_valid > 1 else None)
        if len(train) < c.batch_size + 1:
            raise CorpusError(
                f"a running text of {len(train)} training tokens is too short for "
                f"{c.batch_size} parallel streams (--batch {c.batch_size}); lower --batch"
            )
        return train, valid, None, None
    order = rng.permutation(len(ids))
    n_valid = int(len(ids) * c.valid_fraction)
    valid_seqs = [ids[i] for i in order[:n_valid]] or None
    train_seqs = [ids[i] for i in order[n_valid:]]
    if not train_seqs:
        raise CorpusError("no training sequences left after the validation split (--valid-fraction)")
    if labels is None:
        return train_seqs, valid_seqs, None, None
    valid_labels = labels[order[:n_valid]] if valid_seqs is not None else None
    return train_seqs, valid_seqs, labels[order[n_valid:]], valid_labels


def run_training(model, c: TrainConfig, ids: list, running, rng, label_ids, resume, callbacks):
    """The end of every deep model's ``fit``, once its ``params_`` are initialised: split the data, run the
    :class:`Trainer` (resuming from ``resume`` if given) and keep what the run learned on the model."""
    train, valid, train_labels, valid_labels = _split(ids, bool(running), c, rng, label_ids)
    model.has_validation_ = valid is not None
    trainer = Trainer(model, c, train, valid, bool(running), rng, train_labels, valid_labels)
    if resume is not None:
        trainer.load_checkpoint(resume)
    trainer.run(model.callbacks if callbacks is None else callbacks)
    if not all(np.isfinite(v).all() for v in model.params_.values()):  # the guards make this unreachable
        raise TrainingError("training diverged: the weights are not finite; lower --lr")
    model.history_ = trainer.history
    model.valid_loss_ = trainer.best_loss if math.isfinite(trainer.best_loss) else math.nan
    model.stopped_ = trainer.stopped
    model.worse_than_uniform_ = trainer.worse_than_uniform
    model.resumed_finished_ = trainer.resumed_finished
    model.restores_ = trainer.restores
    return model


class NeuralModel(LanguageModel):
    """The base of the neural language models: the recipe, :meth:`fit`, the stepping by ids and the files.

    Not a model itself (it has no architecture); a subclass sets its architecture in its constructor, calls
    ``super().__init__(tokenizer=..., config=..., callbacks=..., **training)`` and defines the hooks
    :meth:`_check_memory` and :meth:`_init_params` (and :meth:`_recipe` when it refuses or fixes options).
    """

    #: How the model is named in messages ("cannot train an RNN on ...").
    NAME = "a neural model"
    #: The parameters' float type, one of :data:`DTYPES` (set by the subclass's constructor).
    dtype: str

    def __init__(
        self,
        *,
        tokenizer=None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        **training,
    ):
        super().__init__(tokenizer=tokenizer)
        self.config = config_from(config, **training)
        self.callbacks = list(callbacks)

    # --- training ---------------------------------------------------------------------------------

    def fit(
        self: M,
        corpus,
        labels=None,
        config: TrainConfig | None = None,
        resume: str | None = None,
        callbacks: Sequence[Callback] | None = None,
    ) -> M:
        """Train on a corpus and return ``self``.

        Parameters
        ----------
        corpus : list of str or of token lists
        labels : list of str or None
            One label a sequence: a labelled model P(x | c) (:mod:`scratchgen.nn.conditioning`). The
            corpus is then read as separate sequences (padded batches); running text is refused.
        config : TrainConfig or None
            The recipe (default: ``self.config``, set by the constructor's keywords).
        resume : str or None
            A checkpoint written by an earlier run with the same corpus, architecture and config:
            training continues from it, and ends with the same parameters as an uninterrupted run.
        callbacks : list of Callback or None
            What the run does besides training (:mod:`scratchgen.nn.callbacks`): ``ShowProgress()``,
            ``Checkpoint(path, every)``, ``Curve(path)``, or your own (default: ``self.callbacks``).

        Raises
        ------
        ScratchgenError
            An option the model does not have (``dropout`` > 0 for the MLP and the Transformer).
        ResourceError
            The run would need more memory than the machine has (checked before allocating).
        TrainingError
            Training diverged (non-finite weights that restoring could not cure); nothing is kept.
        LabelError
            Labels that are not one a sequence, or labels with ``running_text=True``.
        """
        c = self.config if config is None else config
        self._check_params()
        check_config(c)
        c = self._recipe(c)
        sequences = self.tokenize_corpus(corpus)
        label_ids = self._fit_labels(labels, len(sequences))  # sets labels_
        if not any(sequences):
            raise CorpusError(f"cannot train {self.NAME} on a corpus without tokens")
        self.vocab_ = Vocabulary.build(sequences, min_count=c.min_count)
        ids = [self.vocab_.encode(s) for s in sequences]
        running = c.running_text
        if running == "auto":  # running text when lines are at least a chunk long on average
            running = label_ids is None and float(np.mean([len(s) for s in ids])) >= c.seq_len
        if label_ids is not None:
            check_labelled_layout(bool(running))
        self.running_text_ = bool(running)
        self._check_memory(ids, bool(running), c)
        rng = np.random.default_rng(c.seed)
        self.params_ = self._init_params(rng, c)
        reuse_freed_memory()  # a step's large temporaries reuse freed memory: no fresh page faults every step
        return run_training(self, c, ids, running, rng, label_ids, resume, callbacks)

    def _recipe(self, c: TrainConfig) -> TrainConfig:
        """The recipe this architecture trains with: ``c``, or an error naming an option it does not have."""
        return c

    def _refuse_dropout(self, c: TrainConfig) -> None:
        """For a network without dropout: an error naming the flag when ``c`` asks for it."""
        if c.dropout:
            raise ScratchgenError(
                f"dropout (--dropout) must be 0 for {self.NAME} (it has no dropout), got {c.dropout!r}"
            )

    def _check_dtype(self) -> None:
        """The parameters' float type: one of :data:`DTYPES`, else an error naming the flag."""
        if self.dtype not in DTYPES:
            raise ScratchgenError(f"dtype (--dtype) must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    def _check_memory(self, ids: list, running: bool, c: TrainConfig) -> None:
        """Refuse a run that cannot fit in memory, before allocating it (:func:`scratchgen.resources.check_memory`)."""
        raise NotImplementedError

    def _init_params(self, rng: np.random.Generator, c: TrainConfig) -> dict:
        """The initial parameters (``vocab_`` and ``labels_`` are set), drawn from ``rng``."""
        raise NotImplementedError

    def _fitted_params(self) -> dict:
        self.fitted_vocab()
        return self.params_

    # --- stepping ---------------------------------------------------------------------------------

    def _check_label_ids(self, labels, batch_size: int) -> np.ndarray:
        """The (B,) label ids a labelled model's state needs: :func:`scratchgen.labels.required_label_ids`."""
        return required_label_ids(self, labels, batch_size)

    def _step(self, state, ids: np.ndarray):
        raise NotImplementedError

    def advance(self, state, ids):
        ids = self._check_ids(np.asarray(ids).reshape(-1))
        return self._step(state, ids)

    # --- files ------------------------------------------------------------------------------------

    def _save_state(self):
        extra = {
            "running_text_": getattr(self, "running_text_", None),
            "history_": getattr(self, "history_", []),
            "valid_loss_": getattr(self, "valid_loss_", math.nan),
        }
        return extra, {f"param/{k}": v for k, v in self._fitted_params().items()}

    def _load_state(self, extra, arrays):
        """The arrays (already checked against :meth:`_array_schema`) and the header's fitted state."""
        history, valid_loss, running = (
            extra.get("history_", []),
            extra.get("valid_loss_", math.nan),
            extra.get("running_text_"),
        )
        if not (isinstance(history, list) and all(isinstance(row, dict) for row in history)):
            raise ModelFileError("its training history (state.history_) is not a list of JSON objects")
        if valid_loss is None:  # JSON null: no validation data
            valid_loss = math.nan
        if not isinstance(valid_loss, (int, float)) or isinstance(valid_loss, bool):
            raise ModelFileError(f"its validation loss (state.valid_loss_) is not a number: {valid_loss!r}")
        if running is not None and not isinstance(running, bool):
            raise ModelFileError(f"its state.running_text_ is not true, false or null: {running!r}")
        self.params_ = {k[len("param/") :]: v for k, v in arrays.items() if k.startswith("param/")}
        self.running_text_ = running
        self.history_ = history
        self.valid_loss_ = float(valid_loss)
