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

from collections.abc import Sequence

import numpy as np

from ..errors import LabelError, ScratchgenError
from ..model import register_model
from ..resources import check_memory
from ..schema import ArraySpec
from .callbacks import Callback
from .conditioning import input_label_width, label_input_forward, label_params, label_states_forward
from .config import FIELDS, TrainConfig, check_int
from .data import BOS, EOS, padded_batch
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
from .neural import MAX_WEIGHT, NeuralModel, _log_softmax
from .optim import init_params
from .train import stream_loss, training_memory

__all__ = ["RNNModel", "TrainConfig"]

MAX_LAYERS = 1000  # also bounds the schema a (possibly edited) file header asks to build


@register_model
class RNNModel(NeuralModel):
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

    NAME = "an RNN"

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
        super().__init__(tokenizer=tokenizer, config=config, callbacks=callbacks, **training)
        self.cell = cell
        self.hidden = hidden
        self.layers = layers
        self.embedding = embedding
        self.dtype = dtype

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
        self._check_dtype()

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

    def _init_params(self, rng: np.random.Generator, c: TrainConfig) -> dict:
        """Eq. (1)'s weights (:func:`.optim.init_params`), or a gated stack's; a labelled model's tables start at 0."""
        V, dtype = len(self.vocab_), np.dtype(self.dtype)
        if self.cell != "tanh":
            params = init_gated_params(self.cell, V, self.hidden, self.layers, self.embedding, rng, dtype)
            if self.labels_ is not None:
                width = gated_label_width(V, self.embedding)
                params.update(gated_label_params(self.cell, len(self.labels_), width, self.hidden, self.layers, dtype))
            return params
        params = init_params(V, self.hidden, self.layers, self.embedding, rng, dtype=dtype)
        if self.labels_ is not None:  # zero tables, no random draw: as unlabelled
            width = input_label_width(V, self.hidden, self.embedding)
            params.update(label_params(len(self.labels_), width, self.hidden, self.layers, dtype))
        return params

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
            c.threads if getattr(self.network(), "shards_in_processes", False) else 1,  # worker processes
        )
        check_memory(
            nbytes,
            f"training an RNN ({self.cell}) of hidden {self.hidden}"
            + (f", embedding {self.embedding}" if self.embedding else "")
            + f" with vocabulary {V}, {self.layers} layer(s), batch {c.batch_size} x {c.seq_len} steps in {self.dtype}",
            "lower --hidden, --embedding, --layers, --batch or --seq-len",
        )

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
