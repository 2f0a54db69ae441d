"""Sequential Monte Carlo for a grammar-constrained model as a textbook writes it: one run, plain loops.

Read this before :mod:`scratchgen.smc`, whose equations (1)-(6) it follows in order, one particle at a
time, each particle with a state of its own (batch size 1). It draws its random numbers in the same order
as the fast path (a proposal uniform per live particle in particle order, one uniform a resampling, one
for the final choice), so with the same generator the two choose the same particle and agree on Z_hat
up to rounding (tests/test_smc.py). Controls: none but ``max_tokens`` (the fast path's defaults: no
prompt, label, banned or stop token; ``<unk>`` and ``<s>`` are never drawn since the grammar mask
excludes them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .text import Vocabulary

__all__ = ["smc_reference"]


@dataclass
class Particle:
    state: Any  # the model's state of this one sequence (batch size 1)
    grammar_state: Any  # the constraint's state of it
    tokens: list[int] = field(default_factory=list)
    logw: float = 0.0  # log W, eq. (3)
    logp: float = 0.0  # log P_model of the tokens so far
    done: bool = False  # ended by </s>, or dead (weight 0)


def _log_mean(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))


def smc_reference(model, constraint, particles: int, max_tokens: int, rng: np.random.Generator):
    """One run of N particles: (the chosen token ids, or None when every weight is 0; its log P; log Z_hat)."""
    N, eos = particles, Vocabulary.eos_id
    swarm = [Particle(model.initial_state(1), constraint.initial_state(1)) for _ in range(N)]
    for _ in range(max_tokens):
        if all(p.done for p in swarm):
            break
        for p in swarm:
            if p.done:
                continue
            logprobs = model.next_logprobs(p.state)[0]  # (V,) log P(a | x_<t)
            allowed = constraint.allowed(p.grammar_state)[0]  # (V,) eq. (1) of scratchgen.constraint
            kept = [lp if ok else -math.inf for lp, ok in zip(logprobs, allowed)]
            top = max(kept)
            if top == -math.inf:  # nothing allowed has probability > 0: the particle is dead
                p.logw, p.done = -math.inf, True
                continue
            weights = [math.exp(v - top) for v in kept]
            p.logw += top + math.log(sum(weights))  # eq. (3): times w_t, eq. (2)
            target = rng.random() * sum(weights)  # draw from q, eq. (2), by inversion
            cum, token = 0.0, len(weights) - 1
            for a, w in enumerate(weights):
                cum += w
                if cum > target:
                    token = a
                    break
            p.logp += logprobs[token]
            if token == eos:
                p.done = True
            else:
                p.tokens.append(token)
                p.state = model.advance(p.state, np.array([token]))
                p.grammar_state = constraint.advance(p.grammar_state, [token])
        swarm = _maybe_resample(swarm, rng)
    for p in swarm:
        if not p.done:  # cut at max_tokens: not in the target
            p.logw = -math.inf
    log_z = _log_mean([p.logw for p in swarm])  # eq. (6)
    if log_z == -math.inf:
        return None, -math.inf, log_z
    top = max(p.logw for p in swarm)
    weights = [math.exp(p.logw - top) for p in swarm]
    target = rng.random() * sum(weights)  # one particle with probability W_i / sum W
    cum, chosen = 0.0, swarm[-1]
    for p, w in zip(swarm, weights):
        cum += w
        if cum > target:
            chosen = p
            break
    return chosen.tokens, chosen.logp, log_z


def _maybe_resample(swarm: list[Particle], rng: np.random.Generator) -> list[Particle]:
    """Eqs. (4)-(5): systematic resampling when the effective sample size is below N/2."""
    N = len(swarm)
    top = max(p.logw for p in swarm)
    if top == -math.inf:
        return swarm
    weights = [math.exp(p.logw - top) for p in swarm]
    total = sum(weights)
    if total**2 / sum(w * w for w in weights) >= N / 2:  # eq. (4)
        return swarm
    mean = _log_mean([p.logw for p in swarm])  # eq. (5)
    u = rng.random()
    out, cum, i = [], weights[0] / total, 0
    for k in range(N):
        point = (u + k) / N
        while cum <= point and i < N - 1:  # the first particle whose cumulative weight passes the point
            i += 1
            cum += weights[i] / total
        old = swarm[i]
        out.append(Particle(old.state, old.grammar_state, list(old.tokens), mean, old.logp, old.done))
    return out
