r"""The pieces of the recurrent network, each a pair of plain functions: forward and backward.

Every piece is written as::

    outputs, cache = forward(params, inputs)
    grads, d_inputs = backward(params, cache, d_outputs)

``params`` and ``grads`` are dicts with the same keys, so an optimiser, a gradient check or a model
file just loops over keys. ``cache`` is a dict holding what backward needs: print it to see it.

Letters: B batch, T time steps, V vocabulary, E embedding width, H hidden width, L layers,
N number of unmasked (counted) targets. Row vectors, batch first: ``x_t`` is a row of ``X`` (B, T, E).

Forward (one time step t = 1..T of one layer, then the output)::

    x_t = C[i_t]                                           embedding lookup            (1)
    a_t = x_t W_xh + h_{t-1} W_hh + b_h                    pre-activation              (2)
    h_t = tanh(a_t)                                        hidden state                (3)
    y_t = h_t W_hy + b_y                                   logits                      (4)
    p_t = softmax(y_t) = exp(y_t - lse(y_t))               next-token probabilities    (5)
    loss = -(1/N) sum_{b,t} m_{b,t} log p_{b,t}[j_{b,t}]    masked cross-entropy        (6)

with ``i`` the input ids, ``j`` the target ids and ``m`` the mask (1 for a counted target, 0 for
padding; N = sum m). In a stack of L layers, layer l > 1 reads ``x_t = h_t`` of layer l - 1. In training, the top
states may pass through (inverted) dropout before eq. (4): ``h_t <- h_t * k_t / (1 - r)`` with
k_t a random 0/1 mask kept with probability 1 - r (eq. 14; backward: ``dh_t <- dh_t * k_t / (1 - r)``). When
the input is a one-hot vector (no embedding table), ``x_t W_xh`` in eq. (2) is the row ``W_xh[i_t]``.
A layer may also be given a per-sequence vector u (B, H) added to every a_t of eq. (2), whose gradient is
``du = sum_t da_t``: a labelled one-hot network adds its label vector there. A labelled network also
adds a label vector to x_t and starts from a label's h_0: eqs. (L1)-(L4) of :mod:`scratchgen.nn.conditioning`.

Backward, by the chain rule from the loss down (``dZ`` means d loss / d Z)::

    dy_t = (m_t / N) (p_t - onehot(j_t))                   fused softmax + cross-entropy (7)
    dW_hy = sum_t h_t^T dy_t,  db_y = sum_t dy_t,  dh_t = dy_t W_hy^T                    (8)
    dh_t <- dh_t + da_{t+1} W_hh^T                          h_t also fed step t + 1      (9)
    da_t = dh_t * (1 - h_t^2)                               tanh'(a) = 1 - tanh(a)^2     (10)
    dW_xh = sum_t x_t^T da_t,  dW_hh = sum_t h_{t-1}^T da_t,  db_h = sum_t da_t          (11)
    dx_t = da_t W_xh^T,  dh_0 = da_1 W_hh^T                                              (12)
    dC[i] = sum of dx_t over the t with i_t = i                                          (13)

Eq. (9) is backpropagation through time: the only sequential part. The weights are shared by all
time steps, so their gradients are sums over t (eq. 11), accumulated after the loop as one matrix
product over all steps (``H_prev^T dA``). Likewise eqs. (2), (4) and (8) for all steps at once are
single matrix products; only the recurrence itself loops over time.

Arrays are stored time-major inside (contiguous (B, H) rows per step); the functions take and
return batch-first arrays, which are transposed *views* of that storage (no copies).
"""

from __future__ import annotations

import numpy as np

from ..threads import one_blas_thread
from .conditioning import (
    label_input_backward,
    label_input_forward,
    label_states_backward,
    label_states_forward,
)

__all__ = [
    "embedding_forward",
    "embedding_backward",
    "rnn_forward",
    "rnn_backward",
    "stack_forward",
    "stack_backward",
    "linear_forward",
    "linear_backward",
    "softmax_ce_forward",
    "softmax_ce_backward",
    "dropout_forward",
    "dropout_backward",
    "network_forward",
    "network_backward",
    "layer_params",
]


def _time_major(x: np.ndarray) -> np.ndarray:
    """(B, T, ...) -> contiguous (T, B, ...); free when x is itself a transposed time-major array."""
    return np.ascontiguousarray(np.swapaxes(x, 0, 1))


def scatter_add_rows(n_rows: int, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """out[i] = sum of values[k] over the k with ids[k] == i: eq. (13), the gradient of a row lookup.

    Same result as ``np.add.at(out, ids, values)``, but sorts the ids once and sums each run of
    equal ids with one ``np.add.reduceat`` (several times faster than ``np.add.at`` on 2-d rows).

    >>> scatter_add_rows(3, np.array([2, 0, 2]), np.array([[1.0], [10.0], [100.0]]))
    array([[ 10.],
           [  0.],
           [101.]])
    """
    ids = ids.ravel()  # (K,)
    order = np.argsort(ids, kind="stable")  # (K,) equal ids side by side
    sorted_ids = ids[order]  # (K,)
    first = np.empty(len(ids), dtype=bool)  # (K,) True where a run of equal ids starts
    first[:1] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=first[1:])
    starts = np.flatnonzero(first)  # (U,) first of each run
    out = np.zeros((n_rows, values.shape[1]), dtype=values.dtype)  # (V, D)
    if len(ids):
        out[sorted_ids[starts]] = np.add.reduceat(values[order], starts, axis=0)  # (U, D)
    return out


# --- embedding: eq. (1) and (13) ------------------------------------------------------------------


def embedding_forward(params: dict, ids: np.ndarray):
    """Look up rows of the table ``C``: eq. (1).

    Parameters
    ----------
    params : dict with "C" of shape (V, E)
    ids : int array of shape (B, T)

    Returns
    -------
    X : ndarray of shape (B, T, E)
    cache : dict

    >>> C = np.arange(6.0).reshape(3, 2)
    >>> embedding_forward({"C": C}, np.array([[2, 0]]))[0]
    array([[[4., 5.],
            [0., 1.]]])
    """
    C = params["C"]  # (V, E)
    ids_tm = np.ascontiguousarray(ids.T)  # (T, B)
    X = C[ids_tm]  # (T, B, E) eq. (1)
    return np.swapaxes(X, 0, 1), {"ids": ids_tm, "V": C.shape[0]}  # (B, T, E)


def embedding_backward(params: dict, cache: dict, dX: np.ndarray):
    """dC: scatter-add each dx_t into the row it was read from: eq. (13).

    A row read at several time steps receives the sum of their gradients (``dC[ids] += dX`` would
    keep only one of them: fancy-index assignment does not accumulate repeated indices).
    """
    C = params["C"]  # (V, E)
    dX_tm = _time_major(dX)  # (T, B, E)
    dC = scatter_add_rows(C.shape[0], cache["ids"], dX_tm.reshape(-1, C.shape[1]))  # (V, E) eq. (13)
    return {"C": dC}, None


# --- one tanh RNN layer over a whole sequence: eq. (2), (3) and (9)-(12) --------------------------


def rnn_forward(params: dict, inputs):
    """Run one tanh layer over T steps: eq. (2) and (3).

    Parameters
    ----------
    params : dict with "W_xh" (E, H), "W_hh" (H, H), "b_h" (H,)
    inputs : (X, h0) or (X, h0, u)
        X : float array (B, T, E), or int array (B, T) of one-hot ids (then ``x_t W_xh = W_xh[i_t]``)
        h0 : array (B, H), the state carried in from the previous chunk; None means zeros (a fresh start)
        u : array (B, H) added to every a_t of its sequence (a one-hot network's label vector), or None

    Returns
    -------
    (H_out, h_T) : ((B, T, H) hidden states, (B, H) last state)
    cache : dict

    >>> rng = np.random.default_rng(0)
    >>> p = {"W_xh": rng.normal(size=(3, 4)), "W_hh": rng.normal(size=(4, 4)), "b_h": np.zeros(4)}
    >>> (Hs, hT), _ = rnn_forward(p, (rng.normal(size=(2, 5, 3)), np.zeros((2, 4))))
    >>> Hs.shape, bool(np.all(Hs[:, -1] == hT))
    ((2, 5, 4), True)
    """
    W_xh, W_hh, b_h = params["W_xh"], params["W_hh"], params["b_h"]  # (E, H) (H, H) (H,)
    X, h0 = inputs[:2]
    u = inputs[2] if len(inputs) > 2 else None
    B, T = X.shape[:2]
    Hdim = W_hh.shape[0]
    one_hot = np.issubdtype(X.dtype, np.integer)
    # eq. (2), the input part for all steps at once: one matrix product (or one row lookup).
    if one_hot:
        X_tm = np.ascontiguousarray(X.T)  # (T, B) ids
        A = W_xh[X_tm]  # (T, B, H) = onehot(i_t) W_xh
    else:
        X_tm = _time_major(X)  # (T, B, E)
        A = (X_tm.reshape(T * B, -1) @ W_xh).reshape(T, B, Hdim)  # (T, B, H)
    A += b_h  # (T, B, H)
    if u is not None:
        A += u  # (T, B, H) the same (B, H) vector at every step
    Hs = np.empty((T + 1, B, Hdim), dtype=W_hh.dtype)  # (T+1, B, H); Hs[t] = h_t, Hs[0] = h_0
    Hs[0] = 0.0 if h0 is None else h0  # (B, H) h_0
    with one_blas_thread():
        for t in range(T):  # the recurrence: the only loop over time
            np.dot(Hs[t], W_hh, out=Hs[t + 1])  # (B, H) h_{t-1} W_hh
            Hs[t + 1] += A[t]  # (B, H) a_t, eq. (2)
            np.tanh(Hs[t + 1], out=Hs[t + 1])  # (B, H) h_t, eq. (3)
    cache = {"X": X_tm, "Hs": Hs, "one_hot": one_hot, "has_u": len(inputs) > 2}
    H_out = np.swapaxes(Hs[1:], 0, 1)  # (B, T, H) view
    return (H_out, Hs[T]), cache


def rnn_backward(params: dict, cache: dict, d_outputs):
    """Backpropagation through time for one layer: eq. (9)-(12).

    Parameters
    ----------
    d_outputs : (dH, dh_T)
        dH : (B, T, H) gradient reaching each h_t from above (or None for zeros)
        dh_T : (B, H) gradient reaching the last state from later chunks (or None: truncated BPTT)

    Returns
    -------
    grads : dict "W_xh", "W_hh", "b_h"
    (dX, dh0) : (B, T, E) (None for one-hot ids) and (B, H), the gradient of the initial state;
        (dX, dh0, du) when the forward pass was given u, with du = sum_t da_t of shape (B, H)
    """
    W_xh, W_hh = params["W_xh"], params["W_hh"]  # (E, H) (H, H)
    Hs, X_tm = cache["Hs"], cache["X"]  # (T+1, B, H) (T, B, E)
    dH, dhT = d_outputs
    T, B, Hdim = Hs.shape[0] - 1, Hs.shape[1], Hs.shape[2]
    D = 1.0 - Hs[1:] ** 2  # (T, B, H) tanh', eq. (10)
    if dH is None:
        dA = np.zeros_like(D)  # (T, B, H)
    else:
        dA = _time_major(dH) * D  # (T, B, H) the part of eq. (10) from above
    dh = np.zeros((B, Hdim), dtype=Hs.dtype) if dhT is None else np.array(dhT, dtype=Hs.dtype)  # (B, H)
    tmp = np.empty((B, Hdim), dtype=Hs.dtype)  # (B, H)
    W_hh_T = W_hh.T  # (H, H) view
    with one_blas_thread():
        for t in range(T - 1, -1, -1):  # reversed time: eq. (9) and (10)
            np.multiply(dh, D[t], out=tmp)  # (B, H) dh_next * (1 - h_t^2)
            dA[t] += tmp  # (B, H) da_t = (dH_t + dh_next) * (1 - h_t^2)
            np.dot(dA[t], W_hh_T, out=dh)  # (B, H) dh_{t-1} from step t, eq. (9)
    dA2 = dA.reshape(T * B, Hdim)  # (T*B, H)
    H_prev = Hs[:-1].reshape(T * B, Hdim)  # (T*B, H) h_{t-1} for every step
    grads = {
        "W_hh": H_prev.T @ dA2,  # (H, H) eq. (11), all steps in one product
        "b_h": dA2.sum(axis=0),
    }  # (H,)   eq. (11)
    if cache["one_hot"]:
        grads["W_xh"] = scatter_add_rows(W_xh.shape[0], X_tm, dA2)  # (V, H) eq. (11), one-hot x_t
        dX = None
    else:
        X2 = X_tm.reshape(T * B, -1)  # (T*B, E)
        grads["W_xh"] = X2.T @ dA2  # (E, H) eq. (11)
        dX = np.swapaxes((dA2 @ W_xh.T).reshape(T, B, -1), 0, 1)  # (B, T, E) eq. (12), view
    if cache["has_u"]:
        return grads, (dX, dh, dA.sum(axis=0))  # du (B, H): u fed every step
    return grads, (dX, dh)  # dh is now dh_0, eq. (12)


# --- a stack of L layers --------------------------------------------------------------------------


def layer_params(params: dict, layer: int) -> dict:
    """The parameters of one layer of a stack: keys "W_xh.l" -> "W_xh" etc."""
    return {name: params[f"{name}.{layer}"] for name in ("W_xh", "W_hh", "b_h")}


def stack_forward(params: dict, inputs):
    """L layers, each reading the hidden states of the one below.

    Parameters
    ----------
    params : dict with "W_xh.l", "W_hh.l", "b_h.l" for l = 0 .. L-1
    inputs : (X, h0) or (X, h0, u) with X and u (given to the first layer) as for :func:`rnn_forward`
        and h0 of shape (L, B, H)

    Returns
    -------
    (H_top, h_T) : ((B, T, H) states of the top layer, (L, B, H) last states of every layer)
    cache : dict with the list of per-layer caches
    """
    X, h0 = inputs[:2]
    L = h0.shape[0]
    caches, last = [], []
    for layer in range(L):
        layer_inputs = (X, h0[layer]) + (tuple(inputs[2:]) if layer == 0 else ())  # u: first layer only
        (X, hT), c = rnn_forward(layer_params(params, layer), layer_inputs)  # (B, T, H) (B, H)
        caches.append(c)
        last.append(hT)
    return (X, np.stack(last)), {"layers": caches}


def stack_backward(params: dict, cache: dict, d_outputs):
    """Backward through the stack, top layer first: each layer's dX is dH of the layer below.

    Returns grads ("W_xh.l", ...) and (dX, dh0) with dh0 of shape (L, B, H); (dX, dh0, du) when
    the forward pass was given u.
    """
    dH, dhT = d_outputs
    caches = cache["layers"]
    L = len(caches)
    grads = {}
    dh0: list = [None] * L  # dh0[l]: (B, H), filled top layer first
    du = ()
    for layer in range(L - 1, -1, -1):
        g, d_in = rnn_backward(layer_params(params, layer), caches[layer], (dH, None if dhT is None else dhT[layer]))
        dH, dh0[layer], du = d_in[0], d_in[1], tuple(d_in[2:])  # du: the first layer's, if it had u
        for name, value in g.items():
            grads[f"{name}.{layer}"] = value
    return grads, (dH, np.stack(dh0)) + du


# --- output projection: eq. (4) and (8) -----------------------------------------------------------


def linear_forward(params: dict, H: np.ndarray):
    """Logits for every step at once: eq. (4), one matrix product over all B*T rows.

    params : "W_hy" (H, V), "b_y" (V,); H : (B, T, H) -> Y : (B, T, V)
    """
    W_hy, b_y = params["W_hy"], params["b_y"]  # (H, V) (V,)
    B, T, Hdim = H.shape
    H_tm = _time_major(H).reshape(T * B, Hdim)  # (T*B, H)
    Y = H_tm @ W_hy  # (T*B, V) eq. (4)
    Y += b_y  # (T*B, V)
    return np.swapaxes(Y.reshape(T, B, -1), 0, 1), {"H": H_tm, "shape": (B, T)}  # (B, T, V) view


def linear_backward(params: dict, cache: dict, dY: np.ndarray):
    """eq. (8): dW_hy = H^T dY, db_y = sum dY, dH = dY W_hy^T (one product each)."""
    W_hy = params["W_hy"]  # (H, V)
    B, T = cache["shape"]
    dY_tm = _time_major(dY).reshape(T * B, -1)  # (T*B, V)
    grads = {
        "W_hy": cache["H"].T @ dY_tm,  # (H, V)
        "b_y": dY_tm.sum(axis=0),
    }  # (V,)
    dH = np.swapaxes((dY_tm @ W_hy.T).reshape(T, B, -1), 0, 1)  # (B, T, H) view
    return grads, dH


# --- softmax cross-entropy with a mask: eq. (5)-(7) -----------------------------------------------


def softmax_ce_forward(params: dict, inputs):
    """Mean cross-entropy over the counted targets: eq. (5) and (6). No parameters.

    Parameters
    ----------
    inputs : (Y, targets, mask)
        Y : (B, T, V) logits; targets : int (B, T); mask : (B, T) of 0/1 or None (all counted)

    Returns
    -------
    loss : float (mean nats per counted target; 0.0 when nothing is counted)
    cache : dict (the probabilities, needed by eq. (7))

    >>> Y = np.zeros((1, 2, 4))                      # uniform over 4 tokens: loss = ln 4
    >>> loss, _ = softmax_ce_forward({}, (Y, np.array([[1, 3]]), None))
    >>> round(loss, 6), round(float(np.log(4)), 6)
    (1.386294, 1.386294)
    """
    Y, targets, mask = inputs
    B, T, V = Y.shape
    Y_tm = _time_major(Y).reshape(T * B, V)  # (T*B, V)
    j = np.ascontiguousarray(targets.T).ravel()  # (T*B,)
    m = np.ones(T * B, dtype=Y.dtype) if mask is None else np.ascontiguousarray(mask.T).ravel().astype(Y.dtype)
    rows = np.arange(T * B)
    P = Y_tm - Y_tm.max(axis=1, keepdims=True)  # (T*B, V) shifted: exp cannot overflow
    np.exp(P, out=P)  # (T*B, V)
    Z = P.sum(axis=1)  # (T*B,)
    P /= Z[:, None]  # (T*B, V) p_t, eq. (5)
    logp = np.log(np.maximum(P[rows, j], np.finfo(P.dtype).tiny))  # (T*B,) log p_t[j_t]
    n = float(m.sum(dtype=np.float64))
    loss = -float(np.dot(m.astype(np.float64), logp.astype(np.float64))) / max(n, 1.0)  # eq. (6)
    return loss, {"P": P, "j": j, "m": m, "n": n, "shape": (B, T)}


def softmax_ce_backward(params: dict, cache: dict, d_loss: float = 1.0):
    """Fused gradient of eq. (5)+(6) w.r.t. the logits: dy_t = (m_t / N)(p_t - onehot(j_t)), eq. (7).

    Overwrites the cached probabilities (they are not needed again): no new (T*B, V) array.
    """
    P, j, m = cache["P"], cache["j"], cache["m"]
    B, T = cache["shape"]
    dY = P  # (T*B, V) reuse the buffer
    dY[np.arange(len(j)), j] -= 1.0  # p - onehot(j)
    dY *= (m * (d_loss / max(cache["n"], 1.0)))[:, None]  # (T*B, V) eq. (7)
    cache["P"] = None  # consumed
    return {}, (np.swapaxes(dY.reshape(T, B, -1), 0, 1), None, None)  # (B, T, V) view; ids, mask: none


# --- dropout on the top states: eq. (14) ----------------------------------------------------------


def dropout_forward(params: dict, inputs):
    """Inverted dropout with a given mask: ``H * keep / (1 - rate)``, eq. (14). No parameters.

    The random mask comes from outside (the training loop draws it), so the function itself is
    deterministic and can be checked like any other piece.

    inputs : (H, keep, rate) with H (B, T, H), keep a 0/1 array of the same shape, rate in [0, 1)

    >>> dropout_forward({}, (np.ones((1, 1, 4)), np.array([[[1, 0, 1, 1]]]), 0.5))[0]
    array([[[2., 0., 2., 2.]]])
    """
    H, keep, rate = inputs
    scale = keep * (1.0 / (1.0 - rate))  # (B, T, H) 0 or 1 / (1 - r)
    return H * scale.astype(H.dtype), {"scale": scale.astype(H.dtype)}


def dropout_backward(params: dict, cache: dict, dH: np.ndarray):
    """eq. (14) backward: the same mask and scale."""
    return {}, (dH * cache["scale"], None, None)


# --- the whole network ----------------------------------------------------------------------------


def network_forward(params: dict, inputs):
    """Embedding (if any), L tanh layers, output projection and masked cross-entropy: eq. (1)-(6).

    Parameters
    ----------
    params : dict; "C" (V, E) when there is an embedding table (else the inputs are one-hot),
        "W_xh.l", "W_hh.l", "b_h.l" for each layer, "W_hy", "b_y"; a labelled network also
        "L_in" (C, E or H) and "L_h.l" (C, H) (:mod:`scratchgen.nn.conditioning`)
    inputs : (ids, targets, mask, h0), (ids, targets, mask, h0, dropout) or
        (ids, targets, mask, h0, dropout, labels)
        ids, targets : int (B, T); mask : (B, T) or None; h0 : (L, B, H) carried state;
        dropout : (keep, rate), a dropout mask (B, T, H) of 0/1 and its rate (eq. 14), or None;
        labels : int (B,), the label id of each sequence (a labelled network), or None. With labels,
        the label vector is added to every input (eq. L1) and h0 = None means the label's start
        state tanh(L_h.l[c]) (eq. L2; a fresh start), while a given h0 is a carried state.

    Returns
    -------
    (loss, h_T) : float and (L, B, H), the state to carry into the next chunk
    cache : dict
    """
    ids, targets, mask, h0 = inputs[:4]
    dropout = inputs[4] if len(inputs) > 4 else None
    labels = inputs[5] if len(inputs) > 5 else None
    cache: dict = {"labelled": labels is not None}
    if labels is not None and h0 is None:
        h0, cache["start"] = label_states_forward(params, labels)  # (L, B, H) eq. (L2)
    if "C" in params:
        X, cache["emb"] = embedding_forward(params, ids)  # (B, T, E) eq. (1)
    else:
        X = ids  # (B, T) one-hot ids
    extra: tuple = ()
    if labels is not None and "C" in params:
        X, cache["label"] = label_input_forward(params, (X, labels))  # (B, T, E) eq. (L1)
    elif labels is not None:  # one-hot: the label vector joins W_xh[i_t] inside the recurrence
        u, cache["label"] = label_input_forward(params, (None, labels))  # (B, H) eq. (L1)
        extra = (u,)
    (H, hT), cache["rnn"] = stack_forward(params, (X, h0) + extra)  # (B, T, H), (L, B, H) eq. (2)-(3)
    if dropout is not None:
        H, cache["drop"] = dropout_forward({}, (H, *dropout))  # (B, T, H) eq. (14)
    Y, cache["out"] = linear_forward(params, H)  # (B, T, V) eq. (4)
    loss, cache["ce"] = softmax_ce_forward({}, (Y, targets, mask))  # eq. (5)-(6)
    return (loss, hT), cache


def network_backward(params: dict, cache: dict, d_outputs=(1.0, None)):
    """All gradients of the network by eq. (7)-(13).

    d_outputs : (d_loss, dh_T); dh_T is None in truncated BPTT (no gradient from later chunks).

    Returns grads (same keys as params) and the input gradients (None, None, None, dh0), one per
    input: dh0 (L, B, H) is the gradient of the carried-in state. A labelled network returns six
    (dropout and labels have none), with dh0 None when the state was the labels' (its gradient went
    to L_h, eq. L4), and every label table has a gradient (zeros for L_h when the state was carried).
    """
    d_loss, dhT = d_outputs
    _, (dY, _, _) = softmax_ce_backward({}, cache["ce"], d_loss)  # (B, T, V) eq. (7)
    grads, dH = linear_backward(params, cache["out"], dY)  # (B, T, H) eq. (8)
    if "drop" in cache:
        _, (dH, _, _) = dropout_backward({}, cache["drop"], dH)  # (B, T, H) eq. (14)
    g, d_in = stack_backward(params, cache["rnn"], (dH, dhT))  # eq. (9)-(12)
    dX, dh0 = d_in[:2]
    grads.update(g)
    if "label" in cache:  # eq. (L3): from dx_t, or from du (one-hot: the vector joined a_t)
        grads.update(label_input_backward(params, cache["label"], dX if "C" in params else d_in[2])[0])
    if "emb" in cache:
        grads.update(embedding_backward(params, cache["emb"], dX)[0])  # eq. (13)
    if not cache["labelled"]:
        return grads, (None, None, None, dh0)
    for key in params:
        if key.startswith("L_h."):
            grads[key] = np.zeros_like(params[key])  # a carried state: no gradient reaches L_h
    if "start" in cache:
        grads.update(label_states_backward(params, cache["start"], dh0)[0])  # eq. (L4)
        dh0 = None
    return grads, (None, None, None, dh0, None, None)
