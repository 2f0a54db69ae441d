r"""Optimisers, gradient clipping, learning-rate schedules and initialisation, written out by hand.

Letters: theta a parameter array, g its gradient, lr the learning rate eta_s at step s (1-based).

SGD with momentum (heavy ball)::

    v <- mu v + g,          theta <- theta - eta v                                       (1)

Adagrad (min-char-rnn's choice): per-entry rates that shrink where gradients have been large::

    G <- G + g^2,           theta <- theta - eta g / (sqrt(G) + eps)                       (2)

Adam, and AdamW when ``weight_decay`` > 0 (decay decoupled from the gradient, Loshchilov & Hutter)::

    m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2                                    (3)
    m^ = m / (1 - b1^s),      v^ = v / (1 - b2^s)                      bias correction     (4)
    theta <- theta - eta (m^ / (sqrt(v^) + eps) + lambda theta)                            (5)

Clipping by global norm (all parameters together, so the update keeps its direction)::

    n = sqrt(sum_k ||g_k||^2);  if n > c: g_k <- g_k c / n                                 (6)

Schedules of eta_s for s = 0 .. S-1 steps with base rate eta and W warm-up steps::

    warm-up:  eta_s = eta (s + 1) / W  for s < W, then the schedule below                  (7)
    constant: eta_s = eta;  cosine: eta_s = eta_min + (eta - eta_min)(1 + cos(pi u)) / 2,  u = progress in [0, 1]
    step:     eta_s = eta gamma^floor(s / k)                                               (8)

Every optimiser keeps its state as a dict of arrays keyed by the optimiser, the role of the array
and the parameter (``adam.m.W_hh.0``, ``adam.v.W_hh.0``, ``sgd.momentum.W_hh.0``, ``adagrad.G.W_hh.0``),
so a checkpoint stores it with the parameters, a resumed run continues bit for bit, and one
optimiser's state can never be mistaken for another's (SGD's momentum is not Adam's second moment).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ScratchgenError
from .overlap import run_now, split

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "make_optimizer",
    "clip_by_global_norm",
    "learning_rate",
    "init_params",
    "orthogonal",
    "OPTIMIZERS",
    "SCHEDULES",
]


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum: eq. (1)."""

    def __init__(self, momentum: float = 0.9):
        self.momentum = momentum
        self.state: dict[str, np.ndarray] = {}
        self.steps = 0

    def step(self, params: dict, grads: dict, lr: float, defer=run_now) -> None:
        """Update ``params`` in place (``defer`` is accepted as by :meth:`Adam.step`; unused)."""
        self.steps += 1
        for k, g in grads.items():
            v = self.state.setdefault(f"sgd.momentum.{k}", np.zeros_like(g))
            v *= self.momentum
            v += g  # eq. (1)
            params[k] -= lr * v


class Adagrad:
    """Adagrad: eq. (2)."""

    def __init__(self, eps: float = 1e-8):
        self.eps = eps
        self.state: dict[str, np.ndarray] = {}
        self.steps = 0

    def step(self, params: dict, grads: dict, lr: float, defer=run_now) -> None:
        """Update ``params`` in place (``defer`` is accepted as by :meth:`Adam.step`; unused)."""
        self.steps += 1
        for k, g in grads.items():
            G = self.state.setdefault(f"adagrad.G.{k}", np.zeros_like(g))
            G += g * g  # eq. (2)
            step = np.sqrt(G)  # sqrt(G) + eps, then eta g / that
            step += self.eps
            np.divide(g, step, out=step)
            step *= lr
            params[k] -= step


class Adam:
    """Adam (``weight_decay=0``) or AdamW: eq. (3)-(5).

    Only matrices and tables (arrays of two or more axes) are decayed: decay pulls weights towards 0 to
    keep them small; a bias or a LayerNorm gain or shift (one axis) has no such role, and pulling a
    gain towards 0 would shrink its whole layer's output (GPT-2 and nanoGPT decay the same set).
    """

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0):
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.state: dict[str, np.ndarray] = {}
        self.steps = 0

    def step(self, params: dict, grads: dict, lr: float, defer=run_now) -> None:
        """Update ``params`` in place. ``defer`` an :class:`~scratchgen.nn.overlap.Overlap`: the second half
        of the parameters is updated on its thread (each parameter's update is its own: the same numbers)."""
        self.steps += 1
        b1, b2 = self.beta1, self.beta2
        c1 = 1.0 - b1**self.steps  # eq. (4)
        c2 = 1.0 - b2**self.steps
        pieces = []
        for k, g in grads.items():
            m, v = self.state.get(f"adam.m.{k}"), self.state.get(f"adam.v.{k}")
            if m is None or v is None:  # the first step (not a fresh zero array every step)
                m = self.state[f"adam.m.{k}"] = np.zeros_like(g)
                v = self.state[f"adam.v.{k}"] = np.zeros_like(g)
            pieces.append((params[k], g, m, v, lr, c1, c2))
        split(defer, self._update, pieces)

    def _update(self, theta: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float, c1: float, c2: float):
        """eq. (3)-(5) for one parameter, in place: the same operations as written out there, into two work
        arrays instead of six."""
        b1, b2 = self.beta1, self.beta2
        work = np.multiply(g, 1 - b1)
        m *= b1
        m += work  # eq. (3)
        np.multiply(g, g, out=work)
        work *= 1 - b2
        v *= b2
        v += work
        if self.weight_decay and theta.ndim >= 2:
            theta *= 1.0 - lr * self.weight_decay  # eq. (5), the decoupled decay
        # eq. (5): theta -= lr * m^ / (sqrt(v^) + eps), with m^ and v^ of eq. (4)
        den = np.divide(v, c2)
        np.sqrt(den, out=den)
        den += self.eps
        np.multiply(m, lr / c1, out=work)
        work /= den
        theta -= work


OPTIMIZERS = ("adam", "adamw", "sgd", "adagrad")
SCHEDULES = ("constant", "cosine", "step")


def make_optimizer(name: str, weight_decay: float = 0.01):
    """An optimiser by name: "adam", "adamw" (Adam with decoupled weight decay), "sgd", "adagrad"."""
    if name == "adam":
        return Adam()
    if name == "adamw":
        return Adam(weight_decay=weight_decay)
    if name == "sgd":
        return SGD()
    if name == "adagrad":
        return Adagrad()
    raise ScratchgenError(f"optimizer (--optimizer) must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def clip_by_global_norm(grads: dict, max_norm: float | None) -> float:
    """Scale all gradients in place so their joint norm is at most ``max_norm``: eq. (6).

    Returns the norm before clipping (a progress line shows it; inf or nan means a bad step).

    >>> g = {"a": np.array([3.0]), "b": np.array([4.0])}
    >>> clip_by_global_norm(g, 1.0), g["a"], g["b"]           # norm 5 scaled to 1
    (5.0, array([0.6]), array([0.8]))
    """
    norm = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads.values()))
    if max_norm is not None and norm > max_norm and math.isfinite(norm):
        scale = max_norm / norm
        for g in grads.values():
            g *= scale  # eq. (6)
    return norm


def learning_rate(
    step: int,
    total: int,
    base: float,
    schedule: str = "constant",
    warmup: int = 0,
    min_fraction: float = 0.1,
    step_size: int | None = None,
    gamma: float = 0.5,
) -> float:
    """eta at (0-based) ``step`` of ``total``: eq. (7)-(8).

    >>> [learning_rate(s, 10, 1.0, "constant", warmup=2) for s in range(3)]
    [0.5, 1.0, 1.0]
    >>> learning_rate(0, 11, 1.0, "cosine"), learning_rate(10, 11, 1.0, "cosine", min_fraction=0.0)
    (1.0, 0.0)
    """
    if warmup and step < warmup:
        return base * (step + 1) / warmup  # eq. (7)
    if schedule == "constant":
        return base
    if schedule == "cosine":
        u = (step - warmup) / max(total - warmup - 1, 1)  # progress in [0, 1]
        lo = base * min_fraction
        return lo + (base - lo) * 0.5 * (1.0 + math.cos(math.pi * min(u, 1.0)))
    if schedule == "step":
        k = step_size or max(total // 3, 1)
        return base * gamma ** ((step - warmup) // k)  # eq. (8)
    raise ScratchgenError(f"lr_schedule (--schedule) must be one of {', '.join(SCHEDULES)}, got {schedule!r}")


def orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal (n, n) matrix: QR of a Gaussian matrix, signs fixed so it is uniform (Haar)."""
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def init_params(
    V: int, hidden: int, layers: int, embedding: int | None, rng: np.random.Generator, dtype=np.float64
) -> dict:
    """Initial parameters, each scale with its reason.

    - ``C`` (V, E) ~ N(0, 1): embedding rows of unit scale (as makemore and nn.Embedding).
    - ``W_xh.l`` ~ U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's nn.RNN rule, so the same learning rates work).
      With one-hot inputs (no table) ``W_xh.0`` is (V, H) and x_t W_xh is one row: that row is the
      whole input signal, so it gets the size the product has with an N(0, 1) embedding of width
      E = H under the rule above (variance E / (3H) = 1/3): U(-1, 1). With U(-1/sqrt(H), 1/sqrt(H))
      the input would start some sqrt(H) times weaker than the recurrence and be learned slowly.
    - ``W_hh.l`` orthogonal: all its singular values are 1, so h_{t-1} W_hh neither shrinks nor grows
      a state, and at the start gradients through time neither vanish nor explode from W_hh alone.
    - ``b_h.l`` = 0, ``b_y`` = 0.
    - ``W_hy`` ~ N(0, 0.1^2 / H): small logits, so the first predictions are near uniform and the
      initial loss is near ln V instead of confidently wrong.
    """
    p: dict[str, np.ndarray] = {}
    bound = 1.0 / math.sqrt(hidden)
    if embedding:
        p["C"] = rng.normal(size=(V, embedding))
    for layer in range(layers):
        if layer == 0 and not embedding:  # one-hot inputs: rows are the input
            p["W_xh.0"] = rng.uniform(-1.0, 1.0, size=(V, hidden))
        else:
            p[f"W_xh.{layer}"] = rng.uniform(
                -bound, bound, size=((embedding or hidden) if layer == 0 else hidden, hidden)
            )
        p[f"W_hh.{layer}"] = orthogonal(hidden, rng)
        p[f"b_h.{layer}"] = np.zeros(hidden)
    p["W_hy"] = rng.normal(scale=0.1 / math.sqrt(hidden), size=(hidden, V))
    p["b_y"] = np.zeros(V)
    return {k: v.astype(dtype) for k, v in p.items()}
