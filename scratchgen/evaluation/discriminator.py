"""The adversarial test: can a classifier tell real text from generated text?

In the spirit of GAN evaluation, a discriminator is trained to separate real sequences (label 1)
from a generator's samples (label 0) and then tested on sequences it has not seen. Its held-out
accuracy measures how visible the generator's flaws are: 1.0 means every sample gives itself away,
0.5 means the generated text cannot be told apart from the real one (by this discriminator).

Features: hashed n-gram counts. A sequence is padded as ``<s> x_1 ... x_T </s>`` (so its start,
its end and thus its length are visible); each of its n-grams g of order 1..N is hashed to a
bucket h(g) in [0, D) with CRC-32 (stable across runs and machines, unlike Python's ``hash``)::

    phi_j(x) = log(1 + #{g in grams(x) : h(g) = j})                                       (1)

Model: logistic regression on the rows of X (M, D)::

    z = X w + b,       p = sigmoid(z) = P(real | x)                                        (2)

Loss: mean binary cross-entropy plus an L2 penalty on w (not on b)::

    L = (1/M) sum_i [log(1 + e^{z_i}) - y_i z_i] + (lam/2) ||w||^2                         (3)

(``log(1 + e^z) - y z`` is ``-[y log p + (1 - y) log(1 - p)]`` written without overflow.)
Its gradient, by the chain rule through (2)::

    dL/dz_i = (p_i - y_i) / M                                                             (4)
    dL/dw = X^T dL/dz + lam w,      dL/db = sum_i dL/dz_i                                 (5)

``forward`` computes (3) and keeps a cache, ``backward`` computes (4)-(5); :func:`gradient_error`
compares them with central differences (by :func:`scratchgen.nn.gradcheck`, the package's one checker).
The loss is convex (strictly, for lam > 0), so L-BFGS
(Nocedal and Wright, Algorithm 7.4, with a backtracking Armijo line search) finds its minimum
from w = 0 deterministically. A sequence is predicted real when p >= 1/2, i.e. z >= 0.

What it cannot see: it looks only at n-grams up to order N. A generator that reproduces those
statistics (an n-gram model of the same order) passes it even when most of its samples break the
grammar's long-range rules (agreement across a relative clause, say); that is why the exact
log-probability under the reference grammar is reported beside it (:mod:`.reference`). Its
accuracy is also a statistic of a few hundred held-out sequences: at 0.5, on 2 x 60 of them, its
standard error is sqrt(0.25 / 120) = 0.046.

**Several classes** (label fidelity, :mod:`.labels`: which label does a text look like?). The same
features, a weight column and a bias a class, and the softmax in place of the sigmoid (multinomial
logistic regression)::

    Z = X W + b,       P_ic = exp(Z_ic) / sum_c' exp(Z_ic') = P(class c | x_i)             (6)
    L = (1/M) sum_i [log sum_c exp(Z_ic) - Z_{i, y_i}] + (lam/2) ||W||^2                   (7)
    dL/dZ = (P - Y) / M        (Y the one-hot rows of the classes y_i)                     (8)
    dL/dW = X^T dL/dZ + lam W,      dL/db = sum_i dL/dZ_i                                  (9)

With C = 2 classes, W = [0, w] and b = [0, b], Z_i = (0, z_i) and eq. (7) is eq. (3): the binary
discriminator is the softmax one with the first class's column held at zero. (8) is the fused
softmax-cross-entropy gradient, ``dZ[i, y_i] -= 1`` after the softmax. ``softmax_forward`` and
``softmax_backward`` compute (7) and (8)-(9), :func:`softmax_gradient_error` checks them by the same
checker, :func:`fit_softmax` minimises (7) by the same L-BFGS; the plain-loop version of (6)-(9) is
:func:`scratchgen.evaluation.reference.softmax_loss_by_loops`.

Letters: M sequences (rows), D hashed feature buckets, N the largest n-gram order, C classes.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Hashable, Sequence
from typing import Callable

import numpy as np

from ..errors import ScratchgenError
from ..nn.gradcheck import gradcheck

__all__ = [
    "ngram_features",
    "forward",
    "backward",
    "gradient_error",
    "fit_logistic",
    "predict_proba",
    "discriminator_accuracy",
    "softmax_forward",
    "softmax_backward",
    "softmax_gradient_error",
    "fit_softmax",
    "predict_class_proba",
    "TextClassifier",
]

Params = dict  # {"w": (D,), "b": ()} float64


def _bucket(gram: tuple, dim: int) -> int:
    key = f"{len(gram)}\x1e" + "\x1f".join(str(t) for t in gram)
    return zlib.crc32(key.encode("utf-8")) % dim


def ngram_features(samples: Sequence[Sequence[Hashable]], max_order: int = 3, dim: int = 4096) -> np.ndarray:
    """Hashed n-gram features of eq. (1), float64 of shape (M, D).

    >>> X = ngram_features([["a", "a"]], max_order=1, dim=8)   # <s>, a, a, </s>: one bucket holds 2
    >>> sorted(np.round(X[X > 0], 4).tolist())   # log 2 = 0.6931 (for <s> and </s>), log 3 = 1.0986 (for a twice)
    [0.6931, 0.6931, 1.0986]
    """
    if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
        raise ScratchgenError(f"max_order must be an integer >= 1, got {max_order!r}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ScratchgenError(f"dim must be an integer >= 1, got {dim!r}")
    X = np.zeros((len(samples), dim))  # (M, D)
    for i, s in enumerate(samples):
        padded = ("<s>", *s, "</s>")
        for n in range(1, max_order + 1):
            for k in range(len(padded) - n + 1):
                X[i, _bucket(padded[k : k + n], dim)] += 1.0
    return np.log1p(X)  # eq. (1)


def forward(params: Params, X: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, dict]:
    """The loss of eq. (3) and the cache ``backward`` needs.

    Parameters
    ----------
    params : {"w": ndarray of shape (D,), "b": float ndarray of shape ()}
    X : ndarray of shape (M, D)
    y : ndarray of shape (M,), 1.0 for real and 0.0 for generated
    l2 : float, lam >= 0

    >>> p = {"w": np.zeros(2), "b": np.array(0.0)}
    >>> round(forward(p, np.ones((2, 2)), np.array([1.0, 0.0]), 0.0)[0], 6)   # log(1 + e^0) = ln 2
    0.693147
    """
    w, b = params["w"], params["b"]
    z = X @ w + b  # (M,) eq. (2)
    M = len(y)
    data = np.sum(np.logaddexp(0.0, z) - y * z) / M  # eq. (3), stable
    loss = float(data + 0.5 * l2 * np.dot(w, w))
    cache = {"X": X, "y": y, "z": z, "l2": l2}
    return loss, cache


def backward(params: Params, cache: dict) -> Params:
    """The gradient of eq. (3) with respect to ``params`` by eq. (4)-(5); same keys as ``params``."""
    X, y, z, l2 = cache["X"], cache["y"], cache["z"], cache["l2"]
    p = 0.5 * (1.0 + np.tanh(0.5 * z))  # (M,) sigmoid(z) without overflow
    dz = (p - y) / len(y)  # (M,) eq. (4)
    return {
        "w": X.T @ dz + l2 * params["w"],  # (D,) eq. (5)
        "b": np.array(dz.sum()),
    }


def _pack(params: Params) -> np.ndarray:
    return np.concatenate([params["w"], params["b"].reshape(1)])  # (D + 1,)


def _unpack(theta: np.ndarray) -> Params:
    return {"w": theta[:-1], "b": np.array(theta[-1])}


def gradient_error(
    params: Params, X: np.ndarray, y: np.ndarray, l2: float, backward_fn: Callable[[Params, dict], Params] = backward
) -> float:
    """Relative error between ``backward_fn``'s gradient of eq. (3) and central differences.

    Checked by the one gradient checker, :func:`scratchgen.nn.gradcheck`, on w and b packed into one
    vector (so the error is over all entries together: ``||g - numeric|| / (||g|| + ||numeric||)``).
    A right gradient gives about 1e-9 in float64; above 1e-6 it is wrong. ``params`` is not modified.

    >>> X, y = np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([1.0, 0.0])
    >>> gradient_error({"w": np.array([0.3, -0.2]), "b": np.array(0.1)}, X, y, 0.1) < 1e-6
    True
    """

    def loss_and_grads(packed: dict) -> tuple[float, dict]:
        p = _unpack(packed["theta"])
        loss, cache = forward(p, X, y, l2)
        return loss, {"theta": _pack(backward_fn(p, cache))}

    return gradcheck(loss_and_grads, {"theta": _pack(params)})["theta"]


def _lbfgs_direction(g: np.ndarray, s_hist: list[np.ndarray], y_hist: list[np.ndarray]) -> np.ndarray:
    """The two-loop recursion: d = -H g with H the L-BFGS inverse-Hessian estimate from the stored pairs
    (s, y) of steps and gradient changes, oldest first."""
    q = g.copy()
    alphas = []
    for s, yv in zip(reversed(s_hist), reversed(y_hist)):
        rho = 1.0 / np.dot(yv, s)
        a = rho * np.dot(s, q)
        q -= a * yv
        alphas.append((rho, a))
    if s_hist:
        q *= np.dot(s_hist[-1], y_hist[-1]) / np.dot(y_hist[-1], y_hist[-1])  # initial H0 = gamma I
    else:
        q /= max(np.linalg.norm(g), 1.0)  # first step: a gradient step of length <= 1
    for (s, yv), (rho, a) in zip(zip(s_hist, y_hist), reversed(alphas)):
        beta = rho * np.dot(yv, q)
        q += (a - beta) * s
    return -q


def _backtrack(f_and_g, theta: np.ndarray, f: float, d: np.ndarray, slope: float):
    """Backtracking line search with the Armijo condition f(theta + t d) <= f + c1 t slope, halving t from 1;
    (t, f and gradient at theta + t d). A t below 1e-12 is returned as it is: the caller stops there."""
    t = 1.0
    while True:
        f_new, g_new = f_and_g(theta + t * d)
        if f_new <= f + 1e-4 * t * slope or t < 1e-12:
            return t, f_new, g_new
        t *= 0.5


def fit_logistic(
    X: np.ndarray, y: np.ndarray, l2: float = 1e-2, max_iter: int = 200, memory: int = 10, tol: float = 1e-6
) -> Params:
    """Minimise eq. (3) from w = 0, b = 0 by L-BFGS; the fitted ``{"w", "b"}``.

    Stops when the gradient's largest entry is below ``tol`` or after ``max_iter`` iterations.

    >>> X = np.array([[1.0], [2.0], [-1.0], [-2.0]]); y = np.array([1.0, 1.0, 0.0, 0.0])
    >>> params = fit_logistic(X, y, l2=0.1)
    >>> (predict_proba(params, X) >= 0.5).astype(int).tolist()
    [1, 1, 0, 0]
    """
    if not np.isfinite(l2) or l2 < 0:
        raise ScratchgenError(f"l2 must be a finite number >= 0, got {l2!r}")
    X = np.asarray(X, dtype=np.float64)  # (M, D)
    y = np.asarray(y, dtype=np.float64)  # (M,)

    def f_and_g(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = _unpack(theta)
        loss, cache = forward(params, X, y, l2)
        return loss, _pack(backward(params, cache))

    return _unpack(_minimise(f_and_g, np.zeros(X.shape[1] + 1), max_iter, memory, tol))  # theta (D + 1,)


def _minimise(f_and_g, theta: np.ndarray, max_iter: int, memory: int, tol: float) -> np.ndarray:
    """L-BFGS from ``theta`` on ``f_and_g(theta) -> (loss, gradient)``: the minimiser of eq. (3) or (7).

    Stops when the gradient's largest entry is below ``tol``, after ``max_iter`` iterations, or when the
    line search can no longer decrease the loss.
    """
    f, g = f_and_g(theta)
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    for _ in range(max_iter):
        if np.max(np.abs(g)) < tol:
            break
        d = _lbfgs_direction(g, s_hist, y_hist)
        slope = np.dot(g, d)
        if slope >= 0:  # not a descent direction (numerical trouble): restart from the gradient
            s_hist.clear()
            y_hist.clear()
            d, slope = -g, -np.dot(g, g)
        t, f_new, g_new = _backtrack(f_and_g, theta, f, d, slope)
        step, dg = t * d, g_new - g
        if np.dot(step, dg) > 1e-12:  # curvature condition; else keep the old pairs
            s_hist.append(step)
            y_hist.append(dg)
            if len(s_hist) > memory:
                s_hist.pop(0), y_hist.pop(0)
        theta, f, g = theta + step, f_new, g_new
        if t < 1e-12:
            break
    return theta


def predict_proba(params: Params, X: np.ndarray) -> np.ndarray:
    """P(real | x) of eq. (2) for each row of X (M, D); shape (M,)."""
    z = np.asarray(X, dtype=np.float64) @ params["w"] + params["b"]  # (M,)
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def discriminator_accuracy(
    real: Sequence[Sequence[Hashable]],
    generated: Sequence[Sequence[Hashable]],
    seed: int | None = 0,
    test_fraction: float = 0.3,
    max_order: int = 3,
    dim: int = 4096,
    l2: float = 1e-2,
) -> float:
    """Held-out accuracy of a discriminator trained to tell ``real`` from ``generated`` sequences.

    Both classes are cut to the same size k = min(len(real), len(generated)) (a random subset of the
    larger one), so guessing scores 0.5; ``round(test_fraction * k)`` of each class (at least one)
    are held out, the rest train the logistic regression of eq. (2)-(3) on the features of eq. (1),
    and the share of held-out sequences classified correctly is returned. The same ``seed`` gives
    the same subsets, split and result.

    Parameters
    ----------
    real, generated : lists of token sequences (at least 2 each)
    seed : int or None
    test_fraction : float in (0, 1)
    max_order, dim : the n-gram orders 1..max_order hashed into ``dim`` buckets
    l2 : float, the L2 strength lam of eq. (3)

    >>> real = [["a", "b"] * 3] * 20
    >>> fake = [["b", "b"] * 3] * 20
    >>> discriminator_accuracy(real, fake, seed=0)
    1.0
    """
    if not 0.0 < test_fraction < 1.0:
        raise ScratchgenError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}")
    k = min(len(real), len(generated))
    if k < 2:
        raise ScratchgenError(
            f"the discriminator needs at least 2 real and 2 generated sequences, got {len(real)} and {len(generated)}"
        )
    rng = np.random.default_rng(seed)
    n_test = min(max(1, int(round(test_fraction * k))), k - 1)
    rows_real = rng.permutation(len(real))[:k]  # (k,) a random subset, in random order
    rows_gen = rng.permutation(len(generated))[:k]
    chosen = [real[i] for i in rows_real] + [generated[i] for i in rows_gen]
    X = ngram_features(chosen, max_order=max_order, dim=dim)  # (2k, D)
    y = np.concatenate([np.ones(k), np.zeros(k)])  # (2k,) 1 = real
    test = np.zeros(2 * k, dtype=bool)
    test[:n_test] = True  # the first n_test of each class (already in random order)
    test[k : k + n_test] = True
    params = fit_logistic(X[~test], y[~test], l2=l2)
    predicted = predict_proba(params, X[test]) >= 0.5  # (2 n_test,)
    return float(np.mean(predicted == (y[test] == 1.0)))


# --- several classes: eq. (6)-(9) ----------------------------------------------------------------------


def _check_classes(y: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() >= n_classes)):
        raise ScratchgenError(f"the classes must be a 1-d integer array with values 0 to {n_classes - 1}")
    return y.astype(np.int64)


def softmax_forward(params: Params, X: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, dict]:
    """The loss of eq. (7) and the cache ``softmax_backward`` needs.

    Parameters
    ----------
    params : {"W": ndarray of shape (D, C), "b": ndarray of shape (C,)}
    X : ndarray of shape (M, D)
    y : int ndarray of shape (M,), the class of each row, 0 to C - 1
    l2 : float, lam >= 0

    >>> p = {"W": np.zeros((2, 3)), "b": np.zeros(3)}   # every class 1/3: the loss is ln 3
    >>> round(softmax_forward(p, np.ones((2, 2)), np.array([0, 2]), 0.0)[0], 6)
    1.098612
    """
    W, b = params["W"], params["b"]
    y = _check_classes(y, W.shape[1])
    Z = X @ W + b  # (M, C) eq. (6)
    log_norm = np.logaddexp.reduce(Z, axis=1)  # (M,) log sum_c exp Z_ic, stable
    M = len(y)
    data = np.sum(log_norm - Z[np.arange(M), y]) / M  # eq. (7)
    loss = float(data + 0.5 * l2 * np.sum(W * W))
    cache = {"X": X, "y": y, "Z": Z, "log_norm": log_norm, "l2": l2}
    return loss, cache


def softmax_backward(params: Params, cache: dict) -> Params:
    """The gradient of eq. (7) with respect to ``params`` by eq. (8)-(9); same keys as ``params``."""
    X, y, Z, l2 = cache["X"], cache["y"], cache["Z"], cache["l2"]
    M = len(y)
    dZ = np.exp(Z - cache["log_norm"][:, None])  # (M, C) P of eq. (6)
    dZ[np.arange(M), y] -= 1.0  # P - Y
    dZ /= M  # eq. (8)
    return {
        "W": X.T @ dZ + l2 * params["W"],  # (D, C) eq. (9)
        "b": dZ.sum(axis=0),  # (C,)
    }


def _pack_softmax(params: Params) -> np.ndarray:
    return np.concatenate([params["W"].reshape(-1), params["b"]])  # (D C + C,)


def _unpack_softmax(theta: np.ndarray, n_classes: int) -> Params:
    return {"W": theta[:-n_classes].reshape(-1, n_classes), "b": theta[-n_classes:]}


def softmax_gradient_error(
    params: Params,
    X: np.ndarray,
    y: np.ndarray,
    l2: float,
    backward_fn: Callable[[Params, dict], Params] = softmax_backward,
) -> float:
    """Relative error between ``backward_fn``'s gradient of eq. (7) and central differences (W and b packed).

    >>> rng = np.random.default_rng(0)
    >>> p = {"W": rng.normal(size=(2, 3)), "b": rng.normal(size=3)}
    >>> softmax_gradient_error(p, rng.normal(size=(4, 2)), np.array([0, 1, 2, 1]), 0.1) < 1e-6
    True
    """
    C = params["W"].shape[1]

    def loss_and_grads(packed: dict) -> tuple[float, dict]:
        p = _unpack_softmax(packed["theta"], C)
        loss, cache = softmax_forward(p, X, y, l2)
        return loss, {"theta": _pack_softmax(backward_fn(p, cache))}

    return gradcheck(loss_and_grads, {"theta": _pack_softmax(params)})["theta"]


def fit_softmax(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    l2: float = 1e-2,
    max_iter: int = 200,
    memory: int = 10,
    tol: float = 1e-6,
) -> Params:
    """Minimise eq. (7) from W = 0, b = 0 by L-BFGS (as :func:`fit_logistic`); the fitted ``{"W", "b"}``.

    >>> X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 2.0], [-1.0, -1.0]])
    >>> params = fit_softmax(X, np.array([0, 0, 1, 1, 2]), 3, l2=0.01)
    >>> predict_class_proba(params, X).argmax(axis=1).tolist()
    [0, 0, 1, 1, 2]
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ScratchgenError(f"n_classes must be an integer >= 1, got {n_classes!r}")
    if not np.isfinite(l2) or l2 < 0:
        raise ScratchgenError(f"l2 must be a finite number >= 0, got {l2!r}")
    X = np.asarray(X, dtype=np.float64)  # (M, D)
    y = _check_classes(y, int(n_classes))  # (M,)
    C = int(n_classes)

    def f_and_g(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = _unpack_softmax(theta, C)
        loss, cache = softmax_forward(params, X, y, l2)
        return loss, _pack_softmax(softmax_backward(params, cache))

    theta = _minimise(f_and_g, np.zeros((X.shape[1] + 1) * C), max_iter, memory, tol)  # (D C + C,)
    return _unpack_softmax(theta, C)


def predict_class_proba(params: Params, X: np.ndarray) -> np.ndarray:
    """P(class c | x) of eq. (6) for each row of X (M, D); shape (M, C), each row sums to 1."""
    Z = np.asarray(X, dtype=np.float64) @ params["W"] + params["b"]  # (M, C)
    return np.exp(Z - np.logaddexp.reduce(Z, axis=1, keepdims=True))


@dataclasses.dataclass
class TextClassifier:
    """Texts to classes: the hashed n-gram features of eq. (1) and the softmax regression of eq. (6)-(7).

    ``TextClassifier.fit(sequences, classes, n_classes)`` trains it; ``predict(sequences)`` gives the
    most probable class of each (the lower one on ties).

    >>> clf = TextClassifier.fit([["a", "a"], ["a"], ["b", "b"], ["b"]], np.array([0, 0, 1, 1]), 2)
    >>> clf.predict([["a", "a", "a"], ["b", "b", "b"]]).tolist()
    [0, 1]
    """

    params: Params
    max_order: int = 3
    dim: int = 4096

    @classmethod
    def fit(
        cls,
        sequences: Sequence[Sequence[Hashable]],
        classes: np.ndarray,
        n_classes: int,
        max_order: int = 3,
        dim: int = 4096,
        l2: float = 1e-2,
    ) -> TextClassifier:
        X = ngram_features(sequences, max_order=max_order, dim=dim)  # (M, D)
        return cls(fit_softmax(X, classes, n_classes, l2=l2), max_order, dim)

    def predict_proba(self, sequences: Sequence[Sequence[Hashable]]) -> np.ndarray:
        """P(class | x) of eq. (6), shape (M, C)."""
        return predict_class_proba(self.params, ngram_features(sequences, max_order=self.max_order, dim=self.dim))

    def predict(self, sequences: Sequence[Sequence[Hashable]]) -> np.ndarray:
        """The most probable class of each sequence, int array of shape (M,)."""
        return np.argmax(self.predict_proba(sequences), axis=1)
