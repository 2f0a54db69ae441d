r"""Bengio et al. 2003's MLP language model behind the protocol: the neural twin of an order-(N+1) n-gram.

The network is that of :mod:`scratchgen.nn.mlp_lm` (eqs. M1-M6): the N previous tokens, each mapped to
its row of the embedding table ``C``, side by side into one tanh hidden layer, then a softmax::

    P(x_t = v | x_<t) = softmax(tanh([C[x_{t-N}], ..., C[x_{t-1}]] W_h + b_h) W_y + b_y)[v]      (1)

with ``<s>`` before the start: the first token is predicted from N ``<s>``, as an order-(N+1) n-gram
predicts it from N start symbols. Both models condition on exactly the same N tokens; the n-gram
counts each context apart, the MLP shares strength between contexts made of similar tokens.

The state is the window itself, the last N ids read (B, N), so stepping is exact and costs one
forward of eq. (1): ``advance`` drops the oldest id and appends the new one. Training runs through
the shared :class:`~scratchgen.nn.train.Trainer` on chunks (x, y, mask, state) of T positions: the
context of position t is the N ids before it, taken from the chunk and, for its first N positions,
from the state (the last N ids of the previous chunk of a running text; N ``<s>`` at a fresh start)::

    window_t = (s_1 .. s_N, x_0 .. x_{T-1})[t + 1 : t + N + 1]    s the carried state          (2)

so cutting a text into chunks changes nothing: every position sees its true N predecessors (unlike
an RNN's truncated backpropagation, nothing is lost at a chunk border, since no gradient crosses it).

A labelled model P(x | c) (``fit(corpus, labels=...)``) reads its label as one more slot of the window,
from its own table ``L_in`` (C, E) (:func:`scratchgen.nn.conditioning.label_params`) and with its own
block of weights ``W_c`` (E, H)::

    h = tanh(x W_h + L_in[c] W_c + b_h)                                                        (3)

that is, a label vector L_in[c] W_c added to the hidden pre-activation of eq. (M2). Why there: the
hidden layer is where the N slots meet, so a vector added there reaches every prediction, as the
RNN's (L1) reaches every step; added to each slot's embedding instead it would reach the pre-activation
as L_in[c] (sum_k W_h^k), tied to the token weights of every slot. The label is factored through E
(as the RNN's L_in with an embedding table reaches a_t through W_xh), so it costs C E + E H numbers.
Computed as a slot, it is eq. (M1)-(M6) unchanged on a table ``[C; L_in]`` (the label c read as the
token id V + c) and weights ``[W_c; W_h]``: the gradients of L_in and W_c are eq. (M6) and (M5),
already checked. ``L_in`` starts at zero and ``W_c`` is drawn from a generator of its own, so a
labelled network starts computing exactly what the unlabelled one of the same seed computes.

There is no dropout (the hidden layer is inside eq. M2; a run with ``dropout`` > 0 is refused).
Letters: B batch, T chunk length, N context, V vocabulary, E embedding, H hidden, C labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import LabelError, ScratchgenError
from ..model import register_model
from ..resources import check_memory
from ..schema import ArraySpec
from .callbacks import Callback
from .conditioning import label_params
from .config import TrainConfig, check_int
from .data import BOS, EOS, padded_batch
from .layers import softmax_ce_backward, softmax_ce_forward
from .mlp_lm import mlp_lm_backward, mlp_lm_forward
from .network import Network
from .neural import MAX_WEIGHT, NeuralModel, _log_softmax

__all__ = ["MLPModel", "MLPNetwork", "init_mlp_params", "label_mlp_params", "chunk_windows", "network_gradcheck"]

MAX_CONTEXT = 4096  # also bounds the schema a (possibly edited) file header asks to build


def init_mlp_params(V: int, context: int, embedding: int, hidden: int, rng: np.random.Generator, dtype=np.float64):
    """Initial parameters: ``C`` ~ N(0, 1) (unit-scale rows, as :func:`~scratchgen.nn.optim.init_params`),
    ``W_h`` ~ U(+-1/sqrt(N E)) and ``W_y`` ~ U(+-1/sqrt(H)) (PyTorch's nn.Linear rule, as makemore's MLP,
    so the same learning rates work; the pre-activation then has variance 1/3), zero biases."""
    fan_in = context * embedding
    p = {
        "C": rng.normal(size=(V, embedding)),  # (V, E)
        "W_h": rng.uniform(-1, 1, size=(fan_in, hidden)) / math.sqrt(fan_in),  # (N E, H)
        "b_h": np.zeros(hidden),  # (H,)
        "W_y": rng.uniform(-1, 1, size=(hidden, V)) / math.sqrt(hidden),  # (H, V)
        "b_y": np.zeros(V),  # (V,)
    }
    return {k: v.astype(dtype) for k, v in p.items()}


def label_mlp_params(labels: int, embedding: int, hidden: int, seed: int, dtype=np.float64) -> dict:
    """``L_in`` (C, E) zeros (:func:`~scratchgen.nn.conditioning.label_params`) and ``W_c`` (E, H) drawn
    from the generator ``[seed, 2]`` (not the run's: the other parameters and the data order stay
    those of the unlabelled run). ``W_c`` is not zero: with both zero neither would ever get a gradient."""
    p = {"L_in": label_params(labels, embedding, hidden, 0, dtype)["L_in"]}  # (C, E)
    bound = 1.0 / math.sqrt(embedding)
    p["W_c"] = np.random.default_rng([seed, 2]).uniform(-bound, bound, size=(embedding, hidden)).astype(dtype)
    return p


def chunk_windows(state: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The context of every position of a chunk, eq. (2), and the state the chunk leaves.

    state (B, N) the N ids before the chunk; x (B, T) -> windows (B, T, N) (oldest first), state (B, N).

    >>> w, s = chunk_windows(np.array([[1, 1]]), np.array([[1, 5, 6]]))   # N = 2, <s> = 1 at a start
    >>> w.tolist(), s.tolist()
    ([[[1, 1], [1, 5], [5, 6]]], [[5, 6]])
    """
    N = state.shape[1]
    full = np.concatenate([state, x], axis=1)  # (B, N + T)
    return sliding_window_view(full, N, axis=1)[:, 1:], full[:, -N:].copy()  # (B, T, N), (B, N)


def _slot_params(params: dict, windows: np.ndarray, labels: np.ndarray | None):
    """The parameters and windows eq. (M1)-(M3) read: a labelled network's label as one more slot, eq. (3)."""
    if labels is None:
        return params, windows
    V = params["C"].shape[0]
    p = {
        **params,
        "C": np.concatenate([params["C"], params["L_in"]]),  # (V + C, E): label c is token V + c
        "W_h": np.concatenate([params["W_c"], params["W_h"]]),  # ((N + 1) E, H): its slot comes first
    }
    slot = np.broadcast_to((V + np.asarray(labels))[:, None, None], (*windows.shape[:2], 1))  # (B, T, 1)
    return p, np.concatenate([slot, windows], axis=-1)  # (B, T, N + 1)


def mlp_logits(params: dict, windows: np.ndarray, labels: np.ndarray | None = None):
    """Logits (B, T, V) of every window (B, T, N), eq. (1) or (3), and the cache of eq. (M1)-(M3)."""
    p, ids = _slot_params(params, windows, labels)
    Y, cache = mlp_lm_forward(p, ids)  # (B, T, V)
    return Y, (p, cache)


class MLPNetwork(Network):
    """What the Trainer trains: eq. (1) (or (3)) and the masked cross-entropy on a chunk; the state is
    the window of N ids, carried across the chunks of a running text."""

    def __init__(self, context: int):
        self.context = context

    def forward(self, params: dict, inputs: tuple):
        """inputs (x, y, mask, state[, dropout][, labels]) -> ((loss, state_T), cache); state None: N ``<s>``."""
        x, y, mask, state = inputs[:4]
        labels = inputs[5] if len(inputs) > 5 else None
        if state is None:
            state = self.start_state(params, x.shape[0])
        windows, state_T = chunk_windows(state, x)  # (B, T, N), (B, N) eq. (2)
        Y, (p, cache) = mlp_logits(params, windows, labels)  # (B, T, V)
        loss, ce = softmax_ce_forward({}, (Y, y, mask))  # layers eq. (5)-(6)
        return (loss, state_T), {"p": p, "mlp": cache, "ce": ce, "labelled": labels is not None}

    def backward(self, params: dict, cache):
        """Every gradient: layers eq. (7), then eq. (M4)-(M6); a label slot's rows go to L_in and W_c."""
        _, (dY, _, _) = softmax_ce_backward({}, cache["ce"])  # (B, T, V) layers eq. (7)
        grads, _ = mlp_lm_backward(cache["p"], cache["mlp"], dY)
        if cache["labelled"]:
            V, E = params["C"].shape
            grads["L_in"], grads["C"] = grads["C"][V:], grads["C"][:V]  # (C, E), (V, E) eq. (M6)
            grads["W_c"], grads["W_h"] = grads["W_h"][:E], grads["W_h"][E:]  # (E, H), (N E, H) eq. (M5)
        return grads, None

    def start_state(self, params: dict, batch: int) -> np.ndarray:
        """N ``<s>`` a row: what precedes the start of a text (int64 (B, N))."""
        return np.full((batch, self.context), BOS, dtype=np.int64)


def network_gradcheck(embedding: int = 4, hidden: int = 6, labels: int = 0, seed: int = 0) -> tuple[dict, str]:
    """The network's gradients against central differences in float64 (``scratchgen gradcheck --model mlp``).

    Context 3, V 7, B 3, T 5, a padding mask, and a carried-in window (or, with ``labels`` C > 0, the
    labels' slot, eq. 3). Returns the relative error of each parameter and a line saying what was checked.
    """
    from .gradcheck import gradcheck

    if not embedding:
        raise ScratchgenError("the MLP needs an embedding table: --embedding must be at least 1 with --model mlp")
    rng = np.random.default_rng(seed)
    V, B, T, N, E, H = 7, 3, 5, 3, embedding, hidden
    params = init_mlp_params(V, N, E, H, rng)
    if labels:  # the label's slot: L_in and W_c, eq. (3)
        params.update(label_mlp_params(labels, E, H, seed))
    params = {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in params.items()}  # no zero biases or rows
    ids = rng.integers(0, V, size=(B, T))  # (B, T)
    targets = rng.integers(0, V, size=(B, T))  # (B, T)
    mask = rng.random((B, T)) < 0.75  # (B, T) some padding
    window = rng.integers(0, V, size=(B, N))  # (B, N) a carried-in window
    inputs: tuple = (ids, targets, mask, window)
    if labels:
        inputs += (None, rng.integers(0, labels, size=B))
    net = MLPNetwork(N)

    def loss_and_grads(p: dict):
        (loss, _), cache = net.forward(p, inputs)
        return loss, net.backward(p, cache)[0]

    state = f"{labels} labels (their slot: L_in, W_c)" if labels else "a carried window"
    what = (
        f"gradient check: MLP, context {N}, embedding {E}, hidden {H}, V {V}, B {B}, T {T}, "
        f"with padding mask and {state} (float64, central differences)"
    )
    return gradcheck(loss_and_grads, params, seed=seed), what


@register_model
class MLPModel(NeuralModel):
    """Bengio et al. 2003's neural probabilistic language model (makemore's MLP), trained by hand-written backprop.

    Parameters
    ----------
    context : int
        N, the tokens the next one is predicted from (the twin of an order-(N+1) n-gram).
    embedding : int
        E, the width of each token's vector.
    hidden : int
        H, the width of the tanh layer.
    dtype : {"float64", "float32"}
    tokenizer : Tokenizer or None
    config : TrainConfig or None
        The default recipe of :meth:`fit` (``seq_len`` is the chunk length T, ``dropout`` must be 0).
    callbacks : list of Callback
    **training
        Fields of :class:`TrainConfig`, replacing those of ``config``.

    Attributes
    ----------
    params_ : dict of ndarray
        ``C`` (V, E), ``W_h`` (N E, H), ``b_h`` (H,), ``W_y`` (H, V), ``b_y`` (V,); labelled also
        ``L_in`` (C, E) and ``W_c`` (E, H).
    vocab_, labels_, history_, valid_loss_ : as :class:`~scratchgen.nn.rnn.RNNModel`

    Examples
    --------
    >>> m = MLPModel(context=2, embedding=4, hidden=8).fit(
    ...     ["abab", "abba", "baba"], config=TrainConfig(epochs=2, batch_size=2, valid_fraction=0))
    >>> s = m.initial_state(1)
    >>> s.tolist()                                   # the window: N = 2 ids, <s> before the start
    [[1, 1]]
    >>> m.advance(s, [3]).tolist()                   # drop the oldest, append the new one
    [[1, 3]]
    >>> bool(np.isclose(np.exp(m.next_logprobs(s)).sum(), 1.0))
    True
    """

    NAME = "an MLP"

    def __init__(
        self,
        *,
        context: int = 3,
        embedding: int = 64,
        hidden: int = 256,
        dtype: str = "float64",
        tokenizer=None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        **training,
    ):
        super().__init__(tokenizer=tokenizer, config=config, callbacks=callbacks, **training)
        self.context = context
        self.embedding = embedding
        self.hidden = hidden
        self.dtype = dtype

    def get_params(self) -> dict:
        """The architecture (what a model file stores; the tokenizer apart)."""
        return {"context": self.context, "embedding": self.embedding, "hidden": self.hidden, "dtype": self.dtype}

    def _check_params(self) -> None:
        """Check the architecture; a message names the argument and its flag (also run on a file's header)."""
        c = self.context
        if not (isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 1 <= c <= MAX_CONTEXT):
            raise ScratchgenError(f"context (--context) must be an integer from 1 to {MAX_CONTEXT}, got {c!r}")
        check_int("embedding", self.embedding)
        check_int("hidden", self.hidden)
        self._check_dtype()

    def _array_schema(self) -> dict:
        """Every parameter array, its exact shape from the header (N, E, H, V, C), finite and bounded."""
        V, N, E, H = len(self.vocab_), self.context, self.embedding, self.hidden
        shapes = {"C": (V, E), "W_h": (N * E, H), "b_h": (H,), "W_y": (H, V), "b_y": (V,)}
        if self.labels_ is not None:  # restored from the header before this is called
            shapes.update({"L_in": (len(self.labels_), E), "W_c": (E, H)})
        return {f"param/{k}": ArraySpec(shape, low=-MAX_WEIGHT, high=MAX_WEIGHT) for k, shape in shapes.items()}

    # --- training ---------------------------------------------------------------------------------

    def _recipe(self, c: TrainConfig) -> TrainConfig:
        """``c``; ``dropout`` > 0 is refused (this network has none)."""
        self._refuse_dropout(c)
        return c

    def _init_params(self, rng: np.random.Generator, c: TrainConfig) -> dict:
        """Eq. (1)'s weights (:func:`init_mlp_params`); a labelled model's tables from their own seed."""
        dtype = np.dtype(self.dtype)
        params = init_mlp_params(len(self.vocab_), self.context, self.embedding, self.hidden, rng, dtype)
        if self.labels_ is not None:
            params.update(label_mlp_params(len(self.labels_), self.embedding, self.hidden, c.seed, dtype))
        return params

    def network(self) -> MLPNetwork:
        """What the training loop trains (:mod:`scratchgen.nn.network`)."""
        return MLPNetwork(self.context)

    def _check_memory(self, ids: list, running: bool, c: TrainConfig) -> None:
        """Refuse a run that cannot fit in memory before allocating it.

        Parameters (with label tables) times params, grads, best, good and two optimiser slots; a
        step's activations per position: the window's N E inputs twice, 3 H, and 3 V for the logits,
        probabilities and their gradient; validation batches of 256 rows of up to 4 T positions.
        """
        V, N, E, H = len(self.vocab_), self.context, self.embedding, self.hidden
        n_params = V * E + N * E * H + H + H * V + V + (len(self.labels_) * E + E * H if self.labels_ else 0)
        per_position = 2 * (N + 1) * E + 3 * H + 3 * V
        positions = max(c.batch_size * c.seq_len, 256 * 4 * c.seq_len)
        nbytes = np.dtype(self.dtype).itemsize * (8 * n_params + positions * per_position)
        check_memory(
            float(nbytes),
            f"training an MLP of context {N}, embedding {E}, hidden {H} with vocabulary {V}, "
            f"batch {c.batch_size} x {c.seq_len} positions in {self.dtype}",
            "lower --context, --embedding, --hidden, --batch or --seq-len",
        )

    # --- the stepping interface: the state is the window of the last N ids ------------------------

    def initial_state(self, batch_size: int = 1, labels: np.ndarray | None = None):
        """The window after ``<s>``: N ``<s>`` a row (int64 (B, N)); a labelled model's state is the
        pair (window, label ids (B,)) and needs ``labels`` (a :class:`LabelError` without them)."""
        self._fitted_params()
        window = np.full((batch_size, self.context), BOS, dtype=np.int64)  # (B, N)
        if self.labels_ is None:
            return window
        return window, self._check_label_ids(labels, batch_size)

    def advance(self, state, ids):
        ids = self._check_ids(np.asarray(ids).reshape(-1))
        window = state if self.labels_ is None else state[0]
        new = np.concatenate([window[:, 1:], ids[:, None].astype(np.int64)], axis=1)  # (B, N)
        return new if self.labels_ is None else (new, state[1])

    def next_logprobs(self, state) -> np.ndarray:
        window, labels = (state, None) if self.labels_ is None else state
        Y, _ = mlp_logits(self._fitted_params(), window[:, None, :], labels)  # (B, 1, V) eq. (1)
        return _log_softmax(Y[:, 0])  # (B, V), <s> excluded

    def _token_logprobs(self, sequences, labels=None):
        """Vectorised: every window of a padded batch at once, eq. (2), then one forward of eq. (1)/(3)."""
        p = self._fitted_params()
        seqs = [self._check_ids(s) for s in sequences]
        if self.labels_ is not None:
            labels = self._check_label_ids(labels, len(seqs))
        out: list = [None] * len(seqs)
        order = np.argsort([len(s) for s in seqs], kind="stable")
        net = self.network()
        for start in range(0, len(order), 256):
            rows = order[start : start + 256]
            x, y, _ = padded_batch([seqs[i] for i in rows])  # (B, T)
            windows, _ = chunk_windows(net.start_state(p, len(rows)), x)  # (B, T, N)
            Y, _ = mlp_logits(p, windows, None if labels is None else labels[rows])  # (B, T, V)
            picked = np.take_along_axis(_log_softmax(Y), y[:, :, None], axis=2)[:, :, 0]  # (B, T)
            for r, i in enumerate(rows):
                out[i] = picked[r, : len(seqs[i]) + 1]
        return out

    def stream_loss(self, corpus, streams: int = 32) -> float:
        """Mean nats per token of a running text (pieces joined, ``<s>`` first), the window carried."""
        if self.labels_ is not None:
            raise LabelError("a labelled MLPModel has no running-text loss: its examples are lines, each with a label")
        ids, _ = self.encode_corpus(corpus)
        stream = np.concatenate([[BOS], *ids, [EOS]]).astype(np.int64)
        return self.network().stream_loss(self._fitted_params(), stream, streams)[0]
