r"""The vanilla RNN language model: the network of :mod:`scratchgen.nn.layers` behind the protocol.

The model of the chain rule P(x) = prod_t P(x_t | x_<t) is::

    h^l_t = tanh(x^l_t W_xh^l + h^l_{t-1} W_hh^l + b_h^l),  x^1_t = C[x_{t-1}] (or one-hot),
                                                             x^l_t = h^{l-1}_t for l > 1      (1)
    P(x_t = v | x_<t) = softmax(h^L_t W_hy + b_y)[v],        x_0 = <s>, h_0 = 0               (2)

A labelled model P(x | c) (``fit(corpus, labels=...)``) adds its label's vector L_in[c] to the input
x^1_t at every step and starts each layer from h^l_0 = tanh(L_h^l[c]) instead of 0: eqs. (L1)-(L4) of
:mod:`scratchgen.nn.conditioning`, where the choices (tanh, a start per layer, the one-hot case) are argued.

The state of the stepping interface is the tuple of the L hidden states ``h^l`` (each (B, H)), followed
for a labelled model by the (B,) label ids, which every step reads.
``initial_state`` is the state after reading ``<s>`` from zeros (or the labels' states), ``advance``
applies eq. (1) once, and ``next_logprobs`` is the log of eq. (2) with the ``<s>`` entry set to -inf (it is never a next
token) and the rest renormalised. ``token_logprobs`` runs eq. (1) and (2) over whole padded
batches (one matrix product for all steps of the input and output projections).

``cell="gru"`` or ``cell="lstm"`` replaces the tanh layer of eq. (1) by a stack of gated cells
(:mod:`scratchgen.nn.gated`, built on :mod:`scratchgen.nn.cells`); an LSTM's stepping state then holds
the L memory cells c^l after the L hidden states. The tanh path is untouched: files and checkpoints
written before ``cell`` existed are tanh models.

The model is its architecture (cell, H, L, E, dtype, tokenizer), which is all its file stores; how it is
trained is a :class:`~scratchgen.nn.config.TrainConfig`, run by the :class:`~scratchgen.nn.train.Trainer`
with callbacks for progress, checkpoints and the curve (:mod:`scratchgen.nn.callbacks`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..allocator import reuse_freed_memory
from ..errors import CorpusError, LabelError, ModelFileError, ScratchgenError, TrainingError
from ..labels import required_label_ids
from ..model import LanguageModel, register_model
from ..resources import check_memory
from ..schema import ArraySpec
from ..text import Vocabulary
from .callbacks import Callback
from .conditioning import input_label_width, label_input_forward, label_params, label_states_forward
from .config import FIELDS, TrainConfig, check_config, check_int, config_from
from .data import BOS, EOS, check_labelled_layout, padded_batch
from .gated import (
    CELLS,
    GATES,
    GatedNetwork,
    gated_inputs,
    gated_label_params,
    gated_label_start,
    gated_label_width,
    gated_shapes,
    gated_start,
    gated_states,
    gated_step,
    init_gated_params,
)
from .layers import layer_params, linear_forward, stack_forward
from .network import Network, RNNNetwork
from .optim import init_params
from .train import Trainer, stream_loss, training_memory

__all__ = ["RNNModel", "TrainConfig"]

DTYPES = ("float64", "float32")
MAX_LAYERS = 1000  # also bounds the schema a (possibly edited) file header asks to build


# The largest |weight| a model file may hold. A trained RNN's weights are below 100 and even a diverged run's
# (--lr 1e6) far below this; yet with |h| <= 1 no product in eqs. (2) and (4) can overflow float32 below it
# (E |w|^2 and H |w| stay under 1e38), so every finite file gives finite log-probabilities.
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


@register_model
class RNNModel(LanguageModel):
    """A recurrent network language model, trained by hand-written BPTT: a vanilla (Elman, tanh) RNN, or a
    GRU or an LSTM (``cell=``).

    The constructor takes the architecture, which is all a model file stores. How to train is a
    :class:`~scratchgen.nn.config.TrainConfig`, given to :meth:`fit` (``config=``) or, as a
    convenience, as keywords here (``RNNModel(hidden=64, max_steps=300)``), kept in ``config``.

    Parameters
    ----------
    cell : {"tanh", "gru", "lstm"}
        The recurrent layer: the vanilla tanh cell of eq. (1) (default), a GRU or an LSTM
        (:mod:`scratchgen.nn.gated`).
    hidden : int
        H, the width of each hidden state.
    layers : int
        L, stacked tanh layers.
    embedding : int or None
        E, width of an embedding table C; None feeds one-hot vectors (the rows of W_xh are then the
        embeddings, as in min-char-rnn).
    dtype : {"float64", "float32"}
    tokenizer : Tokenizer or None
    config : TrainConfig or None
        The default recipe of :meth:`fit` (default ``TrainConfig()``).
    callbacks : list of Callback
        The default callbacks of :meth:`fit` (e.g. ``[ShowProgress()]``), for code that calls
        ``fit(corpus)`` on any model.
    **training
        Fields of :class:`TrainConfig` (``seq_len``, ``batch_size``, ``lr``, ``epochs``, ``max_steps``,
        ...), replacing those of ``config``.

    Attributes
    ----------
    params_ : dict of ndarray
        ``C`` (V, E) if any, ``W_xh.l``, ``W_hh.l``, ``b_h.l``, ``W_hy`` (H, V), ``b_y`` (V,); a labelled
        model also ``L_in`` (C, E, or (C, H) with one-hot inputs) and ``L_h.l`` (C, H). A GRU or LSTM has
        ``W_xg.l``, ``W_hg.l``, ``b_g.l`` (k = 3 or 4 gate blocks of H columns), a GRU ``b_hn.l`` (H,), in
        place of ``W_xh.l``, ``W_hh.l``, ``b_h.l``; labelled, ``L_in`` is (C, E or V) and an LSTM also
        has ``L_c.l`` (C, H) (:mod:`scratchgen.nn.gated`).
    vocab_ : Vocabulary
    labels_ : LabelSet or None
        The labels of a model trained with ``labels=`` (None otherwise).
    history_ : list of dict
        One row per evaluation: step, epoch, tokens, train_loss, valid_loss, lr, grad_norm, seconds,
        cpu_seconds.
    valid_loss_ : float
        Best validation loss (nats per token), nan without a validation split.

    Examples
    --------
    >>> m = RNNModel(hidden=8).fit(["abab", "abba", "baba"],
    ...                            config=TrainConfig(epochs=2, batch_size=2, seq_len=8, valid_fraction=0))
    >>> lp = m.next_logprobs(m.initial_state(1))
    >>> lp.shape, bool(np.isclose(np.exp(lp).sum(), 1.0))   # V = <unk> <s> </s> a b
    ((1, 5), True)

    A labelled model P(x | c): one label a training sequence; its states start from the label's.

    >>> m = RNNModel(hidden=8).fit(["aa", "bb", "ab"], labels=["x", "y", "x"],
    ...                            config=TrainConfig(epochs=2, batch_size=2, valid_fraction=0))
    >>> m.labels_.names, m.params_["L_in"].shape, m.params_["L_h.0"].shape   # one-hot: L_in is (C, H)
    (('x', 'y'), (2, 8), (2, 8))
    >>> m.initial_state(2, labels=np.array([0, 1]))[-1]   # the state ends with the label ids; needs them
    array([0, 1])
    """

    def __init__(
        self,
        *,
        cell: str = "tanh",
        hidden: int = 256,
        layers: int = 1,
        embedding: int | None = None,
        dtype: str = "float64",
        tokenizer=None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        **training,
    ):
        super().__init__(tokenizer=tokenizer)
        self.cell = cell
        self.hidden = hidden
        self.layers = layers
        self.embedding = embedding
        self.dtype = dtype
        self.config = config_from(config, **training)
        self.callbacks = list(callbacks)

    #: Header params of model files written before the architecture and the recipe were apart (the
    #: training options besides the architecture, and the session's files and clocks): dropped at load.
    OLD_HEADER_OPTIONS = FIELDS + ("verbose", "checkpoint", "checkpoint_every", "curve_csv")

    def get_params(self) -> dict:
        """The architecture (what a model file stores; the tokenizer apart).

        ``cell`` is there for a GRU or an LSTM only: a tanh model's header is exactly what it was before
        cells existed, so its files and checkpoints are unchanged (and an older scratchgen still reads
        them), and a header without ``cell`` is a tanh model.
        """
        arch = {"hidden": self.hidden, "layers": self.layers, "embedding": self.embedding, "dtype": self.dtype}
        return arch if self.cell == "tanh" else {"cell": self.cell, **arch}

    @classmethod
    def _params_from_header(cls, params: dict) -> dict:
        """A file's header params as the constructor takes them: files written before the split also
        hold the training options and the session's (``curve_csv``, ``clock``, ``verbose``, ...); they
        never changed what the saved model computes, so they are dropped."""
        return {k: v for k, v in params.items() if k not in cls.OLD_HEADER_OPTIONS}

    # --- validation of the architecture -----------------------------------------------------------

    def _check_params(self) -> None:
        """Check the architecture (no side effect: also run on the header of a file being loaded).

        A message names the argument and its command-line flag, e.g. "hidden (--hidden) must be an
        integer >= 1, got 0".
        """
        if self.cell not in CELLS:
            raise ScratchgenError(f"cell (--cell) must be one of {', '.join(CELLS)}, got {self.cell!r}")
        check_int("hidden", self.hidden)
        check_int("layers", self.layers)
        if self.layers > MAX_LAYERS:
            raise ScratchgenError(
                f"layers (--layers) must be at most {MAX_LAYERS} (a deeper vanilla RNN does not "
                f"train), got {self.layers!r}"
            )
        check_int("embedding", self.embedding, optional=True)
        if self.dtype not in DTYPES:
            raise ScratchgenError(f"dtype (--dtype) must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    def _array_schema(self) -> dict:
        """Every parameter array, its exact shape from the header (H, L, E, V), float, finite and bounded."""
        V, H, E = len(self.vocab_), self.hidden, self.embedding
        if self.cell != "tanh":
            C = len(self.labels_) if self.labels_ is not None else 0
            gated = gated_shapes(self.cell, V, H, self.layers, E, C)
            return {f"param/{k}": ArraySpec(sh, low=-MAX_WEIGHT, high=MAX_WEIGHT) for k, sh in gated.items()}
        shapes: dict[str, tuple[int, ...]] = {"C": (V, E)} if E else {}
        for layer in range(self.layers):
            shapes[f"W_xh.{layer}"] = ((E or V) if layer == 0 else H, H)
            shapes[f"W_hh.{layer}"] = (H, H)
            shapes[f"b_h.{layer}"] = (H,)
        shapes["W_hy"] = (H, V)
        shapes["b_y"] = (V,)
        if self.labels_ is not None:  # restored from the header before this is called
            C = len(self.labels_)
            shapes["L_in"] = (C, input_label_width(V, H, E))
            for layer in range(self.layers):
                shapes[f"L_h.{layer}"] = (C, H)
        return {f"param/{k}": ArraySpec(shape, low=-MAX_WEIGHT, high=MAX_WEIGHT) for k, shape in shapes.items()}

    # --- training ---------------------------------------------------------------------------------

    def fit(
        self,
        corpus,
        labels=None,
        config: TrainConfig | None = None,
        resume: str | None = None,
        callbacks: Sequence[Callback] | None = None,
    ) -> RNNModel:
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
        sequences = self.tokenize_corpus(corpus)
        label_ids = self._fit_labels(labels, len(sequences))  # sets labels_
        if not any(sequences):
            raise CorpusError("cannot train an RNN on a corpus without tokens")
        self.vocab_ = Vocabulary.build(sequences, min_count=c.min_count)
        ids = [self.vocab_.encode(s) for s in sequences]
        running = c.running_text
        if running == "auto":
            running = label_ids is None and float(np.mean([len(s) for s in ids])) >= c.seq_len
        if label_ids is not None:
            check_labelled_layout(bool(running))
        self.running_text_ = bool(running)
        self._check_memory(ids, bool(running), c)
        rng = np.random.default_rng(c.seed)
        V, dtype = len(self.vocab_), np.dtype(self.dtype)
        if self.cell != "tanh":
            self.params_ = init_gated_params(self.cell, V, self.hidden, self.layers, self.embedding, rng, dtype)
            if self.labels_ is not None:
                width = gated_label_width(V, self.embedding)
                self.params_.update(
                    gated_label_params(self.cell, len(self.labels_), width, self.hidden, self.layers, dtype)
                )
        else:
            self.params_ = init_params(V, self.hidden, self.layers, self.embedding, rng, dtype=dtype)
        if self.cell == "tanh" and self.labels_ is not None:  # zero tables, no random draw: as unlabelled
            width = input_label_width(V, self.hidden, self.embedding)
            self.params_.update(label_params(len(self.labels_), width, self.hidden, self.layers, dtype))
        reuse_freed_memory()  # as TransformerModel.fit: a step's large temporaries no longer page-fault
        return run_training(self, c, ids, running, rng, label_ids, resume, callbacks)

    def network(self) -> Network:
        """What the training loop trains (:mod:`scratchgen.nn.network`): the stacked RNN of :mod:`.layers`,
        or for a gated cell the :class:`~scratchgen.nn.gated.GatedNetwork` of :mod:`.cells`."""
        if self.cell != "tanh":
            return GatedNetwork(self.cell, self.layers)
        return RNNNetwork(self.layers)

    def _check_memory(self, ids: list, running: bool, c: TrainConfig) -> None:
        """Refuse a run that cannot fit in memory before allocating it (:func:`training_memory`)."""
        V = len(self.vocab_)
        if running:
            eval_rows, eval_len = c.batch_size, max(c.seq_len, 64)
        else:
            eval_rows = min(256, max(int(len(ids) * c.valid_fraction), 1))
            eval_len = max(len(s) for s in ids) + 1
        nbytes = training_memory(
            V,
            self.hidden,
            self.layers,
            self.embedding,
            c.batch_size,
            c.seq_len,
            np.dtype(self.dtype).itemsize,
            c.optimizer,
            eval_rows,
            eval_len,
            len(self.labels_) if self.labels_ is not None else 0,
            GATES[self.cell],
        )
        check_memory(
            nbytes,
            f"training an RNN ({self.cell}) of hidden {self.hidden}"
            + (f", embedding {self.embedding}" if self.embedding else "")
            + f" with vocabulary {V}, {self.layers} layer(s), batch {c.batch_size} x {c.seq_len} steps in {self.dtype}",
            "lower --hidden, --embedding, --layers, --batch or --seq-len",
        )

    def _fitted_params(self) -> dict:
        self.fitted_vocab()
        return self.params_

    # --- the stepping interface: eq. (1) and (2) --------------------------------------------------

    def _state_width(self) -> int:
        """The arrays of a stepping state before the label ids: L hidden states, and L cells for an LSTM."""
        return 2 * self.layers if self.cell == "lstm" else self.layers

    def _step(self, state, ids: np.ndarray):
        p = self._fitted_params()
        if self.cell != "tanh":
            labels = state[self._state_width()] if self.labels_ is not None else None
            new_state = gated_step(self.cell, p, self.layers, state, ids, labels)
            return new_state if labels is None else (*new_state, labels)
        labels = state[self.layers] if self.labels_ is not None else None  # (B,) or None
        x = None
        new = []
        for layer in range(self.layers):
            lp = layer_params(p, layer)
            if layer == 0 and "C" in p:
                x = p["C"][ids]  # (B, E) eq. (1)
                if labels is not None:
                    x = x + p["L_in"][labels]  # (B, E) eq. (L1)
                a = x @ lp["W_xh"]  # (B, H) x_t W_xh
            elif layer == 0:
                a = lp["W_xh"][ids]  # (B, H) one-hot: the row W_xh[i_t]
                if labels is not None:
                    a = a + p["L_in"][labels]  # (B, H) eq. (L1), one-hot: beside W_xh[i_t]
            else:
                a = x @ lp["W_xh"]  # (B, H)
            a = a + state[layer] @ lp["W_hh"] + lp["b_h"]  # (B, H) eq. (1)
            x = np.tanh(a)  # (B, H)
            new.append(x)
        return tuple(new) if labels is None else (*new, labels)

    def initial_state(self, batch_size: int = 1, labels: np.ndarray | None = None):
        """The L hidden states (each (B, H)) after reading ``<s>`` from zero states.

        A labelled model starts from its labels' states instead, h^l_0 = tanh(L_h^l[c]) (eq. L2), and
        needs ``labels``, the label id of each sequence (int array (B,)): a :class:`LabelError` without
        them. Its state ends with those ids. An unlabelled model ignores ``labels``.
        """
        p = self._fitted_params()
        bos = np.full(batch_size, BOS, dtype=np.int64)
        if self.cell != "tanh":
            if self.labels_ is None:
                return self._step(gated_start(self.cell, p, self.layers, batch_size), bos)
            ids = self._check_label_ids(labels, batch_size)
            return self._step((*gated_start(self.cell, p, self.layers, batch_size, ids), ids), bos)
        dtype = p["W_hh.0"].dtype
        if self.labels_ is None:
            zeros = tuple(np.zeros((batch_size, self.hidden), dtype=dtype) for _ in range(self.layers))
            return self._step(zeros, np.full(batch_size, BOS, dtype=np.int64))
        ids = self._check_label_ids(labels, batch_size)
        h0, _ = label_states_forward(p, ids)  # (L, B, H) eq. (L2)
        return self._step((*h0, ids), np.full(batch_size, BOS, dtype=np.int64))

    def _check_label_ids(self, labels, batch_size: int) -> np.ndarray:
        """The (B,) label ids a labelled model's state needs: :func:`scratchgen.labels.required_label_ids`."""
        return required_label_ids(self, labels, batch_size)

    def advance(self, state, ids):
        ids = self._check_ids(np.asarray(ids).reshape(-1))
        return self._step(state, ids)

    def next_logprobs(self, state) -> np.ndarray:
        p = self._fitted_params()
        return _log_softmax(state[self.layers - 1] @ p["W_hy"] + p["b_y"])  # (B, V) eq. (2)

    def _explain(self, ids: np.ndarray, label: int | None = None):
        """The norm of the hidden state that predicted each token: see :mod:`.explain`."""
        from .explain import explain_tokens

        if self.labels_ is not None and label is None:  # a marginal: one state a label, none to show
            return super()._explain(ids, label)
        return explain_tokens(self, self._check_ids(ids), label), {}

    def _token_logprobs(self, sequences, labels=None):
        """Vectorised: eq. (1)-(2) over padded batches, projections as one product for all steps.

        A labelled model needs ``labels`` (the base class passes one id a sequence, or calls once per
        label for the marginal): each row then reads its label, eqs. (L1)-(L2).
        """
        p = self._fitted_params()
        seqs = [self._check_ids(s) for s in sequences]
        if self.labels_ is not None:
            labels = self._check_label_ids(labels, len(seqs))
        out = [None] * len(seqs)
        order = np.argsort([len(s) for s in seqs], kind="stable")
        for start in range(0, len(order), 256):
            rows = order[start : start + 256]
            x, y, m = padded_batch([seqs[i] for i in rows])  # (B, T)
            if self.cell != "tanh":
                H = self._gated_top_states(p, x, labels[rows] if self.labels_ is not None else None)
                Y, _ = linear_forward(p, H)  # (B, T, V)
                logp = _log_softmax(Y)  # (B, T, V)
                picked = np.take_along_axis(logp, y[:, :, None], axis=2)[:, :, 0]  # (B, T)
                for r, i in enumerate(rows):
                    out[i] = picked[r, : len(seqs[i]) + 1]
                continue
            X = p["C"][x] if "C" in p else x  # (B, T, E) or ids
            if self.labels_ is None:
                h0 = np.zeros((self.layers, len(rows), self.hidden), dtype=p["W_hh.0"].dtype)  # (L, B, H)
                (H, _), _ = stack_forward(p, (X, h0))  # (B, T, H)
            else:
                c = labels[rows]  # (B,)
                h0, _ = label_states_forward(p, c)  # (L, B, H) eq. (L2)
                if "C" in p:
                    X, _ = label_input_forward(p, (X, c))  # (B, T, E) eq. (L1)
                    (H, _), _ = stack_forward(p, (X, h0))  # (B, T, H)
                else:
                    u, _ = label_input_forward(p, (None, c))  # (B, H) eq. (L1), beside W_xh[i_t]
                    (H, _), _ = stack_forward(p, (X, h0, u))  # (B, T, H)
            Y, _ = linear_forward(p, H)  # (B, T, V)
            logp = _log_softmax(Y)  # (B, T, V)
            picked = np.take_along_axis(logp, y[:, :, None], axis=2)[:, :, 0]  # (B, T)
            for r, i in enumerate(rows):
                out[i] = picked[r, : len(seqs[i]) + 1]
        return out

    def _gated_top_states(self, p: dict, x: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """The top states (B, T, H) of the gated stack over a padded batch, eqs. (1)-(3) of :mod:`.gated`."""
        net = GatedNetwork(self.cell, self.layers)
        cache: dict = {}
        if labels is None:
            state = net.start_state(p, len(x))
            X = x if "C" not in p else p["C"][x]
        else:
            state, _ = gated_label_start(self.cell, p, labels)
            X = gated_inputs(p, x, labels, cache)
        H, _, _ = gated_states(self.cell, p, X, state)
        return H

    def stream_loss(self, corpus, streams: int = 32) -> float:
        """Mean nats per token of a running text (pieces joined, ``<s>`` first), state carried."""
        if self.labels_ is not None:
            raise LabelError("a labelled RNNModel has no running-text loss: its examples are lines, each with a label")
        ids, _ = self.encode_corpus(corpus)
        stream = np.concatenate([[BOS], *ids, [EOS]]).astype(np.int64)
        if self.cell != "tanh":
            return self.network().stream_loss(self._fitted_params(), stream, streams)[0]
        return stream_loss(self._fitted_params(), self.layers, stream, streams)[0]

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
