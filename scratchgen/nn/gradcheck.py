r"""Checking hand-written gradients against central finite differences.

For a scalar loss f and one entry theta_k of a parameter, the central difference is::

    g_k ~ (f(theta + eps e_k) - f(theta - eps e_k)) / (2 eps)                (1)

whose error is O(eps^2) (the even terms of the Taylor series cancel). With float64 and eps = 1e-5
the truncation error is about 1e-10 and the rounding error about 1e-16 / 1e-5 = 1e-11, so a correct
analytic gradient agrees to far better than 1e-6. Per parameter we report the relative error::

    rel = ||g_analytic - g_numeric|| / (||g_analytic|| + ||g_numeric||)       (2)

(0 when both are zero). It is 1 when one of them is zero and the other is not, and near 1 when
they point in different directions; a right gradient gives 1e-9 or less.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["gradcheck", "gradcheck_piece", "relative_error"]


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """eq. (2): ||a - b|| / (||a|| + ||b||), 0.0 when both are zero.

    >>> relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    >>> relative_error(np.array([1.0]), np.array([0.0]))
    1.0
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def gradcheck(
    loss_and_grads: Callable[[dict], tuple],
    params: dict,
    eps: float = 1e-5,
    max_entries: int | None = None,
    seed: int = 0,
    keys=None,
) -> dict[str, float]:
    """Relative error (eq. 2) between analytic gradients and central differences (eq. 1).

    Parameters
    ----------
    loss_and_grads : callable
        ``loss_and_grads(params) -> (loss, grads)``: a float loss and a dict of gradients with (some
        of) the keys of ``params``. Called once for the analytic gradients, then twice per checked entry.
    params : dict of float arrays
        Copied to float64 (finite differences need it); the caller's arrays are not modified.
    eps : float
        The step of eq. (1).
    max_entries : int or None
        Check at most this many randomly chosen entries of each parameter (all when None).
    seed : int
        Which entries, when ``max_entries`` is set.
    keys : iterable of str or None
        The parameters to check (default: every key of the analytic gradients).

    Returns
    -------
    dict mapping each checked key to its relative error

    >>> f = lambda p: (float(np.sum(p["w"] ** 3)), {"w": 3 * p["w"] ** 2})
    >>> gradcheck(f, {"w": np.array([1.0, -2.0])})["w"] < 1e-8
    True
    >>> wrong = lambda p: (float(np.sum(p["w"] ** 3)), {"w": 2 * p["w"] ** 2})
    >>> gradcheck(wrong, {"w": np.array([1.0, -2.0])})["w"] > 0.1
    True
    """
    p64 = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    _, grads = loss_and_grads(p64)
    grads = {k: np.array(v, dtype=np.float64) for k, v in grads.items()}
    rng = np.random.default_rng(seed)
    result = {}
    for key in grads if keys is None else keys:
        theta = p64[key]  # modified in place, then restored
        flat = theta.reshape(-1)  # a view
        entries = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            entries = rng.choice(flat.size, size=max_entries, replace=False)
        numeric = np.empty(len(entries))
        for n, k in enumerate(entries):
            old = flat[k]
            flat[k] = old + eps
            plus = loss_and_grads(p64)[0]
            flat[k] = old - eps
            minus = loss_and_grads(p64)[0]
            flat[k] = old
            numeric[n] = (plus - minus) / (2 * eps)  # eq. (1)
        result[key] = relative_error(grads[key].reshape(-1)[entries], numeric)  # eq. (2)
    return result


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _weighted_sum(outs: tuple, weights: list) -> tuple[float, list]:
    """``loss = sum R * out`` over a piece's outputs and its gradient d loss / d out = R, the
    ``d_outputs`` its backward receives; a scalar output (a loss, weight None) counts with weight 1."""
    loss = 0.0
    d_out: list = []
    for o, w in zip(outs, weights):
        if w is None:  # a scalar output (a loss): weight 1
            loss += float(o)
            d_out.append(1.0)
        else:
            loss += float(np.sum(w * o))
            d_out.append(w)
    return loss, d_out


def gradcheck_piece(
    forward: Callable,
    backward: Callable,
    params: dict,
    inputs,
    seed: int = 0,
    eps: float = 1e-5,
    max_entries: int | None = None,
) -> dict[str, float]:
    """Gradient check of one piece (a forward/backward pair of :mod:`scratchgen.nn.layers`).

    The piece's outputs are reduced to a scalar with fixed random weights R (``loss = sum R * out``),
    so d loss / d out = R is what ``backward`` receives. Every parameter is checked, and every float
    input too (reported as ``"input[i]"``); integer inputs (ids, targets) and None are passed as they are.

    Returns
    -------
    dict: key -> relative error (eq. 2)

    >>> from scratchgen.nn.layers import linear_forward, linear_backward
    >>> rng = np.random.default_rng(1)
    >>> p = {"W_hy": rng.normal(size=(3, 4)), "b_y": rng.normal(size=4)}
    >>> errors = gradcheck_piece(linear_forward, linear_backward, p, rng.normal(size=(2, 5, 3)))
    >>> sorted(errors), max(errors.values()) < 1e-8
    (['W_hy', 'b_y', 'input[0]'], True)
    """
    rng = np.random.default_rng(seed)
    single = not isinstance(inputs, tuple)
    inputs_t = _as_tuple(inputs)
    float_inputs = [
        i for i, x in enumerate(inputs_t) if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)
    ]
    names = {f"input[{i}]": i for i in float_inputs}
    weights = None

    def loss_and_grads(p: dict):
        nonlocal weights
        args = list(inputs_t)
        for name, i in names.items():
            args[i] = p[name]
        piece_params = {k: v for k, v in p.items() if k not in names}
        call_inputs = args[0] if single else tuple(args)
        outputs, cache = forward(piece_params, call_inputs)
        outs = _as_tuple(outputs)
        if weights is None:  # fixed random R, drawn once
            weights = [
                None if np.ndim(o) == 0 and not isinstance(o, np.ndarray) else rng.normal(size=np.shape(o))
                for o in outs
            ]
        loss, d_out = _weighted_sum(outs, weights)
        grads, d_inputs = backward(piece_params, cache, d_out[0] if len(d_out) == 1 else tuple(d_out))
        grads = dict(grads)
        d_inputs = _as_tuple(d_inputs) if d_inputs is not None else ()
        for name, i in names.items():
            grads[name] = d_inputs[i]
        return loss, grads

    start = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    for name, i in names.items():
        start[name] = np.asarray(inputs_t[i], dtype=np.float64)
    return gradcheck(loss_and_grads, start, eps=eps, max_entries=max_entries, seed=seed)
