r"""Gated recurrent cells, GRU and LSTM, as forward/backward pairs of plain functions (like ``layers.py``).

The tanh cell of :mod:`scratchgen.nn.layers` multiplies the gradient by ``W_hh^T diag(1 - h^2)`` at every
step back in time, so over many steps it vanishes (or explodes). A gated cell adds a path along which
the state is *copied*, scaled by a gate the network learns, instead of squashed: the GRU's
``h_t = (1 - z_t) n_t + z_t h_{t-1}`` (Cho et al. 2014, "Learning Phrase Representations using RNN
Encoder-Decoder", eq. 5-8) and the LSTM's memory cell ``c_t = f_t c_{t-1} + i_t g_t`` (Hochreiter &
Schmidhuber 1997, "Long Short-Term Memory", with the forget gate of Gers et al. 2000). Along these paths
the gradient is multiplied by z_t (GRU) or f_t (LSTM), numbers the network can keep near 1.

The equations and the order of the gates are PyTorch's (the documentation of ``torch.nn.GRU`` and
``torch.nn.LSTM``), so a test can load the same weights into both and compare. Letters as in
``layers.py``: B batch, T time steps, E input width, H hidden width, L layers. Row vectors, batch first.
``sigma(a) = 1 / (1 + exp(-a))`` is the logistic function, computed as ``(1 + tanh(a / 2)) / 2`` (the same
number, one ufunc, no overflow for large |a|); ``*`` is the elementwise product.

GRU parameters: ``W_xg`` (E, 3H), ``W_hg`` (H, 3H), ``b_g`` (3H,), ``b_hn`` (H,). The three column blocks
of ``W_xg``, ``W_hg`` and ``b_g`` are the gates in PyTorch's order r | z | n, so ``W_xg = weight_ih_l0^T``,
``W_hg = weight_hh_l0^T``. PyTorch has two biases per gate; for r and z only their sum matters, so
``b_g = bias_ih + [bias_hr, bias_hz, 0]``, while the hidden bias of n sits inside the reset product
and is kept apart as ``b_hn = bias_hn``. Forward, step t::

    [ar_t | az_t | an_t] = x_t W_xg + b_g                     input part, all steps at once   (G1)
    [hr_t | hz_t | hn_t] = h_{t-1} W_hg + [0 | 0 | b_hn]      recurrent part                  (G2)
    r_t = sigma(ar_t + hr_t)                                  reset gate                      (G3)
    z_t = sigma(az_t + hz_t)                                  update gate                     (G4)
    n_t = tanh(an_t + r_t * hn_t)                             candidate state                 (G5)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}                     new state                       (G6)

Backward, step t, from ``dh_t`` (the gradient from above plus the one carried back from step t + 1)::

    dz_t = dh_t * (h_{t-1} - n_t),  dn_t = dh_t * (1 - z_t)                 from (G6)          (G7)
    dan_t = dn_t * (1 - n_t^2),  dhn_t = dan_t * r_t,  dr_t = dan_t * hn_t   from (G5)          (G8)
    dar_t = dr_t * r_t (1 - r_t),  daz_t = dz_t * z_t (1 - z_t)             sigma' = s (1 - s) (G9)
    dh_{t-1} = dh_t * z_t + [dar_t | daz_t | dhn_t] W_hg^T                   both paths back    (G10)
    dW_xg = sum_t x_t^T [dar_t | daz_t | dan_t],  db_g = sum_t [dar_t | daz_t | dan_t]        (G11)
    dW_hg = sum_t h_{t-1}^T [dar_t | daz_t | dhn_t],  db_hn = sum_t dhn_t                     (G12)
    dx_t = [dar_t | daz_t | dan_t] W_xg^T                                                     (G13)

LSTM parameters: ``W_xg`` (E, 4H), ``W_hg`` (H, 4H), ``b_g`` (4H,); the column blocks are PyTorch's
i | f | g | o, ``W_xg = weight_ih_l0^T``, ``W_hg = weight_hh_l0^T``, ``b_g = bias_ih_l0 + bias_hh_l0`` (here the
two biases of each gate are simply added, so one is enough). The state is the pair (h_t, c_t). Forward::

    [ai_t | af_t | ag_t | ao_t] = x_t W_xg + h_{t-1} W_hg + b_g                              (L1)
    i_t = sigma(ai_t),  f_t = sigma(af_t),  o_t = sigma(ao_t)   input, forget, output gates  (L2)
    g_t = tanh(ag_t)                                           candidate                     (L3)
    c_t = f_t * c_{t-1} + i_t * g_t                            memory cell                   (L4)
    h_t = o_t * tanh(c_t)                                      state                         (L5)

The code takes (L2)-(L3) with one exp for all four blocks: with s = 1 on the blocks i, f, o and s = 2 on g,
and z_t = -s * [ai_t | af_t | ag_t | ao_t] (the -s folded into W_xg, W_hg and b_g once: scaling by -1 or -2
is exact in binary floating point)::

    r_t = 1 / (1 + exp(z_t)) = [i_t | f_t | sigma(2 ag_t) | o_t],   g_t = 2 sigma(2 ag_t) - 1   (L2')

(``tanh(a) = 2 sigma(2a) - 1``; where exp(z) overflows to inf, 1 / (1 + inf) = 0 is the right value). NumPy's
float32 exp costs about half its tanh, and (L2') is one exp where (L2)-(L3) are four transcendental calls.

Backward, step t, from ``dh_t`` and ``dc_t`` (each the gradient from above plus the one carried back)::

    do_t = dh_t * tanh(c_t),  dc_t <- dc_t + dh_t * o_t * (1 - tanh(c_t)^2)      from (L5)     (L6)
    di_t = dc_t * g_t,  dg_t = dc_t * i_t,  df_t = dc_t * c_{t-1}                 from (L4)     (L7)
    dc_{t-1} = dc_t * f_t                                       the cell's copy path           (L8)
    [dai | daf | dag | dao]_t = [di i(1-i) | df f(1-f) | dg (1-g^2) | do o(1-o)]_t              (L9)
    dh_{t-1} = [dai | daf | dag | dao]_t W_hg^T                                                 (L10)
    dW_xg = sum_t x_t^T da_t,  dW_hg = sum_t h_{t-1}^T da_t,  db_g = sum_t da_t                 (L11)
    dx_t = da_t W_xg^T                                                                         (L12)

As in ``layers.py``, only the recurrence loops over time: the input products (G1)/(L1) for all T steps, the
weight gradients (G11)/(G12)/(L11) and dx (G13)/(L12) are each one matrix product over all T*B rows (for
the LSTM, one per gate block). In (G7)-(G9) every gradient is the carried gradient dh_t times a factor that
does not depend on it (such as ``(1 - z_t)(1 - n_t^2)``), so gru_backward computes those factors for all
steps at once and the loop only multiplies. The LSTM keeps its gates gate-major, (4, T, B, H): the (B, H)
block of each gate at each step is contiguous; lstm_backward computes its factors (L6)-(L9) a block of a
few steps at a time, in place of the gates they were made from (``_lstm_factors``), and its loop is then
6 NumPy calls a step, each over a few long rows, writing da_t gate-major into the (B, 4H) rows that eq. (L10)
multiplies (making the factors in the forward loop instead, while the gates are in cache, measured a tie in
session 20: the forward lost what the backward gained). Arrays are stored
time-major inside; the functions take and return batch-first views. Inputs may be float rows X (B, T, E) or
integer ids (B, T), read as one-hot rows (then ``x_t W_xg`` is the row ``W_xg[i_t]``). The dtype of the
arithmetic is that of ``W_hg`` (float32 for speed, float64 for gradient checks).

A stack of L layers feeds the states of layer l to layer l + 1 (keys ``"W_xg.l"`` etc.). As for the tanh cell
(eq. 14 of ``layers.py``), dropout belongs on the top states, with :func:`scratchgen.nn.layers.dropout_forward`.
Every function takes the state carried in from the previous chunk and returns the last state, and the
backward functions take the gradient of that last state (None: truncated BPTT) and return the gradient of
the initial state, so chunks compose into one long sequence exactly.

Each ``*_step`` function is one step written plainly, the textbook version of the loop body; a test proves
that the batched sequence functions equal a loop of steps.
"""

from __future__ import annotations

import numpy as np

from .layers import _time_major, one_blas_thread, scatter_add_rows

__all__ = [
    "sigmoid",
    "gru_step",
    "gru_forward",
    "gru_backward",
    "gru_stack_forward",
    "gru_stack_backward",
    "lstm_step",
    "lstm_forward",
    "lstm_backward",
    "lstm_stack_forward",
    "lstm_stack_backward",
    "cell_params",
    "time_blocks",
    "transposed",
]


def sigmoid(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-a)) = (1 + tanh(a / 2)) / 2``, without overflow.

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    out = np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def _input_products(W_x: np.ndarray, b: np.ndarray, X: np.ndarray):
    """eq. (G1), the input part of every step at once: (T, B, kH) and the time-major inputs."""
    B, T = X.shape[:2]
    if np.issubdtype(X.dtype, np.integer):  # one-hot ids: a row lookup
        X_tm = np.ascontiguousarray(X.T)  # (T, B)
        return (W_x + b)[X_tm], X_tm  # (T, B, kH): x_t W_x + b is the row i_t of the table W_x + b
    X_tm = _time_major(X)  # (T, B, E)
    A = (X_tm.reshape(T * B, -1) @ W_x).reshape(T, B, -1)  # (T, B, kH) one product
    A += b
    return A, X_tm


def _one_hot(V: int, X_tm: np.ndarray, dtype) -> np.ndarray:
    """(V, T*B): column j is the one-hot row of the j-th id of ``X_tm``. A table's gradient is then
    onehot(ids)^T dA, one product: for a small table several times faster than sorting T*B rows."""
    one_hot = np.zeros((V, X_tm.size), dtype=dtype)
    one_hot[X_tm.ravel(), np.arange(X_tm.size)] = 1.0
    return one_hot


def _input_grads(W_x: np.ndarray, X_tm: np.ndarray, dA: np.ndarray):
    """eq. (G11)/(G13): dW_x = X^T dA and dX = dA W_x^T, one product each over T*B rows."""
    T, B, kH = dA.shape
    dA2 = dA.reshape(T * B, kH)  # (T*B, kH)
    if np.issubdtype(X_tm.dtype, np.integer):  # (V, kH); no input gradient for ids
        V = W_x.shape[0]
        if V > ONE_HOT_ROWS:
            return scatter_add_rows(V, X_tm, dA2), None
        return _one_hot(V, X_tm, dA.dtype) @ dA2, None
    dW_x = X_tm.reshape(T * B, -1).T @ dA2  # (E, kH)
    dX = np.swapaxes((dA2 @ W_x.T).reshape(T, B, -1), 0, 1)  # (B, T, E) view
    return dW_x, dX


#: Padding of the staging copy in :func:`transposed`: 64 bytes, so consecutive rows are not 4 KiB apart.
_PAD_BYTES = 64


def transposed(W: np.ndarray) -> np.ndarray:
    """W^T as a new C-contiguous array, copied by way of a padded staging copy of W.

    A plain ``np.ascontiguousarray(W.T)`` reads W a column at a time. With rows of 1,024 float32 (W_hg of an
    LSTM at H 256), consecutive elements of a column are 4 KiB apart, so they fall into the same few sets of the
    L1 cache and evict each other (our reading of the timing, not a count of misses): the copy took ~1 ms at
    (256, 1024) here. Copying W
    first into rows padded by 64 bytes (contiguous runs: fast) and transposing from there took ~0.23 ms
    (session 22, one thread, best of 50). The values are the same numbers; only the order of copying changes.

    >>> transposed(np.arange(6.0).reshape(2, 3))
    array([[0., 3.],
           [1., 4.],
           [2., 5.]])
    """
    R, C = W.shape
    pad = max(_PAD_BYTES // W.itemsize, 1)
    staging = np.empty((R, C + pad), dtype=W.dtype)  # (R, C + pad): rows not a power of two bytes apart
    staging[:, :C] = W
    out = np.empty((C, R), dtype=W.dtype)
    np.copyto(out, staging[:, :C].T)
    return out


def _blocks(W: np.ndarray, k: int) -> np.ndarray:
    """(R, kH) -> (k, R, H), a copy: the columns of each gate as a matrix of its own."""
    R, kH = W.shape
    return np.ascontiguousarray(W.reshape(R, k, kH // k).transpose(1, 0, 2))


def _unblock(W: np.ndarray) -> np.ndarray:
    """(k, R, H) -> (R, kH), the inverse of :func:`_blocks`."""
    k, R, H = W.shape
    return np.ascontiguousarray(W.transpose(1, 0, 2)).reshape(R, k * H)


def _gate_products(W_x: np.ndarray, b: np.ndarray, X: np.ndarray, k: int, scale: np.ndarray):
    """eq. (L1), the input part of every step at once, a gate at a time: (k, T, B, H), and the time-major inputs.

    ``scale`` (kH,) multiplies every column (the LSTM's gate scale, a power of two: exact); it and the bias go
    into the small (V, kH) or (E, kH) matrix, before the T B rows are made.
    """
    B, T = X.shape[:2]
    b = b * scale  # (kH,)
    if np.issubdtype(X.dtype, np.integer):  # one-hot ids: a row lookup
        X_tm = np.ascontiguousarray(X.T)  # (T, B)
        table = _blocks(W_x * scale + b, k)  # (k, V, H): x_t W_x + b is the row i_t of each block
        return np.take(table, X_tm, axis=1), X_tm  # (k, T, B, H)
    X_tm = _time_major(X)  # (T, B, E)
    A = np.matmul(X_tm.reshape(T * B, -1), _blocks(W_x * scale, k))  # (k, T*B, H): k products
    A += b.reshape(k, 1, -1)
    return A.reshape(k, T, B, -1), X_tm


#: Up to this many rows of a table read by ids, its gradient is a one-hot product rather than a scatter-add.
ONE_HOT_ROWS = 512


def _initial(state, B: int, H: int, dtype) -> np.ndarray:
    """The carried-in state as a fresh (B, H) array; None means zeros (a fresh start)."""
    return np.zeros((B, H), dtype=dtype) if state is None else np.array(state, dtype=dtype)


# --- GRU: eq. (G1)-(G13) --------------------------------------------------------------------------


def gru_step(params: dict, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One GRU step written plainly, eq. (G1)-(G6): x (B, E), h (B, H) -> the new h (B, H).

    >>> H = 2                                  # all weights zero: r = z = 1/2, n = 0, h_t = h_{t-1} / 2
    >>> p = {"W_xg": np.zeros((3, 3 * H)), "W_hg": np.zeros((H, 3 * H)), "b_g": np.zeros(3 * H),
    ...      "b_hn": np.zeros(H)}
    >>> gru_step(p, np.ones((1, 3)), np.array([[1.0, -4.0]]))
    array([[ 0.5, -2. ]])
    """
    ar, az, an = np.split(x @ params["W_xg"] + params["b_g"], 3, axis=1)  # (B, H) each, eq. (G1)
    hr, hz, hn = np.split(h @ params["W_hg"], 3, axis=1)  # (B, H) each, eq. (G2)
    hn = hn + params["b_hn"]
    r = sigmoid(ar + hr)  # eq. (G3)
    z = sigmoid(az + hz)  # eq. (G4)
    n = np.tanh(an + r * hn)  # eq. (G5)
    return (1.0 - z) * n + z * h  # eq. (G6)


def gru_forward(params: dict, inputs):
    """One GRU layer over T steps: eq. (G1)-(G6).

    Parameters
    ----------
    params : dict with "W_xg" (E, 3H), "W_hg" (H, 3H), "b_g" (3H,), "b_hn" (H,)
    inputs : (X, h0)
        X : float array (B, T, E), or int array (B, T) of one-hot ids
        h0 : (B, H), the state carried in; None means zeros

    Returns
    -------
    (H_out, h_T) : ((B, T, H) states, (B, H) last state)
    cache : dict

    >>> rng = np.random.default_rng(0)
    >>> p = {"W_xg": rng.normal(size=(3, 12)), "W_hg": rng.normal(size=(4, 12)), "b_g": np.zeros(12),
    ...      "b_hn": np.zeros(4)}
    >>> (Hs, hT), _ = gru_forward(p, (rng.normal(size=(2, 5, 3)), None))
    >>> Hs.shape, bool(np.all(Hs[:, -1] == hT))
    ((2, 5, 4), True)
    """
    W_hg, b_hn = params["W_hg"], params["b_hn"]  # (H, 3H) (H,)
    X, h0 = inputs
    B, T = X.shape[:2]
    H = W_hg.shape[0]
    A, X_tm = _input_products(params["W_xg"], params["b_g"], X)  # (T, B, 3H) eq. (G1)
    Hs = np.empty((T + 1, B, H), dtype=W_hg.dtype)  # Hs[t] = h_t, Hs[0] = h_0
    Hs[0] = _initial(h0, B, H, W_hg.dtype)
    RZ = np.empty((T, B, 2 * H), dtype=W_hg.dtype)  # [r_t | z_t], side by side as in the weights
    N, HN = (np.empty((T, B, H), dtype=W_hg.dtype) for _ in range(2))  # n_t, hn_t
    G = np.empty((B, 3 * H), dtype=W_hg.dtype)  # (B, 3H) h_{t-1} W_hg
    with one_blas_thread():
        for t in range(T):  # the recurrence
            np.dot(Hs[t], W_hg, out=G)  # eq. (G2)
            np.add(G[:, 2 * H :], b_hn, out=HN[t])  # hn_t
            sigmoid(np.add(A[t, :, : 2 * H], G[:, : 2 * H], out=RZ[t]), out=RZ[t])  # r_t, z_t, eq. (G3)-(G4)
            np.multiply(RZ[t, :, :H], HN[t], out=N[t])
            N[t] += A[t, :, 2 * H :]
            np.tanh(N[t], out=N[t])  # n_t, eq. (G5)
            np.subtract(Hs[t], N[t], out=Hs[t + 1])  # h_{t-1} - n_t
            Hs[t + 1] *= RZ[t, :, H:]
            Hs[t + 1] += N[t]  # h_t = n_t + z_t (h_{t-1} - n_t), eq. (G6)
    cache = {"X": X_tm, "Hs": Hs, "RZ": RZ, "N": N, "HN": HN}
    return (np.swapaxes(Hs[1:], 0, 1), Hs[T]), cache


def gru_backward(params: dict, cache: dict, d_outputs):
    """Backpropagation through time for one GRU layer: eq. (G7)-(G13).

    Parameters
    ----------
    d_outputs : (dH, dh_T), (B, T, H) from above (or None) and (B, H) from later chunks (or None)

    Returns
    -------
    grads : dict "W_xg", "W_hg", "b_g", "b_hn"
    (dX, dh0) : (B, T, E) (None for one-hot ids) and (B, H)
    """
    W_hg = params["W_hg"]  # (H, 3H)
    Hs, RZ, N, HN = cache["Hs"], cache["RZ"], cache["N"], cache["HN"]
    dH, dhT = d_outputs
    T, B, H = N.shape
    R, Z = RZ[..., :H], RZ[..., H:]  # (T, B, H) views
    dt = W_hg.dtype
    # Every gradient of step t is dh_t times a factor that does not depend on dh_t (eq. G7-G9):
    #   dar = dh (1 - z)(1 - n^2) hn r (1 - r),  daz = dh (h_{t-1} - n) z (1 - z),  dan = dh (1 - z)(1 - n^2)
    #   dhn = dan r.
    # The factors are computed for all steps at once, before the loop, into the buffers that the loop
    # then multiplies by dh_t in place: the loop keeps only what is truly sequential.
    dAx = np.empty((T, B, 3 * H), dtype=dt)  # becomes [dar | daz | dan], the input-side gradients
    dAh = np.empty((T, B, 3 * H), dtype=dt)  # becomes [dar | daz | dhn], the recurrent-side gradients
    K = dAx[..., 2 * H :]  # (1 - z)(1 - n^2), the factor of dan
    np.multiply(N, N, out=K)
    np.subtract(1.0, K, out=K)
    K *= 1.0 - Z
    np.multiply(K, HN, out=dAx[..., :H])
    dAx[..., :H] *= R * (1.0 - R)  # factor of dar
    np.subtract(Hs[:-1], N, out=dAx[..., H : 2 * H])
    dAx[..., H : 2 * H] *= Z * (1.0 - Z)  # factor of daz
    dAh[..., : 2 * H] = dAx[..., : 2 * H]
    np.multiply(K, R, out=dAh[..., 2 * H :])  # factor of dhn
    dH_tm = None if dH is None else _time_major(dH)  # (T, B, H)
    dh = _initial(dhT, B, H, dt)  # (B, H) carried back
    tmp = np.empty((B, H), dtype=dt)
    W_hg_T = transposed(W_hg)  # (3H, H); a copy: the BLAS is 1.5x faster on it than on a view
    with one_blas_thread():
        for t in range(T - 1, -1, -1):
            if dH_tm is not None:
                dh += dH_tm[t]  # dh_t: from above plus from step t + 1
            dh3 = dh[:, None, :]  # (B, 1, H), broadcast over the three gate blocks
            for buffer in (dAx[t].reshape(B, 3, H), dAh[t].reshape(B, 3, H)):  # (B, 3, H) views
                buffer *= dh3  # eq. (G7)-(G9)
            # eq. (G10): dh_{t-1} = dh z + [dar | daz | dhn] W_hg^T
            dh *= Z[t]
            np.dot(dAh[t], W_hg_T, out=tmp)
            dh += tmp
    dAh2 = dAh.reshape(T * B, 3 * H)
    grads = {
        "W_hg": Hs[:-1].reshape(T * B, H).T @ dAh2,  # (H, 3H) eq. (G12)
        "b_g": dAx.reshape(T * B, 3 * H).sum(axis=0),  # (3H,) eq. (G11)
        "b_hn": dAh2[:, 2 * H :].sum(axis=0),  # (H,) eq. (G12)
    }
    grads["W_xg"], dX = _input_grads(params["W_xg"], cache["X"], dAx)  # eq. (G11), (G13)
    return grads, (dX, dh)


# --- LSTM: eq. (L1)-(L12) -------------------------------------------------------------------------


def lstm_step(params: dict, x: np.ndarray, h: np.ndarray, c: np.ndarray):
    """One LSTM step written plainly, eq. (L1)-(L5): x (B, E), h and c (B, H) -> the new (h, c).

    >>> H = 1                                  # all weights zero: i = f = o = 1/2, g = 0, so c_t = c_{t-1} / 2
    >>> p = {"W_xg": np.zeros((2, 4 * H)), "W_hg": np.zeros((H, 4 * H)), "b_g": np.zeros(4 * H)}
    >>> h, c = lstm_step(p, np.ones((1, 2)), np.zeros((1, 1)), np.array([[2.0]]))
    >>> c, bool(np.isclose(h, 0.5 * np.tanh(1.0)))
    (array([[1.]]), True)
    """
    a = x @ params["W_xg"] + h @ params["W_hg"] + params["b_g"]  # (B, 4H) eq. (L1)
    ai, af, ag, ao = np.split(a, 4, axis=1)
    i, f, o = sigmoid(ai), sigmoid(af), sigmoid(ao)  # eq. (L2)
    g = np.tanh(ag)  # eq. (L3)
    c = f * c + i * g  # eq. (L4)
    return o * np.tanh(c), c  # eq. (L5)


def lstm_forward(params: dict, inputs, steps: int | None = None, on_block=None):
    """One LSTM layer over T steps: eq. (L1)-(L5).

    Parameters
    ----------
    params : dict with "W_xg" (E, 4H), "W_hg" (H, 4H), "b_g" (4H,)
    inputs : (X, h0, c0)
        X : float array (B, T, E), or int array (B, T) of one-hot ids
        h0, c0 : (B, H) each, the state carried in; None means zeros

    Returns
    -------
    steps, on_block : int and a function, or None (the default)
        ``on_block(t0, t1, H_block)`` is called as soon as the states of steps t0 .. t1 - 1 are known, blocks of
        ``steps`` steps (:func:`time_blocks`), with H_block (B, t1 - t0, H) a view: an overlapped training step
        (:mod:`scratchgen.nn.lstm_overlap`) hands them to another thread while this one runs the next block.

    Returns
    -------
    (H_out, h_T, c_T) : ((B, T, H) states, (B, H) last state, (B, H) last memory cell)
    cache : dict
    """
    W_hg = params["W_hg"]  # (H, 4H)
    X, h0, c0 = inputs
    B, T = X.shape[:2]
    H = W_hg.shape[0]
    dt = W_hg.dtype
    # All four gates with one exp (eq. L2'): with z = -s a, s = 1 on the blocks i, f, o and s = 2 on g,
    # 1 / (1 + exp(z)) is sigma(a) on i, f, o and sigma(2 a) on g, and tanh(a) = 2 sigma(2 a) - 1.
    # Multiplying by -1 or -2 is exact in binary floating point, so -s goes into the weights, once.
    neg_s = np.full(4 * H, -1.0, dtype=dt)  # (4H,) [-1 | -1 | -2 | -1]
    neg_s[2 * H : 3 * H] = -2.0
    # Gate-major: A[k, t] is the (B, H) block of gate k at step t, so each gate is a contiguous array and
    # every elementwise operation below runs over a few long rows rather than B short ones.
    A, X_tm = _gate_products(params["W_xg"], params["b_g"], X, 4, neg_s)  # (4, T, B, H) -s (x_t W_xg + b_g)
    W_h = _blocks(W_hg * neg_s, 4)  # (4, H, H)
    Hs = np.empty((T + 1, B, H), dtype=dt)  # Hs[t] = h_t
    Cs = np.empty((T + 1, B, H), dtype=dt)  # Cs[t] = c_t
    TC = np.empty((T, B, H), dtype=dt)  # tanh(c_t)
    Hs[0] = _initial(h0, B, H, dt)
    Cs[0] = _initial(c0, B, H, dt)
    G = np.empty((4, B, H), dtype=dt)  # -s h_{t-1} W_hg, a block a gate
    tmp = np.empty((B, H), dtype=dt)
    # exp(z) overflows to inf where a gate saturates at 0; 1 / (1 + inf) = 0 is then the right value
    with one_blas_thread(), np.errstate(over="ignore"):
        for t0, t1 in time_blocks(T, steps):
            _lstm_steps(A, W_h, Hs, Cs, TC, G, tmp, t0, t1)
            if on_block is not None:
                on_block(t0, t1, np.swapaxes(Hs[t0 + 1 : t1 + 1], 0, 1))
    cache = {"X": X_tm, "Hs": Hs, "Cs": Cs, "TC": TC, "gates": A}
    return (np.swapaxes(Hs[1:], 0, 1), Hs[T], Cs[T]), cache


def _lstm_steps(A, W_h, Hs, Cs, TC, G, tmp, t0: int, t1: int) -> None:
    """Steps t0 .. t1 - 1 of lstm_forward's recurrence, in place on its buffers (names as there)."""
    for t in range(t0, t1):  # the recurrence; A[:, t] becomes the gates i_t, f_t, g_t, o_t in place
        a = A[:, t]  # (4, B, H)
        np.matmul(Hs[t], W_h, out=G)
        a += G  # z_t = -s a_t, eq. (L1)
        np.exp(a, out=a)
        a += 1.0
        np.divide(1.0, a, out=a)  # i_t, f_t, o_t and sigma(2 ag_t): eq. (L2')
        i, f, g, o = a  # (B, H) each
        g *= 2.0
        g -= 1.0  # g_t = tanh(ag_t), eq. (L3)
        c = Cs[t + 1]
        np.multiply(f, Cs[t], out=c)
        np.multiply(i, g, out=tmp)
        c += tmp  # c_t = f c_{t-1} + i g, eq. (L4)
        np.tanh(c, out=TC[t])
        np.multiply(o, TC[t], out=Hs[t + 1])  # h_t, eq. (L5)


def lstm_backward(params: dict, cache: dict, d_outputs, steps: int | None = None, submit=None):
    """Backpropagation through time for one LSTM layer: eq. (L6)-(L12).

    Parameters
    ----------
    d_outputs : (dH, dh_T, dc_T): (B, T, H) from above and (B, H) each from later chunks (any may be None);
        dH may also be a function ``dH(k)`` giving the (B, t1 - t0, H) gradient of the k-th block of
        :func:`time_blocks` (T, steps), asked for when the loop reaches that block
    steps, submit : int and a function, or None (the default)
        With ``submit``, the loop goes back over blocks of ``steps`` steps, and as soon as a block's gate
        gradients are known, ``submit(fn, *args)`` (a ``ThreadPoolExecutor.submit``) hands its part of the
        products (L11)-(L12) to another thread; the parts are added in a fixed order (last block first),
        whichever thread finishes first (:mod:`scratchgen.nn.lstm_overlap`).

    Returns
    -------
    grads : dict "W_xg", "W_hg", "b_g"
    (dX, dh0, dc0) : (B, T, E) (None for one-hot ids), (B, H) and (B, H)
    """
    W_hg = params["W_hg"]  # (H, 4H)
    Hs, Cs, TC, gates = cache["Hs"], cache["Cs"], cache["TC"], cache["gates"]  # gates (4, T, B, H)
    dH, dhT, dcT = d_outputs
    T, B, H = TC.shape
    dt = W_hg.dtype
    dh = _initial(dhT, B, H, dt)  # (B, H)
    dc = _initial(dcT, B, H, dt)  # (B, H)
    # dA[t] = [dai | daf | dag | dao]_t as (B, 4H) rows laid out as the columns of W_hg: eq. (L10) is then ONE
    # product over K = 4H (faster than four over K = H and a sum), and eq. (L11) needs no regrouping
    dA = np.empty((T, B, 4 * H), dtype=dt)
    W_hg_T = transposed(W_hg)  # (4H, H); a copy, as in gru_backward
    work = (np.empty((B, H), dtype=dt),)
    blocks = time_blocks(T, steps or FACTOR_STEPS)
    factors: list = [None] * len(blocks)  # the futures of _lstm_factors, with submit
    if submit is not None and not cache.get("factors"):
        for k in range(len(blocks) - 1, -1, -1):  # in the order the loop needs them
            factors[k] = submit(_lstm_factors, gates, Cs, TC, *blocks[k])
    parts = []  # the futures of the blocks' products, last block first
    with one_blas_thread():
        for k in range(len(blocks) - 1, -1, -1):
            t0, t1 = blocks[k]
            if factors[k] is not None:
                factors[k].result()
            elif not cache.get("factors"):
                _lstm_factors(gates, Cs, TC, t0, t1)
            dH_block = dH(k) if callable(dH) else None if dH is None else dH[:, t0:t1]  # (B, t1 - t0, H)
            _lstm_back_steps(gates, Cs, TC, W_hg_T, dA, dh, dc, dH_block, work, t0, t1)
            if submit is not None:
                parts.append(submit(_lstm_param_grads, params["W_xg"], cache["X"], Hs, dA, t0, t1))
    cache["factors"] = True  # gates, TC and Cs[:T] now hold the factors: a second backward reads them as they are
    if submit is None:
        grads, dX = _lstm_param_grads(params["W_xg"], cache["X"], Hs, dA, 0, T)
        return grads, (dX, dh, dc)
    results = [part.result() for part in parts]
    grads = results[0][0]
    for g, _ in results[1:]:  # in block order, last block first: the same sums whatever thread ran them
        for key in grads:
            grads[key] += g[key]
    dX = None if results[0][1] is None else np.concatenate([r[1] for r in results[::-1]], axis=1)  # (B, T, E)
    return grads, (dX, dh, dc)


#: Time steps a block of lstm_backward's factors (:func:`_lstm_factors`) on one thread: small enough to stay in cache.
FACTOR_STEPS = 8


def _lstm_factors(gates: np.ndarray, Cs: np.ndarray, TC: np.ndarray, t0: int, t1: int) -> None:
    """The factors of eq. (L6)-(L9) that do not depend on dh_t or dc_t, for steps t0 .. t1 - 1 at once, in place.

    Every gate gradient of step t is dh_t or dc_t times such a factor::

        dai = dc Ki, Ki = i (1 - i) g;   daf = dc Kf, Kf = f (1 - f) c_{t-1};   dag = dc Kg, Kg = (1 - g^2) i
        dao = dh Ko, Ko = o (1 - o) tanh(c);   dc <- dc + dh Kc, Kc = o (1 - tanh(c)^2)

    They overwrite what only they needed: gates[0..3] become Ki, Kf, Kg, Ko, TC becomes Kc, and Cs[t] (c_{t-1})
    becomes f_t, the factor of the copy path (L8). The loop of lstm_backward then has 6 NumPy calls a step.
    """
    i, f, g, o = gates[:, t0:t1]  # (t1 - t0, B, H) each
    tc, c_prev = TC[t0:t1], Cs[t0:t1]
    # 16 NumPy calls, one copy: each factor goes into the slot of what it was made from, and a temporary holds
    # the one part that the other factor of the pair still needs (tanh(c) for Ko, c_{t-1} for Kf, g for Ki)
    w = np.subtract(1.0, o)
    w *= tc  # (1 - o) tanh(c)
    tc *= tc
    np.subtract(1.0, tc, out=tc)
    tc *= o  # Kc = o (1 - tanh(c)^2)
    o *= w  # Ko = o (1 - o) tanh(c)
    np.subtract(1.0, f, out=w)
    w *= c_prev  # (1 - f) c_{t-1}
    c_prev[...] = f  # the copy path's factor f_t
    f *= w  # Kf = f (1 - f) c_{t-1}
    np.subtract(1.0, i, out=w)
    w *= g  # (1 - i) g
    g *= g
    np.subtract(1.0, g, out=g)
    g *= i  # Kg = (1 - g^2) i
    i *= w  # Ki = i (1 - i) g


def _lstm_back_steps(gates, Cs, TC, W_hg_T, dA, dh, dc, dH, work, t0: int, t1: int) -> None:
    """Steps t1 - 1 down to t0 of lstm_backward's loop, in place on dA, dh and dc (names as there, the factors
    of :func:`_lstm_factors` in place); dH (B, t1 - t0, H) is the gradient from above of those steps, or None."""
    u = work[0]  # (B, H)
    B, H = dh.shape
    for t in range(t1 - 1, t0 - 1, -1):
        d = dA[t].reshape(B, 4, H).transpose(1, 0, 2)  # (4, B, H) gate-major view of the (B, 4H) rows
        if dH is not None:
            dh += dH[:, t - t0]  # dh_t: from above plus from step t + 1
        np.multiply(gates[3, t], dh, out=d[3])  # dao = dh Ko, eq. (L6), (L9)
        np.multiply(TC[t], dh, out=u)
        dc += u  # dc_t += dh o (1 - tanh(c)^2), eq. (L6)
        np.multiply(gates[:3, t], dc, out=d[:3])  # dai, daf, dag = dc [Ki | Kf | Kg], eq. (L7), (L9)
        dc *= Cs[t]  # dc_{t-1} = dc_t f_t, eq. (L8)
        np.dot(dA[t], W_hg_T, out=dh)  # dh_{t-1}, eq. (L10)


def _lstm_param_grads(W_x: np.ndarray, X_tm: np.ndarray, Hs: np.ndarray, dA: np.ndarray, t0: int, t1: int):
    """eq. (L11)-(L12) over steps t0 .. t1 - 1: ({"W_hg", "b_g", "W_xg"}, dX (B, t1 - t0, E) or None)."""
    H = Hs.shape[2]
    dA2 = dA[t0:t1].reshape(-1, dA.shape[2])  # ((t1 - t0) B, 4H)
    dW_x, dX = _input_grads(W_x, X_tm[t0:t1], dA[t0:t1])  # eq. (L11), (L12)
    # eq. (L11) db_g = sum_t da_t; with one-hot ids every row da_t went into exactly one row of dW_xg, so the
    # sum of dW_xg's V rows is the same sum, read from a (V, 4H) array instead of the (T B, 4H) one
    rows = dW_x if np.issubdtype(X_tm.dtype, np.integer) else dA2
    grads = {
        "W_hg": Hs[t0:t1].reshape(-1, H).T @ dA2,  # (H, 4H) eq. (L11): h_{t-1}^T da_t
        "b_g": rows.sum(axis=0),  # (4H,) eq. (L11)
        "W_xg": dW_x,
    }
    return grads, dX


def time_blocks(T: int, steps: int | None) -> list[tuple[int, int]]:
    """The steps [t0, t1) of each block of ``steps`` steps (the last may be shorter); None: one block.

    >>> time_blocks(10, 4), time_blocks(10, None)
    ([(0, 4), (4, 8), (8, 10)], [(0, 10)])
    """
    steps = steps or max(T, 1)
    return [(t0, min(t0 + steps, T)) for t0 in range(0, T, steps)]


# --- stacks of L layers ---------------------------------------------------------------------------

_NAMES = {"gru": ("W_xg", "W_hg", "b_g", "b_hn"), "lstm": ("W_xg", "W_hg", "b_g")}


def cell_params(params: dict, layer: int, cell: str) -> dict:
    """The parameters of one layer of a stack: keys "W_xg.l" -> "W_xg" etc.; cell is "gru" or "lstm"."""
    return {name: params[f"{name}.{layer}"] for name in _NAMES[cell]}


def gru_stack_forward(params: dict, inputs):
    """L GRU layers, each reading the states of the one below.

    inputs : (X, h0) with h0 (L, B, H). Returns ((H_top (B, T, H), h_T (L, B, H)), cache).
    """
    X, h0 = inputs
    caches, last = [], []
    for layer in range(h0.shape[0]):
        (X, hT), c = gru_forward(cell_params(params, layer, "gru"), (X, h0[layer]))
        caches.append(c)
        last.append(hT)
    return (X, np.stack(last)), {"layers": caches}


def gru_stack_backward(params: dict, cache: dict, d_outputs):
    """Top layer first: each layer's dX is the dH of the one below. Returns grads and (dX, dh0 (L, B, H))."""
    dH, dhT = d_outputs
    caches = cache["layers"]
    grads: dict = {}
    dh0: list = [None] * len(caches)  # dh0[l]: (B, H), filled top layer first
    for layer in range(len(caches) - 1, -1, -1):
        g, (dH, dh0[layer]) = gru_backward(
            cell_params(params, layer, "gru"), caches[layer], (dH, None if dhT is None else dhT[layer])
        )
        grads.update({f"{name}.{layer}": value for name, value in g.items()})
    return grads, (dH, np.stack(dh0))


def lstm_stack_forward(params: dict, inputs, steps: int | None = None, on_block=None):
    """L LSTM layers. inputs : (X, h0, c0) with h0, c0 (L, B, H); ``on_block``: the top layer's (lstm_forward).

    Returns ((H_top (B, T, H), h_T (L, B, H), c_T (L, B, H)), cache).
    """
    X, h0, c0 = inputs
    caches, last_h, last_c = [], [], []
    L = h0.shape[0]
    for layer in range(L):
        top = (steps, on_block) if layer == L - 1 else (None, None)
        (X, hT, cT), c = lstm_forward(cell_params(params, layer, "lstm"), (X, h0[layer], c0[layer]), *top)
        caches.append(c)
        last_h.append(hT)
        last_c.append(cT)
    return (X, np.stack(last_h), np.stack(last_c)), {"layers": caches}


def lstm_stack_backward(params: dict, cache: dict, d_outputs, steps: int | None = None, submit=None):
    """Top layer first. d_outputs : (dH, dh_T, dc_T). Returns grads and (dX, dh0, dc0), (L, B, H) each.

    ``steps`` and ``submit`` go to each layer's lstm_backward (dH as there: an array or a function of a block).
    """
    dH, dhT, dcT = d_outputs
    caches = cache["layers"]
    L = len(caches)
    grads: dict = {}
    dh0: list = [None] * L
    dc0: list = [None] * L
    for layer in range(L - 1, -1, -1):
        d_last = (None if dhT is None else dhT[layer], None if dcT is None else dcT[layer])
        g, (dH, dh0[layer], dc0[layer]) = lstm_backward(
            cell_params(params, layer, "lstm"), caches[layer], (dH, *d_last), steps, submit
        )
        grads.update({f"{name}.{layer}": value for name, value in g.items()})
    return grads, (dH, np.stack(dh0), np.stack(dc0))
