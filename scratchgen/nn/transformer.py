r"""A small decoder-only Transformer (GPT-2's layout) behind the shared protocol.

The network is that of :mod:`scratchgen.nn.attention` (eq. (A1)-(A21) there); this module trains it,
conditions it on a label, steps it with a key/value cache and scores with the same windows. With
X_0 the token plus position embeddings of a window of at most T tokens (T the ``context``)::

    X_0 = C[x_{s..t}] + P_pos[0 .. t-s] (+ L_in[c] at every position, a labelled model)    (T1)
    X_l = block_l(X_{l-1}),  l = 1 .. L                    pre-LN blocks, eq. (A9)          (T2)
    P(x_{t+1} = v | x_{s..t}) = softmax(LN_f(X_L[t]) W_out + b_out)[v]                    (T3)

(T1) is eq. (A10) plus the label vector of :mod:`scratchgen.nn.conditioning`'s eq. (L1), added to the
token embeddings at every position; its gradient is eq. (L3).

**Training** (:class:`TransformerNetwork`, the Trainer's :class:`~scratchgen.nn.network.Network`): chunks
of exactly T tokens (the config's ``seq_len`` is set to the context), each a window of its own at
positions 0 .. T-1, and nothing carried from one chunk to the next (the start state is None). Running
text is cut into such windows; a line longer than T is cut into windows too.

**The window rule** (generation and scoring alike). The model has no position past T - 1, so a text
longer than the context is read through windows. Let H = max(1, floor(T / 2)). Token i (0-based,
``<s>`` is token 0) is predicted from the window ``[s(i), i]``::

    s(i) = 0                              for i < T
    s(i) = (floor((i - T) / H) + 1) H     for i >= T          so  T - H + 1 <= i - s(i) + 1 <= T   (T4)

In words: when the window is full (T tokens) and a token arrives, the first H tokens are dropped and
the keys and values of the remaining T - H tokens plus the new one are recomputed once (their
positions start again at 0); then H - 1 cheap steps follow. Every prediction past the first T sees at
least T - H + 1 tokens, and the recomputation costs O((T - H) D^2 + (T - H)^2 D) once per H tokens,
so the cost per token stays flat on average. Why not the alternatives: sliding by one token would
recompute the whole window at every token (O(T^2 D) a step, not one step); refusing texts longer
than T would refuse running text, which is the point of a model trained on it. Scoring applies (T4)
with one forward pass per window (windows start at 0, H, 2H, ...; window k > 0 answers the positions
i in [kH + T - H, kH + T - 1]), so ``token_logprobs`` equals the log-probabilities of stepping.

**Stepping** (``initial_state``, ``advance``, ``next_logprobs``): the state is the tuple
``(x, ids, K_0, V_0, .., K_{L-1}, V_{L-1}[, labels])``: x (B, D) the top of the residual stream at the
last position (eq. (T3) reads it), ids (B, t) the tokens of the window, and K_l, V_l (B, A, t, d) the
keys and values of block l (:func:`~scratchgen.nn.attention.attention_step`): one new token costs one
position's work. ``advance`` never changes the state it is given (a decoder may keep it).

Letters: B batch, T context, D width (``embedding``), A heads, d = D / A, L blocks, V vocabulary,
C the number of labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ScratchgenError
from ..model import register_model
from ..resources import check_memory
from ..schema import ArraySpec
from .attention import (
    block_backward,
    block_forward,
    block_step,
    dense_backward,
    dense_forward,
    embed_backward,
    embed_forward,
    kv_cache,
    layernorm_backward,
    layernorm_forward,
)
from .callbacks import Callback
from .conditioning import label_input_backward, label_input_forward
from .config import TrainConfig, config_from
from .data import BOS, EOS, padded_batch
from .layers import softmax_ce_backward, softmax_ce_forward
from .network import Network
from .neural import MAX_WEIGHT, NeuralModel, _log_softmax
from .overlap import Pending, part, resolve, run_now

__all__ = [
    "TransformerModel",
    "TransformerNetwork",
    "init_transformer",
    "network_forward",
    "network_backward",
    "window_starts",
    "window_logprobs",
    "transformer_memory",
    "network_gradcheck",
]

MAX_SIZE = 1_000_000  # bounds what a (possibly edited) file header asks the schema to build
INIT_STD = 0.02  # GPT-2's initial standard deviation of every weight matrix and embedding


def _sub(params: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def slide(context: int) -> int:
    """H of eq. (T4): how many tokens the window drops when it is full."""
    return max(1, context // 2)


# --- parameters -----------------------------------------------------------------------------------


def init_transformer(
    V: int, D: int, L: int, T: int, rng: np.random.Generator, tied: bool = True, labels: int = 0, dtype=np.float64
) -> dict:
    """GPT-2's initialisation: weights N(0, 0.02), the two projections into the residual stream
    (``attn.W_o``, ``mlp.W_proj``) N(0, 0.02 / sqrt(2L)) so the stream's variance does not grow with
    depth (Radford et al. 2019, section 2.3), biases 0, LayerNorm gains 1; a label table ``L_in``
    (C, D) of zeros (no draw: the labelled model starts as the unlabelled one of the same seed)."""
    p: dict[str, np.ndarray] = {
        "C": rng.normal(0.0, INIT_STD, (V, D)),  # (V, D)
        "P_pos": rng.normal(0.0, INIT_STD, (T, D)),  # (T, D)
    }
    resid = INIT_STD / math.sqrt(2 * L)
    for layer in range(L):
        h = f"h.{layer}."
        p[h + "ln1.g"], p[h + "ln1.b"] = np.ones(D), np.zeros(D)
        p[h + "attn.W_qkv"], p[h + "attn.b_qkv"] = rng.normal(0.0, INIT_STD, (D, 3 * D)), np.zeros(3 * D)
        p[h + "attn.W_o"], p[h + "attn.b_o"] = rng.normal(0.0, resid, (D, D)), np.zeros(D)
        p[h + "ln2.g"], p[h + "ln2.b"] = np.ones(D), np.zeros(D)
        p[h + "mlp.W_fc"], p[h + "mlp.b_fc"] = rng.normal(0.0, INIT_STD, (D, 4 * D)), np.zeros(4 * D)
        p[h + "mlp.W_proj"], p[h + "mlp.b_proj"] = rng.normal(0.0, resid, (4 * D, D)), np.zeros(D)
    p["lnf.g"], p["lnf.b"] = np.ones(D), np.zeros(D)
    if not tied:
        p["W_out"] = rng.normal(0.0, INIT_STD, (D, V))  # (D, V)
    p["b_out"] = np.zeros(V)
    if labels:
        p["L_in"] = np.zeros((labels, D))  # (C, D) eq. (L1)
    return {k: v.astype(dtype) for k, v in p.items()}


def param_shapes(V: int, D: int, L: int, T: int, tied: bool, labels: int = 0) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter (what a model file must hold)."""
    shapes: dict[str, tuple[int, ...]] = {"C": (V, D), "P_pos": (T, D)}
    for layer in range(L):
        h = f"h.{layer}."
        for name, shape in (
            ("ln1.g", (D,)), ("ln1.b", (D,)), ("attn.W_qkv", (D, 3 * D)), ("attn.b_qkv", (3 * D,)),
            ("attn.W_o", (D, D)), ("attn.b_o", (D,)), ("ln2.g", (D,)), ("ln2.b", (D,)),
            ("mlp.W_fc", (D, 4 * D)), ("mlp.b_fc", (4 * D,)), ("mlp.W_proj", (4 * D, D)), ("mlp.b_proj", (D,)),
        ):  # fmt: skip
            shapes[h + name] = shape
    shapes["lnf.g"], shapes["lnf.b"] = (D,), (D,)
    if not tied:
        shapes["W_out"] = (D, V)
    shapes["b_out"] = (V,)
    if labels:
        shapes["L_in"] = (labels, D)
    return shapes


def _n_blocks(params: dict) -> int:
    return len({k.split(".")[1] for k in params if k.startswith("h.")})


def _w_out(params: dict) -> np.ndarray:
    return params["W_out"] if "W_out" in params else params["C"].T  # (D, V); tied: C^T, eq. (A11)


# --- the network of one chunk: eq. (T1)-(T3), forward and backward ------------------------------------


def _trunk_forward(params: dict, ids: np.ndarray, heads: int, labels=None, defer=run_now, backward: bool = True):
    """eq. (T1)-(T2): the residual stream X_L (B, T, D) of a window at positions 0 .. T-1, and the caches
    (``backward=False``: for reading only, without what only the backward needs)."""
    X, c_emb = embed_forward(params, (ids, 0))  # (B, T, D) eq. (A10)
    cache: dict = {"emb": c_emb, "blocks": []}
    if labels is not None:
        X, cache["label"] = label_input_forward(params, (X, labels))  # (B, T, D) eq. (L1)
    for layer in range(_n_blocks(params)):
        X, c = block_forward(_sub(params, f"h.{layer}."), (X, heads), defer, backward)  # (B, T, D) eq. (A9)
        cache["blocks"].append(c)
    return X, cache


def network_forward(params: dict, inputs, heads: int, defer=run_now):
    """The mean cross-entropy of one chunk: eq. (T1)-(T3) then ``layers.softmax_ce_forward``.

    Parameters
    ----------
    params : dict (:func:`init_transformer`)
    inputs : (ids, targets, mask, state[, dropout][, labels])
        ids, targets : int (B, T) with T <= the context; mask (B, T) or None; state must be None
        (nothing is carried between chunks); dropout must be None; labels int (B,) or None.
    heads : int, A
    defer : :func:`~scratchgen.nn.overlap.run_now` (one thread) or an :class:`~scratchgen.nn.overlap.Overlap`,
        whose thread then takes half of the attention's and GELU's blocks (the same numbers).

    Returns
    -------
    (loss, None), cache
    """
    ids, targets, mask = inputs[:3]
    labels = inputs[5] if len(inputs) > 5 else None
    XL, cache = _trunk_forward(params, ids, heads, labels, defer)
    N, cache["lnf"] = layernorm_forward(_sub(params, "lnf."), XL)  # (B, T, D)
    logits, cache["out"] = dense_forward({"W": _w_out(params), "b": params["b_out"]}, N)  # (B, T, V) eq. (T3)
    loss, cache["ce"] = softmax_ce_forward({}, (logits, targets, mask))
    cache["n_inputs"] = len(inputs)
    return (loss, None), cache


def _table_grads(params: dict, c_emb: dict, dX0: np.ndarray, dW_out):
    """eq. (A21) (dC, dP_pos), and with tied weights C's second use added: dC += dW_out^T (``dW_out`` an
    array or a :class:`~scratchgen.nn.overlap.Pending` of one)."""
    g_emb, _ = embed_backward(params, c_emb, dX0)  # eq. (A21)
    if dW_out is None:
        return g_emb["C"], g_emb["P_pos"]
    dW = dW_out.result() if isinstance(dW_out, Pending) else dW_out
    return g_emb["C"] + dW.T, g_emb["P_pos"]  # both uses of C


def network_backward(params: dict, cache: dict, d_outputs=(1.0, None), defer=run_now):
    """Every gradient of :func:`network_forward`: eq. (A12)-(A21), and (L3) for ``L_in``.

    With tied weights, C gets the gradient of both its uses (the lookup and the output map) added.
    Returns grads and one None per input (ids, targets, mask and labels have no gradient).

    ``defer`` (:mod:`scratchgen.nn.overlap`): who computes the weight gradients, which nothing in the
    pass waits for. The default computes them at once (one thread); an :class:`~scratchgen.nn.overlap.Overlap`
    computes them on a second thread while this one goes on down the blocks, and the numbers are the same.
    """
    d_loss = d_outputs[0] if isinstance(d_outputs, tuple) else d_outputs
    _, (dlogits, _, _) = softmax_ce_backward({}, cache["ce"], d_loss)  # (B, T, V)
    tied = "W_out" not in params
    g_out, dN = dense_backward({"W": _w_out(params)}, cache["out"], dlogits, defer)  # (B, T, D)
    grads = {"b_out": g_out["b"]}
    g_lnf, dX = layernorm_backward(_sub(params, "lnf."), cache["lnf"], dN)
    grads["lnf.g"], grads["lnf.b"] = g_lnf["g"], g_lnf["b"]
    for layer in range(len(cache["blocks"]) - 1, -1, -1):
        g, (dX, _) = block_backward(_sub(params, f"h.{layer}."), cache["blocks"][layer], dX, defer)  # eq. (A20)
        grads.update({f"h.{layer}.{k}": v for k, v in g.items()})
    if "label" in cache:
        grads["L_in"] = label_input_backward(params, cache["label"], dX)[0]["L_in"]  # (C, D) eq. (L3)
    tables = defer(_table_grads, params, cache["emb"], dX, g_out["W"] if tied else None)  # eq. (A21)
    grads["P_pos"], grads["C"] = part(tables, 1), part(tables, 0)  # in the order of the one-thread pass
    if not tied:
        grads["W_out"] = g_out["W"]
    return resolve(grads), (None,) * cache["n_inputs"]


# --- windows: eq. (T4) ------------------------------------------------------------------------------


def window_starts(n: int, context: int, stride: int | None = None) -> list[tuple[int, int, int]]:
    """The windows that predict n positions by eq. (T4): (start s, first answered i, last answered i + 1).

    ``stride`` replaces H of eq. (T4) (default ``slide(context)``): windows then start every ``stride``
    tokens and each prediction past the first T sees at least T - stride + 1 tokens; 1 gives every
    prediction the full context (sliding windows, T times the work of one pass: an evaluation's choice).

    >>> window_starts(10, 4)          # H = 2: window 0 answers 0..3, window 2 answers 4..5, window 4 answers 6..7
    [(0, 0, 4), (2, 4, 6), (4, 6, 8), (6, 8, 10)]
    >>> window_starts(6, 4, stride=1)  # every prediction past the first 4 sees 4 tokens
    [(0, 0, 4), (1, 4, 5), (2, 5, 6)]
    """
    T = context
    H = slide(context) if stride is None else stride
    if not 1 <= H <= T:
        raise ScratchgenError(f"the stride of the windows must be from 1 to the context {T}, got {H}")
    out = [(0, 0, min(T, n))]
    s = H
    while s + T - H < n:
        out.append((s, s + T - H, min(s + T, n)))
        s += H
    return out


def window_logprobs(
    params: dict,
    heads: int,
    x: np.ndarray,
    y: np.ndarray,
    labels=None,
    rows: int = 64,
    exclude_bos: bool = True,
    stride: int | None = None,
) -> np.ndarray:
    """log P(y[b, i] | the window of eq. (T4) ending at x[b, i]) for every b, i: (B, n) float64.

    Every window of every row is one row of a batch of at most ``rows`` windows (each T long, padded
    with ``</s>``: the mask of eq. (A5) keeps the padding out of the answered positions).
    ``exclude_bos`` drops the ``<s>`` column as scoring does (False: the training loss's softmax).
    ``stride``: the windows' step, as in :func:`window_starts` (default H of eq. (T4)).
    """
    B, n = x.shape
    T = params["P_pos"].shape[0]
    out = np.zeros((B, n))
    jobs = [(b, w) for w in window_starts(n, T, stride) for b in range(B)]  # (row, window)
    W_out = _w_out(params)
    for k in range(0, len(jobs), rows):
        part = jobs[k : k + rows]
        ids = np.full((len(part), T), EOS, dtype=np.int64)  # (R, T)
        for r, (b, (s, _, _)) in enumerate(part):
            piece = x[b, s : s + T]
            ids[r, : len(piece)] = piece
        lab = None if labels is None else np.asarray([labels[b] for b, _ in part])
        XL, _ = _trunk_forward(params, ids, heads, lab, backward=False)  # (R, T, D)
        logits = layernorm_forward(_sub(params, "lnf."), XL)[0] @ W_out + params["b_out"]  # (R, T, V)
        if exclude_bos:
            logp = _log_softmax(logits)
        else:
            logp = np.array(logits, dtype=np.float64)
            logp -= logp.max(axis=-1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(axis=-1, keepdims=True))
        for r, (b, (s, first, stop)) in enumerate(part):
            pos = np.arange(first - s, stop - s)  # window positions answered
            out[b, first:stop] = logp[r, pos, y[b, first:stop]]
    return out


class TransformerNetwork(Network):
    """The Trainer's view of the Transformer: eq. (T1)-(T3) on chunks of at most T tokens, nothing carried.

    The validation losses read text longer than a chunk through the windows of eq. (T4), like scoring.
    """

    #: The backward pass takes ``defer``: a second thread can compute the weight gradients (nn/overlap.py).
    overlaps = True

    def __init__(self, heads: int):
        self.heads = heads

    def forward(self, params: dict, inputs: tuple, defer=run_now):
        return network_forward(params, inputs, self.heads, defer)

    def backward(self, params: dict, cache, defer=run_now):
        return network_backward(params, cache, defer=defer)

    def stream_loss(
        self, params: dict, ids: np.ndarray, streams: int = 32, seq_len: int = 256, stride: int | None = None
    ) -> tuple[float, int]:
        """Mean nats per token of a running text (one row), every token predicted by eq. (T4); ``stride``
        as in :func:`window_starts` (1: every prediction past the first T sees T tokens)."""
        x, y = ids[None, :-1], ids[None, 1:]  # (1, n)
        logp = window_logprobs(params, self.heads, x, y, exclude_bos=False, stride=stride)
        return float(-logp.mean()), int(y.size)

    def sequences_loss(self, params: dict, sequences, batch: int = 256, labels=None) -> tuple[float, int]:
        """Mean nats per token (``</s>`` counted) of separate sequences, each read by eq. (T4)."""
        order = np.argsort([len(s) for s in sequences], kind="stable")
        total, count = 0.0, 0
        for i in range(0, len(order), batch):
            rows = order[i : i + batch]
            x, y, m = padded_batch([sequences[j] for j in rows])  # (B, n)
            lab = None if labels is None else labels[rows]
            logp = window_logprobs(params, self.heads, x, y, lab, exclude_bos=False)
            total -= float((logp * m).sum())
            count += int(m.sum())
        return total / max(count, 1), count


def transformer_memory(
    V: int, D: int, L: int, A: int, T: int, B: int, itemsize: int, optimizer: str = "adam", labels: int = 0
) -> int:
    """Bytes of one training step (a rough upper estimate): the parameters four times (weights,
    gradients, two moments of Adam), each block's cache of about 22 (B, T, D) arrays (LayerNorms, the
    QKV, the MLP's 4D-wide activations and GELU's derivative) plus 3 (B, A, T, T) attention arrays (P, dP, dS:
    attention's quadratic term), and 3 (B, T, V) arrays of logits, probabilities and their gradient."""
    n_params = sum(math.prod(s) for s in param_shapes(V, D, L, T, True, labels).values()) + D * V
    copies = {"sgd": 3, "adagrad": 3}.get(optimizer, 4)
    per_block = 22 * B * T * D + 3 * B * A * T * T
    return int(itemsize * (copies * n_params + L * per_block + 3 * B * T * V + 2 * B * T * D))


def network_gradcheck(layers: int = 2, embedding: int = 4, labels: int = 0, seed: int = 0) -> tuple[dict, str]:
    """The network's gradients against central differences in float64 (``scratchgen gradcheck --model
    transformer``): 2 heads, context 5, V 7, B 3, tied weights, a padding mask, and with ``labels`` C > 0
    the labels' input vectors. Returns the relative error of each parameter and a line saying what was checked.
    """
    from .gradcheck import gradcheck

    A, V, B, T, L, E = 2, 7, 3, 5, layers, embedding
    if not E or E % A:
        raise ScratchgenError(f"the Transformer's width must be a multiple of its 2 heads: --embedding {E}")
    rng = np.random.default_rng(seed)
    params = init_transformer(V, E, L, T, rng, tied=True, labels=labels)
    params = {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in params.items()}  # no zero biases or tables
    ids = rng.integers(0, V, size=(B, T))  # (B, T)
    targets = rng.integers(0, V, size=(B, T))  # (B, T)
    mask = rng.random((B, T)) < 0.75  # (B, T) some padding
    inputs: tuple = (ids, targets, mask, None)
    if labels:
        inputs += (None, rng.integers(0, labels, size=B))
    net = TransformerNetwork(A)

    def loss_and_grads(p: dict):
        (loss, _), cache = net.forward(p, inputs)
        return loss, net.backward(p, cache)[0]

    what = (
        f"gradient check: Transformer, {L} block(s), {A} heads, embedding {E}, context {T}, V {V}, B {B}, "
        f"tied weights, with padding mask"
        + (f" and {labels} labels' input vectors" if labels else "")
        + " (float64, central differences)"
    )
    return gradcheck(loss_and_grads, params, seed=seed), what


# --- the model ---------------------------------------------------------------------------------------


@register_model
class TransformerModel(NeuralModel):
    """A decoder-only Transformer language model (GPT-2's pre-LN layout), hand-written backward pass.

    Parameters
    ----------
    layers : int
        L, the number of blocks.
    heads : int
        A, attention heads; ``embedding`` must be a multiple of it.
    embedding : int
        D, the width of the residual stream (token and position vectors).
    context : int
        T, the most positions the model sees at once (its table of position vectors); also the
        length of its training chunks. Longer texts are read through the windows of eq. (T4).
    tie_weights : bool
        Use the token table as the output map, W_out = C^T (Press & Wolf 2017): V D fewer numbers.
    dtype : {"float64", "float32"}
    tokenizer, config, callbacks, **training
        As for :class:`~scratchgen.nn.rnn.RNNModel`: the recipe is a :class:`TrainConfig`.

    Attributes
    ----------
    params_ : dict of ndarray
        ``C`` (V, D), ``P_pos`` (T, D), ``h.l.*`` of each block (:mod:`scratchgen.nn.attention`),
        ``lnf.g``, ``lnf.b``, ``b_out`` (V,), ``W_out`` (D, V) unless tied, ``L_in`` (C, D) if labelled.
    vocab_, labels_, history_, valid_loss_ : as for RNNModel

    Examples
    --------
    >>> m = TransformerModel(layers=1, heads=2, embedding=8, context=8, epochs=2, batch_size=2,
    ...                      valid_fraction=0).fit(["abab", "abba", "baba"])
    >>> lp = m.next_logprobs(m.initial_state(1))
    >>> lp.shape, bool(np.isclose(np.exp(lp).sum(), 1.0))   # V = <unk> <s> </s> a b
    ((1, 5), True)
    """

    NAME = "a Transformer"

    def __init__(
        self,
        *,
        layers: int = 4,
        heads: int = 4,
        embedding: int = 64,
        context: int = 32,
        tie_weights: bool = True,
        dtype: str = "float64",
        tokenizer=None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (),
        **training,
    ):
        super().__init__(tokenizer=tokenizer, config=config, callbacks=callbacks, **training)
        self.layers = layers
        self.heads = heads
        self.embedding = embedding
        self.context = context
        self.tie_weights = tie_weights
        self.dtype = dtype

    def get_params(self) -> dict:
        """The architecture (what a model file stores; the tokenizer apart)."""
        return {
            "layers": self.layers,
            "heads": self.heads,
            "embedding": self.embedding,
            "context": self.context,
            "tie_weights": self.tie_weights,
            "dtype": self.dtype,
        }

    # --- validation ------------------------------------------------------------------------------

    def _check_params(self) -> None:
        """Check the architecture; a message names the argument and its flag."""
        for name in ("layers", "heads", "embedding", "context"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_SIZE:
                raise ScratchgenError(f"{name} (--{name}) must be an integer from 1 to {MAX_SIZE}, got {value!r}")
        if self.embedding % self.heads:
            raise ScratchgenError(
                f"embedding (--embedding) {self.embedding} must be a multiple of heads (--heads) {self.heads}: "
                "each head takes embedding / heads columns"
            )
        if not isinstance(self.tie_weights, bool):
            raise ScratchgenError(f"tie_weights (--untied) must be true or false, got {self.tie_weights!r}")
        self._check_dtype()

    def _array_schema(self) -> dict:
        """Every parameter array with its exact shape from the header (V, D, L, T, tied, labels)."""
        C = len(self.labels_) if self.labels_ is not None else 0
        shapes = param_shapes(len(self.vocab_), self.embedding, self.layers, self.context, self.tie_weights, C)
        return {f"param/{k}": ArraySpec(s, low=-MAX_WEIGHT, high=MAX_WEIGHT) for k, s in shapes.items()}

    # --- training --------------------------------------------------------------------------------

    def network(self) -> TransformerNetwork:
        """What the training loop trains (:mod:`scratchgen.nn.network`)."""
        return TransformerNetwork(self.heads)

    def _recipe(self, c: TrainConfig) -> TrainConfig:
        """The chunks are ``context`` tokens long whatever ``c.seq_len`` (a chunk is one window, eq. (T1)), and
        nothing is carried between them; ``dropout`` > 0 is refused (this network has none)."""
        self._refuse_dropout(c)
        return config_from(c, seq_len=self.context)

    def _check_memory(self, ids: list, running: bool, c: TrainConfig) -> None:
        """Refuse a run that cannot fit in memory before allocating it (:func:`transformer_memory`)."""
        V = len(self.vocab_)
        itemsize = np.dtype(self.dtype).itemsize
        B = max(c.batch_size, 64)  # the validation batches of windows (window_logprobs) too
        check_memory(
            transformer_memory(V, self.embedding, self.layers, self.heads, self.context, B, itemsize, c.optimizer),
            f"training a Transformer of {self.layers} block(s), embedding {self.embedding}, {self.heads} heads, "
            f"context {self.context}, vocabulary {V}, batch {c.batch_size} in {self.dtype}",
            "lower --embedding, --layers, --context or --batch",
        )

    def _init_params(self, rng: np.random.Generator, c: TrainConfig) -> dict:
        """The weights of eqs. (A1)-(A10) and (T3) (:func:`init_transformer`)."""
        C = len(self.labels_) if self.labels_ is not None else 0
        params = init_transformer(
            len(self.vocab_), self.embedding, self.layers, self.context, rng, self.tie_weights, C, np.dtype(self.dtype)
        )
        return params

    # --- stepping with the key/value cache: eq. (T1)-(T4) ---------------------------------------------

    def _rebuild(self, ids: np.ndarray, labels):
        """The state of a window read in one forward pass: the keys and values of every block."""
        p = self._fitted_params()
        XL, cache = _trunk_forward(p, ids, self.heads, labels, backward=False)  # (B, t, D)
        kv: list[np.ndarray] = []
        for c in cache["blocks"]:
            kv += [c["attn"]["K"], c["attn"]["V"]]  # (B, A, t, d) each
        return (XL[:, -1], ids, *kv) + (() if labels is None else (labels,))

    def _step(self, state, ids: np.ndarray):
        """Read one more token per row: one position's work, or the recomputation of eq. (T4) when full."""
        p = self._fitted_params()
        L = self.layers
        labels = state[2 + 2 * L] if self.labels_ is not None else None
        window = state[1]  # (B, t)
        t = window.shape[1]
        if t == self.context:  # full: drop the first H tokens and read the rest again, eq. (T4)
            kept = np.concatenate([window[:, slide(self.context) :], ids[:, None]], axis=1)
            return self._rebuild(kept, labels)
        x, _ = embed_forward(p, (ids[:, None], t))  # (B, 1, D) eq. (A10) at position t
        x = x[:, 0]  # (B, D)
        if labels is not None:
            x = x + p["L_in"][labels]  # (B, D) eq. (L1)
        B = len(ids)
        kv: list[np.ndarray] = []
        for layer in range(L):
            cache = kv_cache(B, self.heads, self.embedding, t + 1, x.dtype)  # a new cache: the old state stays
            cache["K"][:, :, :t], cache["V"][:, :, :t] = state[2 + 2 * layer], state[3 + 2 * layer]
            cache["n"] = t
            x = block_step(_sub(p, f"h.{layer}."), x, cache)  # (B, D) eq. (A9), one position
            kv += [cache["K"], cache["V"]]
        new_window = np.concatenate([window, ids[:, None]], axis=1)  # (B, t+1)
        return (x, new_window, *kv) + (() if labels is None else (labels,))

    def initial_state(self, batch_size: int = 1, labels: np.ndarray | None = None):
        """The state after reading ``<s>`` (position 0); a labelled model needs ``labels`` (B,) ids."""
        p = self._fitted_params()
        lab = self._check_label_ids(labels, batch_size) if self.labels_ is not None else None
        dtype = p["C"].dtype
        A, d = self.heads, self.embedding // self.heads
        empty = np.zeros((batch_size, A, 0, d), dtype=dtype)  # (B, A, 0, d): no position yet
        state: tuple = (np.zeros((batch_size, self.embedding), dtype=dtype), np.zeros((batch_size, 0), dtype=np.int64))
        state += (empty,) * (2 * self.layers) + (() if lab is None else (lab,))
        return self._step(state, np.full(batch_size, BOS, dtype=np.int64))

    def next_logprobs(self, state) -> np.ndarray:
        p = self._fitted_params()
        N = layernorm_forward(_sub(p, "lnf."), state[0])[0]  # (B, D)
        return _log_softmax(N @ _w_out(p) + p["b_out"])  # (B, V) eq. (T3)

    def _explain(self, ids: np.ndarray, label: int | None = None):
        """Where each prediction looked: attention weights a layer and head (see :mod:`.explain`)."""
        from .explain import explain_transformer

        if self.labels_ is not None and label is None:  # a marginal: one network a label, none to show
            return super()._explain(ids, label)
        return explain_transformer(self, self._check_ids(ids), label), {}

    def _token_logprobs(self, sequences, labels=None):
        """Vectorised: every window of eq. (T4) of a padded batch in one forward pass each; equals stepping."""
        p = self._fitted_params()
        seqs = [self._check_ids(s) for s in sequences]
        if self.labels_ is not None:
            labels = self._check_label_ids(labels, len(seqs))
        out = [None] * len(seqs)
        order = np.argsort([len(s) for s in seqs], kind="stable")
        for start in range(0, len(order), 256):
            rows = order[start : start + 256]
            x, y, _ = padded_batch([seqs[i] for i in rows])  # (B, n)
            lab = None if labels is None else labels[rows]
            logp = window_logprobs(p, self.heads, x, y, lab)  # (B, n)
            for r, i in enumerate(rows):
                out[i] = logp[r, : len(seqs[i]) + 1]
        return out
