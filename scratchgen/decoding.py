"""One decoder for every model: sampling with every control, greedy decoding and beam search.

Everything here uses only the stepping interface of :mod:`scratchgen.model` (``initial_state``,
``advance``, ``next_logprobs``, ``take_state``), so each control works for every model that speaks it.

At each step the model gives l = log P(. | x_<t) of shape (B, V); the controls reshape it in this order:

1. banned tokens, ``<s>``, ``<unk>`` (unless ``allow_unk``: a sample that says "<unk>" is no text),
   and ``</s>`` (and stop tokens) before ``min_tokens``: l_w = -inf;
2. repetition penalty theta (the CTRL rule, Keskar et al. 2019, on probabilities): a token already in
   the sequence (prompt included) has its probability divided by theta::

       l_w <- l_w - [w seen] ln(theta)                                                        (1)

3. temperature tau: l <- l / tau; tau = 0 is greedy decoding (argmax, lowest id on ties);
4. top-k: keep the k most probable tokens (ties broken by lower id);
5. top-p (nucleus, Holtzman et al. 2020): sort by probability, keep the smallest prefix whose
   mass reaches p (always at least one token);
6. renormalise, p = softmax(l), and draw by inverting the cumulative distribution with one
   uniform number a row: x = min{ w : sum_{v <= w} p_v > u * sum_v p_v }.                    (2)

Beam search extends every live prefix by every token and keeps the ``width`` most probable
extensions (by the model's own log-probabilities, the controls of step 1 applied); an extension by
``</s>`` is finished and leaves the beam. Width 1 is greedy decoding. It returns the finished
sequences ranked by log P / len^alpha
(``length_penalty`` alpha; 0 ranks by probability). The greedy sequence is always a candidate, so
with alpha = 0 beam search never returns a sequence less probable than greedy decoding's.

With a ``grammar`` the model steps beside the grammar's prefix parser
(:class:`scratchgen.constraint.ConstrainedModel`): before step 1, every token no sentence of the grammar
can continue with gets l_w = -inf (and ``</s>`` unless the prefix is a sentence), so every control
above applies within the grammar's language; ``exact=True`` samples the exact conditional instead
(:mod:`scratchgen.smc`).

The ``seed`` is an int, ``None`` (fresh entropy) or a ``numpy.random.Generator``; global random
state is never used, so the same seed gives the same text in any process. The controls are checked
and turned into token ids before the first step, by :mod:`scratchgen.controls`; the step-by-step sampler
is :mod:`scratchgen.sampling`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from .constraint import constrain, sample_complete
from .controls import DecodingSettings, check_count, make_rng, prepare_ids
from .errors import DecodingError, LabelError
from .labels import label_ids
from .sampling import NEG_INF, _mask, _sample, _start, filter_logits  # noqa: F401 (filter_logits: re-export)
from .text import Vocabulary

__all__ = ["generate", "iter_generate", "beam_search", "DecodingSettings"]

_F = TypeVar("_F", bound=Callable[..., Any])


# The parameters generate and iter_generate share, documented once: {parameters} in their docstrings.
_PARAMETERS = """model : LanguageModel
        A fitted model.
    n : int
        How many sequences, drawn ``batch_size`` at a time.
    prompt : str or list of str, optional
        The sequences start with it (conditional generation); a str is tokenized by the model. A
        prompt the model gives probability 0 raises a :class:`DecodingError`.
    max_tokens, min_tokens : int
        At most ``max_tokens`` tokens after the prompt; no ``</s>`` or stop token before ``min_tokens``.
    temperature : float
        Divides the log-probabilities; 0 means greedy decoding.
    top_k, top_p : optional
        Keep the k most probable tokens / the smallest set of mass >= p.
    repetition_penalty : float
        Eq. (1); 1 turns it off, > 1 discourages repeats.
    banned : iterable of str
        Tokens never emitted.
    stop : iterable of str
        Tokens that end a sequence (kept at its end); ``</s>`` always ends one (and is not kept).
    allow_unk : bool
        Let the model emit ``<unk>``; by default it never does (the rest is renormalised).
    seed : int, None or numpy.random.Generator
    prompt_oov : {"error", "unk"}
        A prompt token outside the vocabulary raises a :class:`DecodingError` naming it, or becomes ``<unk>``.
    batch_size : int, optional
        Sequences drawn together; memory is proportional to it, not to ``n``. Default: as many as keep one
        (B, V) array of log-probabilities near 32 MB (2**22 / V rows, from 64 to 4096).
    label : str, optional
        For a labelled model, the condition c: draws from P(x | c). Without it a labelled model draws
        each sequence's label from its prior P(c) first (so the samples follow the marginal P(x)).
        A label given to an unlabelled model, or one the model does not know, is a :class:`LabelError`.
    grammar : str, Grammar, GrammarModel or GrammarConstraint, optional
        Hold the samples to the grammar's language (a file, Tracery JSON, grammar text or ``builtin:NAME``):
        at each step the model's log-probabilities of the tokens no sentence of the grammar can continue
        with become -inf (eq. (1) of :mod:`scratchgen.constraint`), then every control applies as usual;
        a stop token is allowed only where it completes a sentence. A sample that reaches ``max_tokens``
        before its sentence is complete is dropped and redrawn (up to 100 draws a sample, then a
        :class:`DecodingError` asks for a larger ``max_tokens``), so the samples follow the masked
        distribution given that the sentence ends in time. A prompt the grammar cannot continue is a
        :class:`DecodingError`; a grammar terminal outside the model's vocabulary a :class:`VocabularyError`.
        Masking is not conditioning: see ``exact``."""


def _shared_parameters(function: _F) -> _F:
    """Write the shared parameter documentation into ``function``'s docstring at ``{parameters}``."""
    if function.__doc__:  # None under python -OO
        function.__doc__ = function.__doc__.replace("{parameters}", _PARAMETERS)
    return function


@_shared_parameters
def generate(
    model,
    n: int = 1,
    *,
    prompt: str | Sequence[str] | None = None,
    max_tokens: int = 200,
    min_tokens: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    banned: Iterable[str] = (),
    stop: Iterable[str] = (),
    allow_unk: bool = False,
    seed=None,
    prompt_oov: str = "error",
    return_logprobs: bool = False,
    batch_size: int | None = None,
    label: str | None = None,
    grammar=None,
    exact: bool = False,
    particles: int = 64,
):
    """Draw ``n`` sequences from a model, batched through its stepping interface.

    Parameters
    ----------
    {parameters}
    exact : bool
        With a ``grammar``: draw from the exact conditional P_model(x | x in L(G)) by sequential Monte
        Carlo (:func:`scratchgen.smc.sample_exact`, which also returns the estimate of P_model(L(G))),
        one run of ``particles`` particles a sample. Only the controls that keep the target a restriction
        of the model's distribution are allowed: temperature 1, no top-k, top-p or repetition penalty.
        ``batch_size`` then counts the runs stepped together (its default is ``sample_exact``'s).
    particles : int
        N, the particles of each sequential Monte Carlo run (``exact`` only).
    return_logprobs : bool
        Also return the model's natural-log probability of each generated continuation
        (``</s>`` included when it ended the sequence), the controls aside.

    Returns
    -------
    list of n token lists (prompt included), and with ``return_logprobs`` an array of shape (n,).

    >>> from scratchgen import UnigramModel
    >>> m = UnigramModel().fit(["abc", "abd"])
    >>> generate(m, 2, seed=0) == generate(m, 2, seed=0)
    True
    >>> generate(m, 1, prompt="ab", max_tokens=0)
    [['a', 'b']]
    """
    # The controls generate shares with iter_generate and sample_exact (the same keywords, the same defaults:
    # tests/test_smc.py checks the three signatures agree), passed on once.
    controls: dict[str, Any] = {
        "prompt": prompt,
        "max_tokens": max_tokens,
        "min_tokens": min_tokens,
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "repetition_penalty": repetition_penalty,
        "banned": banned,
        "stop": stop,
        "allow_unk": allow_unk,
        "seed": seed,
        "prompt_oov": prompt_oov,
        "label": label,
        "batch_size": batch_size,
    }
    if exact:
        from .smc import sample_exact

        if grammar is None:
            raise DecodingError("exact=True samples P(x | x in L(G)): it needs a grammar (grammar=...)")
        result = sample_exact(model, n, grammar=grammar, particles=particles, **controls)
        return (result.sequences, result.logprobs) if return_logprobs else result.sequences
    sequences: list[list[str]] = []
    logps: list[np.ndarray] = []
    for batch, logp in iter_generate(model, n, grammar=grammar, **controls):
        sequences += batch
        logps.append(logp)
    return (sequences, np.concatenate(logps)) if return_logprobs else sequences


@_shared_parameters
def iter_generate(
    model,
    n: int = 1,
    *,
    prompt: str | Sequence[str] | None = None,
    max_tokens: int = 200,
    min_tokens: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    banned: Iterable[str] = (),
    stop: Iterable[str] = (),
    allow_unk: bool = False,
    seed=None,
    prompt_oov: str = "error",
    batch_size: int | None = None,
    label: str | None = None,
    grammar=None,
) -> Iterator[tuple[list[list[str]], np.ndarray]]:
    """Like :func:`generate`, but yield ``(sequences, logprobs)`` one batch at a time, as each is done.

    Memory stays flat in ``n`` (``scratchgen generate -n 10000000`` prints as it goes). All batches draw
    from one random generator, so the concatenated output is :func:`generate`'s, for the same seed.

    Parameters
    ----------
    {parameters}

    >>> from scratchgen import UnigramModel
    >>> m = UnigramModel().fit(["abc"])
    >>> [len(batch) for batch, _ in iter_generate(m, 5, batch_size=2, seed=0)]
    [2, 2, 1]
    """
    check_count("n", n)
    settings = DecodingSettings(max_tokens, min_tokens, temperature, top_k, top_p, repetition_penalty)
    rng = make_rng(seed)
    vocab, banned_ids, stop_ids, prompt_ids = prepare_ids(model, prompt, prompt_oov, banned, stop, allow_unk)
    label_id = label_ids(model, label, 1)  # checked before the first batch
    if batch_size is None:
        batch_size = int(np.clip(2**22 // len(vocab), 64, 4096))  # one (B, V) float64 array near 32 MB
    check_count("batch_size", batch_size)
    stepper = model if grammar is None else constrain(model, grammar, prompt_ids, stop_ids)

    def draw(size: int) -> tuple[list[list[int]], np.ndarray]:
        labels = _batch_labels(model, label_id, size, rng)
        return _sample(stepper, size, prompt_ids, settings, banned_ids, stop_ids, rng, labels)

    prefix = vocab.decode(prompt_ids)
    for start in range(0, int(n), int(batch_size)):
        size = min(int(batch_size), int(n) - start)
        if grammar is None:
            ids, logp = draw(size)
        else:  # a sample cut at max_tokens before its sentence ends is redrawn
            ids, logp = sample_complete(size, draw, settings.max_tokens, stop_ids)
        yield [prefix + vocab.decode(s) for s in ids], logp


def _batch_labels(model, label_id: np.ndarray | None, size: int, rng: np.random.Generator) -> np.ndarray | None:
    """The label id of each sequence of a batch: the one asked for, or drawn from the prior P(c)."""
    if label_id is not None:
        return np.full(size, label_id[0], dtype=np.int64)
    known = getattr(model, "labels_", None)
    if known is None:
        return None
    return rng.choice(len(known), size=size, p=np.exp(known.log_prior)).astype(np.int64)


# --- beam search -------------------------------------------------------------------------------------


def beam_search(
    model,
    width: int = 4,
    *,
    prompt: str | Sequence[str] | None = None,
    max_tokens: int = 50,
    min_tokens: int = 0,
    length_penalty: float = 0.0,
    banned: Iterable[str] = (),
    n: int = 1,
    prompt_oov: str = "error",
    allow_unk: bool = False,
    label: str | None = None,
    grammar=None,
) -> list[tuple[list[str], float]]:
    """The ``n`` best sequences found by beam search of the given width.

    Parameters
    ----------
    width : int
        Prefixes kept at each step (1 is greedy decoding).
    length_penalty : float
        alpha in the ranking score log P / len^alpha (len counts generated tokens and ``</s>``);
        0 ranks by probability, larger values favour longer sequences.
    n : int
        How many sequences to return (1 to ``width``).
    allow_unk : bool
        Let the beams hold ``<unk>``; by default they never do.
    label : str
        The condition c of a labelled model (required for one): the search maximises log P(x | c).
    grammar : optional
        Search only the grammar's language (as in :func:`generate`): the beams extend by the tokens
        eq. (1) of :mod:`scratchgen.constraint` allows, ranked by the model's own log P, and only
        complete sentences are returned (a beam cut at ``max_tokens`` is not one; none at all is a
        :class:`DecodingError`).

    Returns
    -------
    list of (tokens, logprob): tokens with the prompt, logprob = natural-log model probability of the
    continuation (``</s>`` included when it ended; a sequence cut at ``max_tokens`` has none).

    >>> from scratchgen import UnigramModel
    >>> m = UnigramModel().fit(["aab"])
    >>> # add-one counts <unk>:1 a:3 b:2 </s>:2 of 8: the empty sequence (P = 2/8) beats every longer one
    >>> beam_search(m, width=3, max_tokens=5)
    [([], -1.386...)]
    """
    check_count("width", width)
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= width:
        raise DecodingError(f"n must be an integer from 1 to width ({width}), got {n!r}")
    if not isinstance(length_penalty, (int, float)) or not math.isfinite(length_penalty) or length_penalty < 0:
        raise DecodingError(f"length_penalty must be a finite number >= 0, got {length_penalty!r}")
    settings = DecodingSettings(max_tokens=max_tokens, min_tokens=min_tokens, temperature=0.0)
    vocab, banned_ids, no_stop, prompt_ids = prepare_ids(model, prompt, prompt_oov, banned, (), allow_unk)
    labels = label_ids(model, label, 1)
    known = getattr(model, "labels_", None)
    if labels is None and known is not None:
        raise LabelError(f"beam search of a labelled model needs a label: one of {', '.join(known.names)}")

    stepper = model if grammar is None else constrain(model, grammar, prompt_ids, no_stop)

    def rank(logprob: float, length: int) -> float:
        return logprob / max(length, 1) ** length_penalty

    # The greedy sequence is always a candidate (see the module docstring).
    greedy, greedy_lp = _sample(stepper, 1, prompt_ids, settings, banned_ids, no_stop, None, labels)
    g_len = len(greedy[0]) + (len(greedy[0]) < max_tokens)
    finished = [(rank(greedy_lp[0], g_len), float(greedy_lp[0]), greedy[0])]
    _beams(stepper, width, n, prompt_ids, settings, banned_ids, rank, length_penalty == 0, finished, labels)
    if grammar is not None:  # only complete sentences: a sequence cut at max_tokens has all of them
        finished = [f for f in finished if len(f[2]) < max_tokens]
        if not finished:
            raise DecodingError(f"beam search found no sentence of the grammar within max_tokens={max_tokens}")
    prefix = vocab.decode(prompt_ids)
    return [(prefix + vocab.decode(ids), logprob) for ids, logprob in _distinct_best(finished, n)]


def _distinct_best(finished: list, n: int) -> list[tuple[list[int], float]]:
    """The ``n`` best of the ``(rank, logprob, ids)`` found, as ``(ids, logprob)``: best first, among equal
    ranks the earlier found, no sequence twice."""
    results: list[tuple[list[int], float]] = []
    seen: set[tuple[int, ...]] = set()
    for _, logprob, ids in sorted(finished, key=lambda f: -f[0]):
        if tuple(ids) not in seen:
            seen.add(tuple(ids))
            results.append((ids, logprob))
        if len(results) == n:
            break
    return results


def _beams(
    model, width, n, prompt, settings: DecodingSettings, banned, rank, early_stop: bool, finished: list, labels=None
):
    """The beam search proper: append the sequences it finishes to ``finished``, as ``(rank, logprob, ids)``.

    Each step extends every live prefix by every token and keeps the ``width`` best extensions;
    those ending in ``</s>`` leave the beam finished, and at ``max_tokens`` the live ones are cut.
    """
    V, eos = len(model.fitted_vocab()), Vocabulary.eos_id
    state = _start(model, 1, prompt, labels)
    beams: list[list[int]] = [[]]
    scores = np.zeros(1)  # (b,) log P of each live prefix
    for t in range(settings.max_tokens):
        logits = _mask(model.next_logprobs(state), banned)  # (b, V)
        if t < settings.min_tokens:
            logits[:, eos] = NEG_INF
        total = (scores[:, None] + logits).ravel()  # (b * V,)
        order = np.argsort(-total, kind="stable")[:width]  # the best extensions, </s> among them
        order = order[np.isfinite(total[order])]
        rows, tokens = np.divmod(order, V)
        ends = tokens == eos
        finished += [(rank(total[o], t + 1), float(total[o]), beams[r]) for o, r in zip(order[ends], rows[ends])]
        order, keep_rows, keep_tokens = order[~ends], rows[~ends], tokens[~ends]
        if not order.size:
            break
        scores = total[order]
        beams = [beams[r] + [int(tok)] for r, tok in zip(keep_rows, keep_tokens)]
        # Log-probabilities only fall as a prefix grows: with alpha = 0, once n finished sequences
        # beat every live prefix, nothing live can overtake them.
        best_done = heapq.nlargest(n, (f[0] for f in finished))
        if early_stop and len(best_done) == n and best_done[-1] >= scores.max():
            break
        if t + 1 == settings.max_tokens:
            finished += [(rank(s, len(b)), float(s), b) for s, b in zip(scores, beams)]
            break
        state = model.advance(model.take_state(state, keep_rows), keep_tokens)
