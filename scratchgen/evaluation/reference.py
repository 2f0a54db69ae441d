"""How likely the true source finds a text: exact log-probabilities under a reference model.

When a corpus was sampled from a known grammar, the grammar is the truth, and its exact
probability of each generated sample (the inside probability, summed over all derivations) says
how plausible the model's text is *to the source*. Written against one duck-typed method,
``reference.logprob(tokens) -> float`` (natural log, ``-inf`` when the reference cannot produce
the sequence), so any object with it serves: the grammar model, or any fitted LanguageModel.

For samples x^(1..S) with L_s = log P_ref(x^(s)), let F be the samples with L_s > -inf::

    impossible          = (S - |F|) / S                                                   (1)
    logprob_per_sample  = (1/|F|) sum_{s in F} L_s                                        (2)
    logprob_per_token   = sum_{s in F} L_s / sum_{s in F} (|x^(s)| + 1)                   (3)

(3) counts one ``</s>`` a sequence, as :mod:`scratchgen.metrics` does, so -(3) is the cross-entropy
of the generated text under the reference in nats per token, comparable with the reference's own
cross-entropy on real held-out text (the floor). The means leave out the impossible samples, which
(1) reports apart: one -inf would otherwise hide every other figure.

**The textbook version of the multi-class discriminator.** :func:`softmax_loss_by_loops` computes the
loss (7) and gradient (8)-(9) of :mod:`.discriminator` one example and one class at a time, in plain
Python loops, as a textbook writes multinomial logistic regression; the vectorised
``softmax_forward``/``softmax_backward`` must agree with it (tests/evaluation/test_discriminator_classes.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence

from ..errors import ScratchgenError

__all__ = ["ReferenceScore", "reference_logprob", "softmax_loss_by_loops"]


@dataclasses.dataclass(frozen=True)
class ReferenceScore:
    """Samples scored by a reference model: eq. (1)-(3); nan where nothing is possible."""

    samples: int
    impossible: float
    logprob_per_sample: float
    logprob_per_token: float

    @property
    def bits_per_token(self) -> float:
        """-(3) in bits: the cross-entropy of the possible samples under the reference."""
        return -self.logprob_per_token / math.log(2)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"bits_per_token": self.bits_per_token}


def reference_logprob(samples: Sequence[Sequence[Hashable]], reference) -> ReferenceScore:
    """Score samples under ``reference`` (anything with ``logprob(tokens) -> float``).

    >>> class Coin:   # a toy source: "h" or "t" with probability 1/2 each, nothing else
    ...     def logprob(self, tokens):
    ...         return math.log(0.5) if list(tokens) in (["h"], ["t"]) else -math.inf
    >>> r = reference_logprob([["h"], ["t"], ["h", "h"]], Coin())
    >>> r.impossible, round(r.logprob_per_sample, 4), round(r.logprob_per_token, 4)   # ln 1/2; ln(1/4) / 4
    (0.3333333333333333, -0.6931, -0.3466)
    """
    if not callable(getattr(reference, "logprob", None)):
        raise ScratchgenError(f"a reference must have a logprob(tokens) method, got {type(reference).__name__}")
    samples = [list(s) for s in samples]
    if not samples:
        raise ScratchgenError("cannot score an empty list of samples under the reference")
    total = 0.0
    tokens = possible = 0
    for s in samples:
        lp = float(reference.logprob(s))
        if math.isnan(lp) or lp > 1e-9:
            raise ScratchgenError(f"the reference gave log-probability {lp!r} to {s!r}; expected a value <= 0")
        if lp == -math.inf:
            continue
        total += lp
        tokens += len(s) + 1  # eq. (3): one </s> a sequence
        possible += 1
    return ReferenceScore(
        samples=len(samples),
        impossible=(len(samples) - possible) / len(samples),  # eq. (1)
        logprob_per_sample=total / possible if possible else math.nan,  # eq. (2)
        logprob_per_token=total / tokens if tokens else math.nan,  # eq. (3)
    )


def softmax_loss_by_loops(W, b, X, y, l2: float) -> tuple[float, list[list[float]], list[float]]:
    """Loss (7) and gradient (8)-(9) of the multi-class discriminator, one example and one class at a time.

    Parameters
    ----------
    W : (D, C) weights, b : (C,) biases, X : (M, D) features, y : (M,) classes 0..C-1, l2 : lam

    Returns
    -------
    (loss, dL/dW as D lists of C floats, dL/db as C floats)

    >>> loss, dW, db = softmax_loss_by_loops([[0.0, 0.0]], [0.0, 0.0], [[1.0]], [1], 0.0)
    >>> round(loss, 6), dW, db          # p = (1/2, 1/2): ln 2; dZ = p - onehot(1) = (1/2, -1/2)
    (0.693147, [[0.5, -0.5]], [0.5, -0.5])
    """
    D, C, M = len(W), len(b), len(X)
    loss = 0.0
    dW = [[l2 * W[d][c] for c in range(C)] for d in range(D)]  # the penalty's gradient, eq. (9)
    db = [0.0] * C
    for i in range(M):
        z = [b[c] + sum(X[i][d] * W[d][c] for d in range(D)) for c in range(C)]  # eq. (6)
        top = max(z)
        norm = top + math.log(sum(math.exp(zc - top) for zc in z))  # log sum_c exp z_c
        loss += (norm - z[y[i]]) / M  # eq. (7)
        for c in range(C):
            dz = (math.exp(z[c] - norm) - (1.0 if c == y[i] else 0.0)) / M  # eq. (8)
            db[c] += dz
            for d in range(D):
                dW[d][c] += X[i][d] * dz  # eq. (9)
    loss += 0.5 * l2 * sum(W[d][c] ** 2 for d in range(D) for c in range(C))
    return loss, dW, db
