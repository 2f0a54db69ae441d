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

    The moments of all parameters live in two flat arrays (``state`` holds views of them, one a parameter,
    as before), updated a group of parameters at a time (:data:`GROUP`): eq. (3)-(5) are the same operations
    on every number, so a network of many small arrays (a Transformer's 53, most of them biases and gains)
    pays for some twelve NumPy calls a group instead of twelve a parameter. The numbers are those of
    updating each parameter alone (:meth:`_update`), bit for bit.
    """

    GROUP = 1 << 16  #: numbers a group of parameters updated together: 256 KiB of float32, one core's L2 cache

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0):
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.state: dict[str, np.ndarray] = {}
        self.steps = 0
        self._flat: tuple | None = None  # (the layout's signature, the groups, the views put into state)

    def step(self, params: dict, grads: dict, lr: float, defer=run_now) -> None:
        """Update ``params`` in place. ``defer`` an :class:`~scratchgen.nn.overlap.Overlap`: the second half
        of the groups of parameters is updated on its thread (each number's update is its own: the same numbers)."""
        self.steps += 1
        c1 = 1.0 - self.beta1**self.steps  # eq. (4)
        c2 = 1.0 - self.beta2**self.steps
        groups = self._groups(grads)
        if groups is None:  # parameters of several dtypes: one at a time
            pieces = [(params[k], g, *self._moments(k, g), lr, c1, c2) for k, g in grads.items()]
            split(defer, self._update, pieces)
            return
        split(defer, self._group_update, [(params, grads, group, lr, c1, c2) for group in groups])

    def _moments(self, k: str, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m, v = self.state.get(f"adam.m.{k}"), self.state.get(f"adam.v.{k}")
        if m is None or v is None:  # the first step (not a fresh zero array every step)
            m = self.state[f"adam.m.{k}"] = np.zeros_like(g)
            v = self.state[f"adam.v.{k}"] = np.zeros_like(g)
        return m, v

    def _groups(self, grads: dict) -> list | None:
        """The groups of consecutive parameters, each (m, v, [(key, start, end, shape), ..]) with m and v its
        slices of the two flat arrays; made again (the moments so far copied in) when the parameters, their
        shapes or the state's arrays changed (a checkpoint restored puts arrays of its own into ``state``)."""
        dtypes = {g.dtype for g in grads.values()}
        if len(dtypes) != 1:
            return None
        signature = tuple((k, g.shape) for k, g in grads.items())
        if self._flat is not None and self._flat[0] == signature and self._state_is_flat(self._flat[2]):
            return self._flat[1]
        dtype = dtypes.pop()
        total = sum(g.size for g in grads.values())
        M, V = np.zeros(total, dtype=dtype), np.zeros(total, dtype=dtype)
        views, groups, members, start, first = {}, [], [], 0, 0
        last = next(reversed(grads))
        for k, g in grads.items():
            for flat, role in ((M, "m"), (V, "v")):
                view = flat[start : start + g.size].reshape(g.shape)
                old = self.state.get(f"adam.{role}.{k}")
                if old is not None:
                    view[...] = old  # the moments so far
                views[f"adam.{role}.{k}"] = self.state[f"adam.{role}.{k}"] = view
            members.append((k, start - first, start - first + g.size, g.shape))
            start += g.size
            if start - first >= self.GROUP or k == last:
                groups.append((M[first:start], V[first:start], members))
                members, first = [], start
        self._flat = (signature, groups, views)
        return groups

    def _state_is_flat(self, views: dict) -> bool:
        return all(self.state.get(key) is view for key, view in views.items())

    def _group_update(self, params: dict, grads: dict, group: tuple, lr: float, c1: float, c2: float) -> None:
        """eq. (3)-(5) for a group of parameters: the moments' updates and the step as one flat array, then
        each parameter's decay and step (the operations of :meth:`_update`, in its order for each number)."""
        m, v, members = group
        if len(members) == 1:
            g = grads[members[0][0]].reshape(-1)  # a view unless the gradient is not contiguous
        else:
            g = np.concatenate([grads[k].reshape(-1) for k, *_ in members])  # (n,) the group's gradients
        work = self._moments_and_step(g, m, v, lr, c1, c2)  # (n,)
        for k, a, b, shape in members:
            theta = params[k]
            if self.weight_decay and len(shape) >= 2:
                theta *= 1.0 - lr * self.weight_decay  # eq. (5), the decoupled decay
            theta -= work[a:b].reshape(shape)

    def _update(self, theta: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float, c1: float, c2: float):
        """eq. (3)-(5) for one parameter, in place."""
        work = self._moments_and_step(g, m, v, lr, c1, c2)
        if self.weight_decay and theta.ndim >= 2:
            theta *= 1.0 - lr * self.weight_decay  # eq. (5), the decoupled decay
        theta -= work

    def _moments_and_step(self, g: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float, c1: float, c2: float):
        """eq. (3) on the moments m and v in place, and the step lr * m^ / (sqrt(v^) + eps) of eq. (5), with m^ and
        v^ of eq. (4): the same operations as written out there, into two work arrays instead of six."""
        b1, b2 = self.beta1, self.beta2
        work = np.multiply(g, 1 - b1)
        m *= b1
        m += work  # eq. (3)
        np.multiply(g, g, out=work)
        work *= 1 - b2
        v *= b2
        v += work
        den = np.divide(v, c2)
        np.sqrt(den, out=den)
        den += self.eps
        np.multiply(m, lr / c1, out=work)
        work /= den
        return work


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
