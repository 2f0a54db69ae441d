"""Exact conditional sampling from a model held to a grammar, by sequential Monte Carlo.

Masked decoding (eq. (2) of :mod:`scratchgen.constraint`) renormalises each step over the tokens the
grammar allows, so it over-weights a prefix whose continuations the grammar mostly forbids: the
model would rarely have finished it inside the language, yet the mask finishes it every time. The
distribution we want is the model's own, restricted to the language and renormalised once::

    pi(x) = P(x) 1[x in L(G)] / Z,        Z = P(L(G)) = sum_{x in L(G)} P(x)                        (1)

Take the masked distribution as a proposal: with m_t(a) = 1 when eq. (1) of
:mod:`~scratchgen.constraint` allows a after x_<t, and the mass the mask keeps

    w_t(x_<t) = sum_a P(a | x_<t) m_t(a),       q(a | x_<t) = P(a | x_<t) m_t(a) / w_t(x_<t)          (2)

a complete sentence x = x_1..x_T </s> of L(G) (every m_t(x_t) = 1 along it) has

    P(x) / q(x) = prod_{t=1..T+1} w_t(x_<t)  =: W(x),        E_q[W(x)] = Z                          (3)

so the product of the masses is an importance weight of q for pi. Sequential Monte Carlo (Lew et al.
2023, "Sequential Monte Carlo steering of large language models using probabilistic programs"; for
grammar constraints Loula et al. 2025, "Syntactic and semantic control of large language models via
sequential Monte Carlo") runs N particles forward in step and multiplies each particle's weight by its
w_t as it goes; a particle that has ended keeps its weight (its later factors are 1). When the weights
grow uneven, as measured by the effective sample size

    ESS = (sum_i W_i)^2 / sum_i W_i^2                                                             (4)

falling below N/2, the particles are resampled *systematically* (one uniform u ~ U[0, 1), then particle
i is copied once for each k = 0..N-1 with (u + k)/N in its slice of the cumulative normalised weights:
less variance than multinomial resampling, same expectation), and every weight is set to the mean
weight before resampling,

    W_i <- (1/N) sum_j W_j                                                                         (5)

so the mean of the final weights is the standard SMC estimate of the normalising constant, the product
over resampling epochs of the mean weight, unbiased for Z (Del Moral 2004)::

    Z_hat = prod_{epochs e} (1/N) sum_i W_i^(e)                                                     (6)

Each output is one particle of one run, drawn with probability W_i / sum_j W_j (importance
resampling): as N grows its distribution tends to pi. ``n`` outputs are ``n`` independent runs of N
particles (batched together); the reported estimate of Z is the mean of the runs' Z_hat, with the
standard error of that mean.

**What exactly is estimated.** A particle that has not ended after ``max_tokens`` steps gets weight 0,
so the target is eq. (1) restricted to sentences that end within max_tokens steps (at most
``max_tokens - 1`` tokens after the prompt and ``</s>``, or max_tokens tokens ending with a stop token),
and Z_hat estimates the model's probability of that set. The other allowed controls restrict the set
the same way: a ``prompt`` conditions on it (Z = sum over continuations y of P(y | prompt) with prompt
+ y in L(G)), a ``label`` conditions on c, ``banned`` tokens (and ``<unk>`` unless allowed) and
``min_tokens`` exclude the sentences that break them, and a stop token ends a sentence (allowed only
where it completes one). Temperature (other than 1), top-k, top-p and the repetition penalty would
change the target into something that is not the model's distribution restricted to a set, so they
are refused.

Letters: N particles a run, R runs (one a sample), B = R N rows, V vocabulary, t step.
:mod:`scratchgen.smc_reference` is the same algorithm for one run of N particles in plain loops.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .constraint import MAX_DRAWS_PER_SAMPLE, ConstrainedModel, constrain
from .controls import DecodingSettings, check_count, make_rng, prepare_ids
from .errors import DecodingError
from .labels import label_ids
from .sampling import NEG_INF, _draw, _mask, _start
from .text import Vocabulary

__all__ = ["ExactSamples", "sample_exact", "check_exact_settings", "systematic_resample"]


@dataclasses.dataclass(frozen=True)
class ExactSamples:
    """What :func:`sample_exact` returns.

    Attributes
    ----------
    sequences : list of token lists (prompt included), one a run that produced a sample
    logprobs : float array (n,)
        The model's natural-log probability of each continuation (``</s>`` included when it ended it).
    log_estimates : float array (R,)
        log Z_hat of every run (eq. (6)), -inf for a run whose particles all had weight 0 (such a run
        gives no sample and was redrawn, but it counts in the estimate: leaving it out would bias it).
    particles : int
        N.
    """

    sequences: list[list[str]]
    logprobs: np.ndarray
    log_estimates: np.ndarray
    particles: int

    @property
    def estimate(self) -> float:
        """The estimate of P_model(L(G)): the mean of the runs' Z_hat (eq. (6))."""
        return float(np.exp(self.log_estimates).mean())

    @property
    def standard_error(self) -> float:
        """The standard error of :attr:`estimate` over the runs (nan with one run)."""
        z = np.exp(self.log_estimates)
        return float(z.std(ddof=1) / math.sqrt(len(z))) if len(z) > 1 else math.nan


def check_exact_settings(settings: DecodingSettings) -> None:
    """Refuse the controls that would make the target something other than eq. (1): see the module docstring."""
    wrong = []
    if settings.temperature != 1:
        wrong.append(f"temperature {settings.temperature!r}")
    if settings.top_k is not None:
        wrong.append(f"top_k {settings.top_k!r}")
    if settings.top_p is not None:
        wrong.append(f"top_p {settings.top_p!r}")
    if settings.repetition_penalty != 1:
        wrong.append(f"repetition_penalty {settings.repetition_penalty!r}")
    if wrong:
        raise DecodingError(
            f"exact sampling draws from the model's own distribution restricted to the grammar, so it takes "
            f"temperature 1 and no top-k, top-p or repetition penalty (got {', '.join(wrong)})"
        )


def systematic_resample(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Ancestors of systematic resampling, for R runs at once: (R, N) weights, (R,) uniforms -> (R, N) ids.

    Particle i of run r is copied once for each k with (u_r + k)/N in its slice of the cumulative
    normalised weights (the module docstring). The runs are laid end to end (run r's cumulative weights
    shifted by r), so one ``searchsorted`` serves them all.
    """
    R, N = weights.shape
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)  # (R, N) ends at 1
    cum[:, -1] = 1.0  # no rounding gap at the end
    points = (u[:, None] + np.arange(N)) / N  # (R, N) in [0, 1)
    offset = np.arange(R)[:, None]  # (R, 1)
    ancestors = np.searchsorted((cum + offset).ravel(), (points + offset).ravel(), side="right")  # (R N,)
    return np.minimum(ancestors.reshape(R, N) - offset * N, N - 1)


def _log_mean(logw: np.ndarray) -> np.ndarray:
    """log (1/N) sum_i exp(logw_i) of each row of (R, N); -inf for a row of -inf."""
    top = logw.max(axis=1, keepdims=True)  # (R, 1)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return (np.log(np.exp(logw - safe).sum(axis=1)) + safe[:, 0]) - math.log(logw.shape[1])


def _runs(stepper: ConstrainedModel, R: int, N: int, prompt, settings, banned, enders, rng, labels):
    """R runs of N particles: (the chosen id list of each run or None, its log P, its log Z_hat)."""
    B, eos = R * N, Vocabulary.eos_id
    state = _start(stepper, B, prompt, None if labels is None else np.repeat(labels, N))
    logw = np.zeros(B)  # (B,) log W_i
    logp = np.zeros(B)  # (B,) log P_model of each particle's continuation
    done = np.zeros(B, dtype=bool)  # ended (by </s> or a stop), or dead (weight 0)
    tokens: list[list[int]] = [[] for _ in range(B)]
    active = np.arange(B)  # the rows that still generate, ascending: the rows of `state`
    for t in range(settings.max_tokens):
        if not active.size:
            break
        raw = stepper.next_logprobs(state)  # (b, V) model log-probs, -inf outside the grammar
        logits = _mask(raw, banned)
        if t < settings.min_tokens:
            logits[:, enders] = NEG_INF
        top = logits.max(axis=1)  # (b,)
        alive = np.isfinite(top)  # a particle with nothing allowed of probability > 0 is dead: weight 0
        shifted = np.exp(logits - np.where(alive, top, 0.0)[:, None])  # (b, V)
        with np.errstate(divide="ignore"):
            mass = np.log(shifted.sum(axis=1)) + top  # (b,) log w_t, eq. (2)
        logw[active] += np.where(alive, mass, NEG_INF)  # eq. (3), one factor
        ids = np.full(len(active), eos, dtype=np.int64)
        ids[alive] = _draw(logits[alive], rng)  # from q, eq. (2)
        rows = np.arange(len(active))
        logp[active[alive]] += raw[rows[alive], ids[alive]]
        for r, i in zip(active[alive], ids[alive]):
            if i != eos:
                tokens[r].append(int(i))
        go = alive & ~np.isin(ids, enders)
        done[active[~go]] = True
        state = stepper.advance(stepper.take_state(state, rows[go]), ids[go])
        active = active[go]
        state, active = _resample(stepper, state, active, logw, logp, done, tokens, R, N, rng)
    logw[active] = NEG_INF  # cut at max_tokens: not a sentence of the target
    logw_runs = logw.reshape(R, N)
    log_z = _log_mean(logw_runs)  # (R,) eq. (6)
    chosen: list[tuple[list[int], float] | None] = []
    for r in range(R):
        if not np.isfinite(log_z[r]):
            chosen.append(None)
            continue
        w = np.exp(logw_runs[r] - logw_runs[r].max())  # (N,)
        cum = np.cumsum(w)
        i = r * N + min(int((cum <= rng.random() * cum[-1]).sum()), N - 1)  # one particle, prob. W_i / sum W
        chosen.append((tokens[i], float(logp[i])))
    return chosen, log_z


def _resample(stepper, state, active, logw, logp, done, tokens, R, N, rng):
    """Eqs. (4)-(5): resample the runs whose effective sample size is below N/2 (systematic resampling)."""
    logw_runs = logw.reshape(R, N)  # a view: writes reach logw
    top = logw_runs.max(axis=1, keepdims=True)  # (R, 1)
    live = np.isfinite(top[:, 0])
    w = np.exp(logw_runs - np.where(live[:, None], top, 0.0))  # (R, N)
    ess = w.sum(axis=1) ** 2 / np.maximum((w**2).sum(axis=1), 1e-300)  # (R,) eq. (4)
    runs = np.flatnonzero(live & (ess < N / 2))
    if not runs.size:
        return state, active
    u = rng.random(runs.size)  # one uniform a resampled run
    ancestors = systematic_resample(w[runs], u) + runs[:, None] * N  # (k, N) global row ids
    targets = (runs[:, None] * N + np.arange(N)).ravel()  # (k N,) the rows they overwrite
    sources = ancestors.ravel()
    logw_runs[runs] = _log_mean(logw_runs[runs])[:, None]  # eq. (5)
    # Rows of resampled runs now copy their ancestors: weights above, histories and states here.
    position = np.full(R * N, -1, dtype=np.int64)
    position[active] = np.arange(len(active))  # the row of `state` of each active particle
    old_tokens = {int(s): tokens[s] for s in np.unique(sources)}
    old_logp, old_done = logp.copy(), done.copy()
    for t_row, s_row in zip(targets, sources):
        tokens[t_row] = list(old_tokens[int(s_row)])
    logp[targets] = old_logp[sources]
    done[targets] = old_done[sources]
    # The new active rows, ascending, and the state row each takes.
    source_of = np.arange(R * N)
    source_of[targets] = sources
    new_active = np.flatnonzero(~done)
    return stepper.take_state(state, position[source_of[new_active]]), new_active


def sample_exact(
    model,
    n: int = 1,
    *,
    grammar: Any,
    particles: int = 64,
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
    label: str | None = None,
    batch_size: int | None = None,
) -> ExactSamples:
    """``n`` samples of P_model(x | x in L(G)) (eq. (1)), one sequential Monte Carlo run of N particles each.

    Parameters are :func:`scratchgen.decoding.generate`'s (see the module docstring for the controls
    allowed: temperature must be 1; top_k, top_p and repetition_penalty are refused), and

    particles : int
        N, the particles of each run.
    batch_size : int, optional
        Runs stepped together (B = batch_size N rows); default: as many as keep one (B, V) array near 32 MB.
        The runs of a batch share the random stream: the same seed and batch size give the same samples.

    A run whose particles all end with weight 0 (none finished a sentence within ``max_tokens``) gives no
    sample and is redrawn, up to 100 runs a sample; its Z_hat of 0 still counts in the estimate.

    >>> from scratchgen import UnigramModel, Tokenizer
    >>> m = UnigramModel(tokenizer=Tokenizer(level="word")).fit(["a b", "a"])
    >>> r = sample_exact(m, 3, grammar="S -> 'a' [0.5] | 'a' 'b' [0.5]", seed=0)
    >>> sorted(set(map(tuple, r.sequences))) <= [("a",), ("a", "b")]
    True
    """
    check_count("n", n)
    check_count("particles", particles)
    settings = DecodingSettings(max_tokens, min_tokens, temperature, top_k, top_p, repetition_penalty)
    check_exact_settings(settings)
    rng = make_rng(seed)
    vocab, banned_ids, stop_ids, prompt_ids = prepare_ids(model, prompt, prompt_oov, banned, stop, allow_unk)
    label_id = label_ids(model, label, 1)
    stepper = constrain(model, grammar, prompt_ids, stop_ids)
    enders = np.unique(np.concatenate([[Vocabulary.eos_id], stop_ids])).astype(np.int64)
    if batch_size is None:
        batch_size = int(np.clip(2**22 // (len(vocab) * particles), 1, 4096))
    check_count("batch_size", batch_size)
    from .decoding import _batch_labels  # the label of each run: the one asked for, or drawn from the prior

    kept: list[tuple[list[int], float]] = []
    log_z: list[np.ndarray] = []
    runs = 0
    while len(kept) < n:
        if runs >= MAX_DRAWS_PER_SAMPLE * n:
            raise DecodingError(
                f"{runs} sequential Monte Carlo runs gave only {len(kept)} samples: no particle ended a sentence "
                f"of the grammar within max_tokens={max_tokens} (raise max_tokens)"
            )
        R = min(batch_size, n - len(kept))
        labels = _batch_labels(model, label_id, R, rng)
        chosen, z = _runs(stepper, R, particles, prompt_ids, settings, banned_ids, enders, rng, labels)
        runs += R
        kept += [c for c in chosen if c is not None]
        log_z.append(z)
    prefix = vocab.decode(prompt_ids)
    return ExactSamples(
        sequences=[prefix + vocab.decode(ids) for ids, _ in kept],
        logprobs=np.array([lp for _, lp in kept]),
        log_estimates=np.concatenate(log_z),
        particles=int(particles),
    )
