r"""The pieces of a decoder-only Transformer (GPT-2's layout), each a forward/backward pair of plain functions.

A recurrent network squeezes the whole past into one state vector h_t. Attention (Vaswani et al. 2017,
"Attention Is All You Need") instead lets position t look back at every earlier position s <= t directly,
with a weight computed from how well the query of t matches the key of s. GPT-2 (Radford et al. 2019)
stacks blocks of attention and a small MLP, each wrapped as ``x + f(LayerNorm(x))`` ("pre-LN"), so that the
residual path carries the signal (and its gradient) unchanged through the whole depth.

Letters: B batch, T time steps (the context), D model width, A heads, d = D / A the width of one head,
F the MLP width (4 D in GPT-2), V vocabulary, L blocks. Row vectors, batch first: X is (B, T, D).
Every piece has the signature of ``layers.py``: ``forward(params, inputs) -> (outputs, cache)`` and
``backward(params, cache, d_outputs) -> (grads, d_inputs)``.

Forward::

    mu = mean_k x_k,  var = mean_k (x_k - mu)^2,  xh = (x - mu) / sqrt(var + eps)             (A1)
    LN(x) = g * xh + b                     LayerNorm (Ba et al. 2016), eps = 1e-5 as PyTorch (A2)
    GELU(x) = x/2 (1 + tanh(u)),  u = c (x + 0.044715 x^3),  c = sqrt(2 / pi)                 (A3)
            = x sigma(2u),  sigma(z) = 1 / (1 + e^-z),  as (1 + tanh u) / 2 = sigma(2u)        (A3')
    [Q | K | V] = X W_qkv + b_qkv;  each (B, T, D) split into A heads of d columns: (B, A, T, d) (A4)
    S = Q K^T / sqrt(d);  S[t, s] = -inf for s > t (the causal mask)                          (A5)
    P = softmax over s of S  (row t weighs the positions s <= t; masked entries get 0)        (A6)
    P[t, s] = exp(S[t, s] - m_t) / sum_s' exp(S[t, s'] - m_t)  for any m_t:  m_t = max_s S[t, s], or
    m_t = 0 when max_{s <= t} S[t, s] <= Lambda and S[t, t] >= -Lambda (then no overflow, no underflow)  (A6')
    O = P V  (B, A, T, d), heads merged back into (B, T, D);  attn(X) = O W_o + b_o            (A7)
    mlp(X) = GELU(X W_fc + b_fc) W_proj + b_proj                                               (A8)
    block(X) = X' + mlp(LN_2(X')),  X' = X + attn(LN_1(X))                                     (A9)
    X_0 = C[ids] + P_pos[t0 : t0 + T]      token plus position embedding (positions t0, t0+1..) (A10)
    logits = LN_f(X_L) W_out + b_out  (W_out = C^T when the weights are tied)                 (A11)

GELU is the tanh approximation that GPT-2 uses (Hendrycks & Gimpel 2016, "Gaussian Error Linear Units",
section 2), the same as PyTorch's ``nn.GELU(approximate="tanh")``; it differs from the exact
``x Phi(x)`` by less than 5e-4.

Backward (dZ = d loss / d Z; sums over the rows that share a weight, as in ``layers.py``)::

    dxh = dy * g;  dg = sum dy * xh,  db = sum dy                                              (A12)
    dx = (dxh - mean_k dxh - xh * mean_k (dxh * xh)) / sqrt(var + eps)                         (A13)
    GELU'(x) = (1 + tanh u) / 2 + x/2 (1 - tanh(u)^2) c (1 + 3 * 0.044715 x^2)                 (A14)
             = sigma (1 + (1 - sigma) 2x c (1 + 3 * 0.044715 x^2)),  sigma = sigma(2u)         (A14')
             = sigma + GELU(x) (1 - sigma) 2c (1 + 3 * 0.044715 x^2)      as GELU(x) = x sigma   (A14'')
    dO = dY W_o^T,  dW_o = O^T dY,  db_o = sum dY                                              (A15)
    dP = dO V^T,  dV = P^T dO                                                                  (A16)
    dS = P * (dP - sum_s (dP * P))      softmax backward; 0 wherever P = 0, so on the mask      (A17)
    sum_s dP[t, s] P[t, s] = sum_s P[t, s] (dO_t . v_s) = dO_t . O_t     by (A16) and (A7)     (A17')
    dQ = dS K / sqrt(d),  dK = dS^T Q / sqrt(d)                                                (A18)
    dW_qkv = X^T [dQ | dK | dV],  db_qkv = sum [dQ | dK | dV],  dX = [dQ | dK | dV] W_qkv^T      (A19)
    dX = dX' + dLN_2-path,  dX' = dY + d(attn path): the residual adds the gradients of both    (A20)
    dC[i] += dX_0 at the positions holding token i,  dP_pos[t0 + t] = sum_b dX_0[b, t]         (A21)

A LayerNorm followed by an affine map is one affine map of xh (the block computes LN_1 with W_qkv and
LN_2 with W_fc so; the pieces above stay apart for reading)::

    LN(x) W + c = xh W~ + c~,   W~ = diag(g) W,   c~ = b W + c                                 (A22)
    dW = diag(g) dW~ + b^T dc~,  dc = dc~,  dg_k = sum_j W[k, j] dW~[k, j],  db = W dc~,
    dxh = dZ W~^T  (= dy * g of eq. (A12), dy = dZ W^T),  dW~ = xh^T dZ,  dc~ = sum dZ           (A23)

Generation with a key/value cache: the keys and values of positions 0..t-1 do not change when token t
arrives (row t of (A5)-(A7) needs only q_t and the keys and values of s <= t, because of the mask), so
:func:`attention_step` computes q_t, k_t, v_t of the new position only, appends k_t, v_t to the cache and
attends over it: one step costs O(t D) instead of recomputing the whole context, O(t^2 D).

The parameter names of a block are prefixed: ``ln1.g``, ``ln1.b``, ``attn.W_qkv``, ``attn.b_qkv``,
``attn.W_o``, ``attn.b_o``, ``ln2.g``, ``ln2.b``, ``mlp.W_fc``, ``mlp.b_fc``, ``mlp.W_proj``, ``mlp.b_proj``; in
a whole network block l adds ``h.l.`` in front, and there are ``C`` (V, D), ``P_pos`` (T_max, D), ``lnf.g``,
``lnf.b``, ``b_out`` (V,) and, unless the weights are tied, ``W_out`` (D, V).
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import Future

import numpy as np

from ..errors import ScratchgenError
from .layers import embedding_backward, embedding_forward
from .overlap import Overlap, Pending, part, run_now, split

__all__ = [
    "layernorm_forward",
    "layernorm_backward",
    "gelu_forward",
    "gelu_backward",
    "dense_forward",
    "dense_backward",
    "attention_forward",
    "attention_backward",
    "attention_weights",
    "mlp_forward",
    "mlp_backward",
    "block_forward",
    "block_backward",
    "embed_forward",
    "embed_backward",
    "transformer_forward",
    "transformer_backward",
    "kv_cache",
    "attention_step",
    "block_step",
    "transformer_step",
    "LN_EPS",
]

LN_EPS = 1e-5  # PyTorch's default for nn.LayerNorm
_C = math.sqrt(2.0 / math.pi)  # c of eq. (A3)
_K = 0.044715  # the cubic coefficient of eq. (A3)


def _sub(params: dict, prefix: str) -> dict:
    """The parameters under a prefix, the prefix removed: _sub(p, "ln1.") -> {"g": .., "b": ..}."""
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def _prefixed(grads: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in grads.items()}


# --- LayerNorm: eq. (A1), (A2), (A12), (A13) ----------------------------------------------------------
#
# The fast path below works on rows: an input (..., D) is viewed as (N, D), N the product of the leading
# axes, so that each equation is one NumPy call over every row at once, and it writes into arrays it has
# just made (``out=``, ``*=``) instead of making a temporary for every operator. The arithmetic is that of
# the equations; only the rounding can differ from the one-line versions in ``transformer_reference.py``.


def _row_dot(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """sum_k A[n, k] B[n, k] for every row n of two (N, K) arrays: (N,), without an (N, K) temporary."""
    return np.einsum("nk,nk->n", A, B)


@functools.lru_cache(maxsize=64)
def _filled(shape: tuple, value: float, dtype: np.dtype) -> np.ndarray:
    """A read-only array of one value (the ones and 1/D of the matrix-vector products below), made once."""
    a = np.full(shape, value, dtype=dtype)
    a.setflags(write=False)
    return a


def _col_sums(A: np.ndarray) -> np.ndarray:
    """sum_n A[n, k] for every column k of an (N, K) array: (K,), as the product ``1^T A``.

    The same sums as ``A.sum(axis=0)`` (which also adds the rows one after another), by one BLAS call:
    measured 1.5 to 4 times faster on the (B T, D) to (B T, 4D) arrays of a training step.
    """
    return _filled((len(A),), 1.0, A.dtype) @ A


def _normalise(X: np.ndarray):
    """eq. (A1) alone: xh (N, D) for the rows of X (..., D), and the cache of :func:`_normalise_backward`."""
    D = X.shape[-1]
    X2 = X.reshape(-1, D)  # (N, D)
    mu = X2 @ _filled((D,), 1.0 / D, X2.dtype)  # (N,) the mean of each row, one matrix-vector product
    Xh = X2 - mu[:, None]  # (N, D) x - mu
    var = _row_dot(Xh, Xh)  # (N,) D times the variance
    var *= 1.0 / D
    var += LN_EPS
    inv_sigma = np.sqrt(var, out=var)
    np.divide(1.0, inv_sigma, out=inv_sigma)
    inv_sigma = inv_sigma[:, None]  # (N, 1) 1 / sqrt(var + eps)
    Xh *= inv_sigma  # eq. (A1)
    return Xh, {"Xh": Xh, "inv_sigma": inv_sigma, "shape": X.shape}


def _normalise_backward(cache: dict, dXh: np.ndarray) -> np.ndarray:
    """eq. (A13) from dxh (N, D), which it overwrites: dX (..., D)."""
    Xh, inv_sigma = cache["Xh"], cache["inv_sigma"]  # (N, D), (N, 1)
    D = Xh.shape[-1]
    mean_dxh_xh = _row_dot(dXh, Xh)  # (N,) sum_k dxh xh
    mean_dxh_xh *= 1.0 / D  # mean_k (dxh * xh)
    mean_dxh = dXh @ _filled((D,), 1.0 / D, dXh.dtype)  # (N,) mean_k dxh, a matrix-vector product
    dXh -= mean_dxh[:, None]
    term = Xh * mean_dxh_xh[:, None]
    dXh -= term
    dXh *= inv_sigma  # eq. (A13)
    return dXh.reshape(cache["shape"])


def layernorm_forward(params: dict, X: np.ndarray):
    """Normalise each row over its last axis, then scale and shift: eq. (A1)-(A2).

    params : "g" (D,), "b" (D,); X : (..., D)

    >>> Y, _ = layernorm_forward({"g": np.ones(2), "b": np.zeros(2)}, np.array([[1.0, 3.0]]))
    >>> np.round(Y, 4)                               # mean 2, variance 1: (x - 2) / sqrt(1 + 1e-5)
    array([[-1.,  1.]])
    """
    Xh, cache = _normalise(X)  # (N, D) eq. (A1)
    Y = Xh * params["g"]
    Y += params["b"]  # eq. (A2)
    return Y.reshape(X.shape), cache


def layernorm_backward(params: dict, cache: dict, dY: np.ndarray):
    """eq. (A12)-(A13): the gradient through the mean and the variance of each row."""
    Xh = cache["Xh"]  # (N, D)
    dY2 = dY.reshape(-1, Xh.shape[-1])  # (N, D)
    dXh = dY2 * Xh  # (N, D) dy * xh for now (its buffer becomes dxh below)
    grads = {"g": _col_sums(dXh), "b": _col_sums(dY2)}  # eq. (A12)
    np.multiply(dY2, params["g"], out=dXh)  # dxh, eq. (A12)
    return grads, _normalise_backward(cache, dXh)


# A LayerNorm followed by an affine map (LN_1 by W_qkv, LN_2 by W_fc) is computed as one affine map of xh:
# eq. (A22) saves the two passes of eq. (A2) over the (B T, D) rows, and eq. (A23) the three of eq. (A12)
# (dy * xh, dy * g and a column sum); what they cost instead are products of D x 3D or D x 4D numbers.


def _fold(ln: dict, W: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """eq. (A22): W~ = diag(g) W (D, K) and c~ = b W + c (K,), so that LN(x) W + c = xh W~ + c~."""
    return ln["g"][:, None] * W, ln["b"] @ W + c


def _value(v):
    """An array, or the array a deferred task (:mod:`scratchgen.nn.overlap`) returned: the task was submitted
    to the one worker before the task that asks, so it has finished."""
    return v.result() if isinstance(v, (Pending, Future)) else v


def _unfold(ln: dict, W: np.ndarray, dW_f, dc_f) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """eq. (A23): from the gradients of W~ (D, K) and c~ (K,) of eq. (A22), those of W, c, g and b."""
    dW_f, dc_f = _value(dW_f), _value(dc_f)
    dW = ln["g"][:, None] * dW_f
    dW += np.outer(ln["b"], dc_f)
    return dW, dc_f, _row_dot(W, dW_f), W @ dc_f


# --- GELU: eq. (A3), (A14) ----------------------------------------------------------------------------


CHUNK = 1 << 16  # numbers a chunk of an elementwise chain: 256 KiB of float32, inside one core's L2 cache


def _row_chunks(n_rows: int, width: int, numbers: int | None = None) -> list[tuple[int, int]]:
    """Blocks [r0, r1) of rows of an (n_rows, width) array, about ``numbers`` (None: CHUNK) numbers each.

    A chain of elementwise operations (GELU's ten) run over a whole (B T, 4D) array reads and writes
    it from main memory at every step; run over one block at a time, the block stays in the cache
    for the whole chain. Measured: GELU's backward 1.7 times faster at B T = 4096, 4D = 512.
    """
    step = max(1, (CHUNK if numbers is None else numbers) // max(width, 1))
    return [(r0, min(n_rows, r0 + step)) for r0 in range(0, n_rows, step)]


def _bias_gelu_block(x: np.ndarray, bias: np.ndarray | None, y: np.ndarray, dg: np.ndarray | None) -> None:
    """eq. (A3) of one block of rows: ``x += bias`` in place (None: no bias), GELU into y and, with ``dg`` an
    array, GELU'(x) of eq. (A14'') into dg, while the block is in the cache (x is then overwritten: the
    backward needs GELU' alone)."""
    s = np.empty_like(x)  # sigma(2u) of this block
    x2 = y if dg is None else dg  # x^2 first (y is written last; dg keeps it for eq. (A14''))
    with np.errstate(over="ignore"):  # exp(-2u) = inf for u << 0 is right: sigma = 1 / (1 + inf) = 0
        if bias is not None:
            x += bias  # the pre-activation X W + b of eq. (A8)
        np.multiply(x, x, out=x2)  # -2u = x (-2c - 2c 0.044715 x^2): x ** 3 would call pow(), 10x slower
        np.multiply(x2, -2.0 * _C * _K, out=s)
        s -= 2.0 * _C
        s *= x  # -2u of eq. (A3)
        np.exp(s, out=s)
        s += 1.0
        np.divide(1.0, s, out=s)  # sigma(2u) = (1 + tanh u) / 2, eq. (A3')
        np.multiply(x, s, out=y)  # eq. (A3)
    if dg is not None:
        dg *= 6.0 * _C * _K
        dg += 2.0 * _C  # 2c (1 + 3 * 0.044715 x^2)
        dg *= y
        np.subtract(1.0, s, out=x)  # 1 - sigma (x is not needed again)
        dg *= x
        dg += s  # GELU'(x), eq. (A14'')


def _gelu_rows(X2: np.ndarray):
    """eq. (A3) over the rows of X2 (N, F) (overwritten): GELU (N, F) and GELU'(x) (N, F) of eq. (A14''), a
    cache-sized block of rows at a time: GELU, its derivative and its output touch each block while it is in
    the cache, and the backward is one product with dY instead of a chain of eight passes over arrays no
    longer in the cache (measured 3 times faster in a training step at makemore's size). The MLP runs the
    same :func:`_bias_gelu_block` on its own blocks of rows (:func:`_mlp_rows`)."""
    Y, dG = np.empty_like(X2), np.empty_like(X2)
    for r0, r1 in _row_chunks(*X2.shape):
        _bias_gelu_block(X2[r0:r1], None, Y[r0:r1], dG[r0:r1])
    return Y, dG


def gelu_forward(params: dict, X: np.ndarray):
    """GPT-2's GELU, eq. (A3), computed as ``x sigma(2u)`` (eq. (A3'): one exp instead of a tanh). No parameters.
    The cache holds GELU'(x) of eq. (A14''), computed here while each block of rows is in the cache.

    >>> np.round(gelu_forward({}, np.array([-3.0, 0.0, 1.0, 3.0]))[0], 4)
    array([-0.0036,  0.    ,  0.8412,  2.9964])
    """
    X2 = np.array(X.reshape(-1, X.shape[-1]), dtype=np.result_type(X, np.float32))  # (N, F) a copy: overwritten
    Y, dG = _gelu_rows(X2)  # (N, F) each
    return Y.reshape(X.shape), {"dgelu": dG.reshape(X.shape)}


def gelu_backward(params: dict, cache: dict, dY: np.ndarray):
    """eq. (A14): GELU'(x) of the forward (eq. (A14'')) times dY."""
    dG = cache["dgelu"]
    return {}, np.multiply(dG, dY, dtype=np.result_type(dG, dY))


# --- an affine map of the last axis ---------------------------------------------------------------------


def dense_forward(params: dict, X: np.ndarray):
    """``X W + b`` on the last axis of X (..., D_in) -> (..., D_out); params "W" (D_in, D_out), "b" (D_out,).

    The same map as ``layers.linear_forward`` (eq. 4 there), for any number of leading axes: one matrix
    product over all the rows (N, D_in) at once, the bias added in place.
    """
    X2 = X.reshape(-1, X.shape[-1])  # (N, D_in)
    Y = X2 @ params["W"]  # (N, D_out)
    Y += params["b"]
    return Y.reshape(X.shape[:-1] + (Y.shape[-1],)), {"X": X2, "shape": X.shape}


def _weight_grads(X2: np.ndarray, dY2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dW = X^T dY (D_in, D_out) and db = sum dY (D_out,) over the rows of X2 (N, D_in), dY2 (N, D_out)."""
    return X2.T @ dY2, _col_sums(dY2)


def dense_backward(params: dict, cache: dict, dY: np.ndarray, defer=run_now):
    """dW = X^T dY and db = sum dY over every row; dX = dY W^T.

    ``defer`` (:mod:`scratchgen.nn.overlap`) computes dW and db: now, or beside the rest of the pass
    (nothing in the pass needs them); dX, which the layer below needs, is computed here.
    """
    X2 = cache["X"]  # (N, D_in)
    dY2 = dY.reshape(-1, dY.shape[-1])  # (N, D_out)
    w = defer(_weight_grads, X2, dY2)
    return {"W": part(w, 0), "b": part(w, 1)}, (dY2 @ params["W"].T).reshape(cache["shape"])


# --- causal multi-head self-attention: eq. (A4)-(A7), (A15)-(A19) --------------------------------------


def _split_heads(Z: np.ndarray, A: int) -> np.ndarray:
    """(B, T, D) -> (B, A, T, d): the columns of head a are a*d .. (a+1)*d - 1, as in GPT-2 and PyTorch."""
    B, T, D = Z.shape
    return Z.reshape(B, T, A, D // A).transpose(0, 2, 1, 3)


def _merge_heads(Z: np.ndarray) -> np.ndarray:
    """(B, A, T, d) -> (B, T, D), the inverse of :func:`_split_heads`."""
    B, A, T, d = Z.shape
    return Z.transpose(0, 2, 1, 3).reshape(B, T, A * d)


def _qkv_heads(QKV: np.ndarray, B: int, T: int, A: int) -> np.ndarray:
    """(B T, 3D) rows [q | k | v] -> a (3, B, A, T, d) view: Q, K, V split into heads, nothing copied.

    Each (T, d) matrix of the view has rows 3D apart and unit columns, a layout BLAS reads as it is.
    """
    d = QKV.shape[-1] // (3 * A)
    return QKV.reshape(B, T, 3, A, d).transpose(2, 0, 3, 1, 4)


@functools.lru_cache(maxsize=16)
def _causal_mask(T: int, dtype: np.dtype) -> np.ndarray:
    """(T, T): 0 where s <= t, -inf where s > t (eq. (A5) as an addition); read-only, made once per T."""
    mask = np.zeros((T, T), dtype=dtype)
    mask[np.triu_indices(T, k=1)] = -np.inf
    mask.setflags(write=False)
    return mask


def _shift_free_limit(dtype: np.dtype, T: int) -> float:
    """Lambda of eq. (A6'). A row whose scores are at most Lambda sums at most T exp(Lambda), below the dtype's
    largest number; a row whose diagonal score (never masked, at most the row's maximum) is at least -Lambda
    has its largest exp(S) >= exp(-Lambda), which keeps every entry within a factor eps of it a normal
    number. Lambda = min(ln(eps / tiny), ln(max / T)) - 1: 70 in float32, 707 in float64."""
    info = np.finfo(dtype)
    return min(math.log(float(info.eps) / float(info.tiny)), math.log(float(info.max) / max(T, 1))) - 1.0


def _subtract_shift(S: np.ndarray) -> None:
    """Subtract m_t of eq. (A6') from the rows of S (..., t, s) (the mask added): 0 for a row within Lambda,
    else its maximum. Each row's choice depends on its own scores only (so on q_t and the keys s <= t: a
    row's numbers never depend on a later position's, bit for bit).

    The row maxima are a short loop a row (measured 1.5 ns a score at T = 32, as much as the exp); one
    maximum over the whole block (a long SIMD loop) and the minimum of its diagonal show when every row
    is within Lambda, and then no row needs its own.
    """
    n, r1 = S.shape[-2:]
    limit = _shift_free_limit(S.dtype, r1)
    diagonal = np.diagonal(S, offset=r1 - n, axis1=-2, axis2=-1)  # (..., n) row t's key t: never masked
    if S.size == 0 or (float(S.max()) <= limit and float(diagonal.min()) >= -limit):
        return  # every row within Lambda: m_t = 0
    m = S.max(axis=-1, keepdims=True)  # (..., n, 1) the diagonal is never masked: finite
    m[(m <= limit) & (diagonal[..., None] >= -limit)] = 0.0  # rows within Lambda stay unshifted, as above
    S -= m


def _causal_softmax_inplace(S: np.ndarray, mask: np.ndarray | None, shift_free: bool = False) -> np.ndarray:
    """eq. (A5)-(A6) written over S (..., t, s) itself (no temporary), ``mask`` (t, s) its part of the causal
    mask (None: already added). The keys of row t are s <= t + s_max - t_max (the last rows of a window).
    Each row is shifted by its maximum; with ``shift_free``, by eq. (A6') (:func:`_subtract_shift`)."""
    if mask is not None:
        S += mask  # eq. (A5)
    if shift_free:
        _subtract_shift(S)  # eq. (A6')
    else:
        S -= S.max(axis=-1, keepdims=True)  # the diagonal is never masked: the max is finite
    np.exp(S, out=S)
    total = S @ _filled((S.shape[-1], 1), 1.0, S.dtype)  # (..., t, 1) the row sums, as a matrix product:
    np.divide(1.0, total, out=total)  # measured twice as fast as S.sum(axis=-1) on these short rows
    S *= total  # eq. (A6)
    return S


def causal_softmax(S: np.ndarray) -> np.ndarray:
    """eq. (A5)-(A6) over the last axis of S (..., T, T), entries s > t masked to probability 0.

    >>> causal_softmax(np.zeros((2, 2)))              # row 0 sees only itself; row 1 splits evenly
    array([[1. , 0. ],
           [0.5, 0.5]])
    """
    S = np.array(S, dtype=np.result_type(S, np.float32))
    return _causal_softmax_inplace(S, _causal_mask(S.shape[-1], S.dtype))


QUERY_BLOCK = 64  # rows of queries a block: a window of T > 64 is cut into such blocks (see _query_blocks)


def _query_blocks(T: int) -> list[tuple[int, int]]:
    """The row blocks [r0, r1) of the queries, QUERY_BLOCK rows each (the last may be shorter).

    Row t attends to s <= t only, so the rows of block [r0, r1) need the keys 0 .. r1 - 1 alone: with
    n blocks, eq. (A5)-(A7) and their gradients compute (n + 1) / (2n) of the T x T scores (3/4 at
    T = 128, two blocks) instead of all of them, and every product is still one batched GEMM.
    Blocks smaller than 64 rows would make the GEMMs too small to pay: T <= 64 is one block.

    >>> _query_blocks(128), _query_blocks(32)
    ([(0, 64), (64, 128)], [(0, 32)])
    """
    return [(r0, min(T, r0 + QUERY_BLOCK)) for r0 in range(0, T, QUERY_BLOCK)]


SCORES_CHUNK = 1 << 17  # numbers of scores a block of the batch: 512 KiB of float32, one core's L2 cache


def _batch_chunks(B: int, A: int, T: int) -> list[tuple[int, int]]:
    """Blocks [b0, b1) of the batch whose (b1 - b0, A, T, T) scores hold about SCORES_CHUNK numbers: the
    softmax and its gradient then pass over scores that are still in the cache (see :func:`_row_chunks`),
    one block of query rows (a half of them at T = 128) at a time. Each block costs some thirty NumPy
    calls: at T = 128 a block of two sequences instead of one halves that overhead (measured on a loaded
    2-core machine: about 8 ms a layer, forward and backward, with blocks of one sequence) and still
    keeps a block of query rows' scores (at most 256 KiB) in the cache."""
    step = max(1, SCORES_CHUNK // max(A * T * T, 1))
    return [(b0, min(B, b0 + step)) for b0 in range(0, B, step)]


def _score_blocks(B: int, A: int, T: int, dtype) -> list[np.ndarray]:
    """One array (B, A, r1 - r0, r1) a block [r0, r1) of query rows (:func:`_query_blocks`): its scores, then
    its probabilities P, eq. (A5)-(A6), against the keys 0 .. r1 - 1 that it can see. Each block is an array of
    its own, not a window of one (B, A, T, T) array: the softmax and its gradient then run over contiguous
    rows (measured 14% faster at T = 128), and the keys no row of the block sees take no memory."""
    return [np.empty((B, A, r1 - r0, r1), dtype=dtype) for r0, r1 in _query_blocks(T)]


def _rows_of(Pj: np.ndarray) -> tuple[int, int]:
    """The query rows [r0, r1) of a block of :func:`_score_blocks`, read from its shape (.., r1 - r0, r1)."""
    r1 = Pj.shape[-1]
    return r1 - Pj.shape[-2], r1


def attention_weights(cache: dict) -> np.ndarray:
    """P of eq. (A6), (B, A, T, T), from the cache of :func:`attention_forward`: its blocks of query rows put
    together, with 0 on the future (s > t) that the blocks leave out."""
    blocks = cache["P_blocks"]
    T = blocks[-1].shape[-1]
    P = np.zeros(blocks[0].shape[:2] + (T, T), dtype=blocks[0].dtype)
    for Pj in blocks:
        r0, r1 = _rows_of(Pj)
        P[..., r0:r1, :r1] = Pj  # rows r0..r1-1, keys 0..r1-1
    return P


@functools.lru_cache(maxsize=16)
def _block_mask(r0: int, r1: int, dtype: np.dtype) -> np.ndarray:
    """(r1 - r0, r1): the causal mask of the query rows r0 .. r1 - 1 against the keys 0 .. r1 - 1 (0 where
    s <= t, -inf where s > t; only keys past r0 can be in these rows' future), read-only, made once.

    Added to a whole block of scores, as wide as the block: one contiguous inner loop over each (b, a) pair's
    block. Adding the (r1 - r0)-square mask to the block's last r1 - r0 columns alone (half the numbers at
    T = 128) is a strided view, an inner loop a row: measured 3 times slower.
    """
    mask = np.zeros((r1 - r0, r1), dtype=dtype)
    mask[:, r0:] = _causal_mask(r1 - r0, dtype)
    mask.setflags(write=False)
    return mask


def _attend(Qs, K, V, P_blocks, O) -> None:
    """eq. (A5)-(A7) for a block of the batch, into the blocks of P (:func:`_score_blocks`, .., r1 - r0, r1)
    and O (.., T, d): blocks of query rows (:func:`_query_blocks`), each against the keys up to its last row,
    with the mask of :func:`_block_mask`."""
    for Pj in P_blocks:
        r0, r1 = _rows_of(Pj)  # rows r0..r1-1 see the keys 0..r1-1
        np.matmul(Qs[..., r0:r1, :], K[..., :r1, :].swapaxes(-1, -2), out=Pj)  # eq. (A5)
        Pj += _block_mask(r0, r1, Pj.dtype)  # eq. (A5)
        _causal_softmax_inplace(Pj, None, shift_free=True)  # eq. (A6), (A6')
        np.matmul(Pj, V[..., :r1, :], out=O[..., r0:r1, :])  # eq. (A7)


def _thread_chunks(chunks: list[tuple[int, int]], defer) -> list[tuple[int, int]]:
    """The batch blocks of the attention, one block cut in two for an :class:`~scratchgen.nn.overlap.Overlap`'s
    two threads (each (b, a) pair's products are the same whatever block it is in)."""
    if isinstance(defer, Overlap) and len(chunks) == 1 and chunks[0][1] - chunks[0][0] >= 2:
        b0, b1 = chunks[0]
        mid = (b0 + b1 + 1) // 2
        return [(b0, mid), (mid, b1)]
    return chunks


def attention_forward(params: dict, inputs, defer=run_now, residual: np.ndarray | None = None):
    """Causal multi-head self-attention, eq. (A4)-(A7).

    Parameters
    ----------
    params : "W_qkv" (D, 3D), "b_qkv" (3D,), "W_o" (D, D), "b_o" (D,)
    inputs : (X, heads): X (B, T, D) and the number of heads A (D divisible by A)

    residual : (B, T, D) or None
        Added to Y (eq. (A9)'s X + attn(LN_1(X))), a block of rows at a time while Y's rows are in the cache.

    Returns
    -------
    Y : (B, T, D) (plus ``residual``)
    cache : dict

    The heads are views of the one (B T, 3D) product (no copies), the queries are scaled by 1/sqrt(d)
    through the query columns of a copy of W_qkv and b_qkv (D x 3D numbers, not a pass over the (B T, D)
    queries; the backward scales their gradients the same way), the scores are computed a cache-sized block of the
    batch at a time (:func:`_batch_chunks`) and a block of query rows reaches only as far as its last
    row (:func:`_query_blocks`), and P V is written straight into the merged (B, T, D) layout that
    W_o multiplies. With an :class:`~scratchgen.nn.overlap.Overlap` ``defer``, half of the blocks run on
    its thread (:func:`~scratchgen.nn.overlap.split`).
    """
    X, A = inputs
    B, T, D = X.shape
    X2 = X.reshape(-1, D)  # (B T, D)
    scale = 1.0 / math.sqrt(D // A)
    W_s, b_s = params["W_qkv"].copy(), params["b_qkv"].copy()  # (D, 3D), (3D,)
    W_s[:, :D] *= scale  # the query columns scaled: X W_s + b_s = [Q / sqrt(d) | K | V], so that S = Qs K^T
    b_s[:D] *= scale
    dtype = np.result_type(X2, W_s)
    QKV = np.empty((B * T, 3 * D), dtype=dtype)  # (B T, 3D) eq. (A4), the queries scaled
    Qs, K, V = _qkv_heads(QKV, B, T, A)  # (B, A, T, d) views
    P_blocks = _score_blocks(B, A, T, dtype)  # P of eq. (A6) by blocks of query rows
    O = np.empty((B, T, A, D // A), dtype=dtype)  # heads merged: (B, T, D) once reshaped
    O_heads = O.transpose(0, 2, 1, 3)  # (B, A, T, d) view
    O2 = O.reshape(-1, D)  # (B T, D)
    Y = np.empty((B * T, D), dtype=dtype)
    heads = (Qs, K, V, P_blocks, O_heads)
    R = None if residual is None else residual.reshape(-1, D)  # (B T, D)
    chunks = _thread_chunks(_batch_chunks(B, A, T), defer)
    split(defer, _attention_rows, [(b0, b1, X2, W_s, b_s, params, QKV, heads, O2, Y, R) for b0, b1 in chunks])
    cache = {"X": X2, "Qs": Qs, "K": K, "V": V, "P_blocks": P_blocks, "O": O2, "scale": scale, "W_s": W_s}
    return Y.reshape(B, T, D), cache


def _attention_rows(b0, b1, X2, W_s, b_s, params, QKV, heads, O2, Y, R) -> None:
    """eq. (A4)-(A7) for the sequences b0 .. b1 - 1 (rows b0 T .. b1 T - 1 of X2, QKV, O2 and Y): their
    queries, keys and values, attention and output map one after another, while their rows are in the cache;
    R (B T, D) or None: the residual added to Y."""
    Qs, K, V, P_blocks, O_heads = heads
    T = O_heads.shape[2]
    rows = slice(b0 * T, b1 * T)
    np.matmul(X2[rows], W_s, out=QKV[rows])  # eq. (A4)
    QKV[rows] += b_s
    Pc = [Pj[b0:b1] for Pj in P_blocks]
    _attend(Qs[b0:b1], K[b0:b1], V[b0:b1], Pc, O_heads[b0:b1])  # eq. (A5)-(A7)
    np.matmul(O2[rows], params["W_o"], out=Y[rows])  # eq. (A7)
    Y[rows] += params["b_o"]
    if R is not None:
        Y[rows] += R[rows]  # the residual of eq. (A9)


def _attend_backward_block(Qs, K, V, P_blocks, dO, rowdot, dQKV) -> None:
    """eq. (A16)-(A18) for a block of the batch into its rows of [dQ | dK | dV] (.., T, 3, A, d), a block of
    query rows at a time (those of :func:`_score_blocks`). ``rowdot`` (.., T) is sum_s dP * P of eq. (A17')
    for each row. Block [r0, r1) sends gradient to the keys and values 0 .. r1 - 1 that it saw: the last block
    (r1 = T) writes dK and dV, the earlier ones add theirs."""
    dQ, dK, dV = dQKV.transpose(2, 0, 3, 1, 4)  # (.., A, T, d) views
    T = dQ.shape[-2]
    for Pj in reversed(P_blocks):
        r0, r1 = _rows_of(Pj)
        dSj = np.matmul(dO[..., r0:r1, :], V[..., :r1, :].swapaxes(-1, -2))  # (.., r1 - r0, r1) dP, eq. (A16)
        dSj -= rowdot[..., r0:r1, None]
        dSj *= Pj  # eq. (A17)
        np.matmul(dSj, K[..., :r1, :], out=dQ[..., r0:r1, :])  # eq. (A18), the scale apart
        dSj_T, Pj_T = dSj.swapaxes(-1, -2), Pj.swapaxes(-1, -2)  # (.., r1, r1 - r0)
        if r1 == T:  # the last block: the first to reach the keys and values
            np.matmul(dSj_T, Qs[..., r0:r1, :], out=dK)  # eq. (A18)
            np.matmul(Pj_T, dO[..., r0:r1, :], out=dV)  # eq. (A16)
        else:
            dK[..., :r1, :] += dSj_T @ Qs[..., r0:r1, :]
            dV[..., :r1, :] += Pj_T @ dO[..., r0:r1, :]


def _qkv_weight_grads(X2: np.ndarray, dQKV2: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """eq. (A19)'s dW_qkv = X^T [dQ | dK | dV] and db_qkv, from the gradient of the *scaled* queries:
    their columns times the 1 / sqrt(d) of eq. (A18), on (D, D) numbers instead of (B T, D)."""
    D = X2.shape[1]
    dW, db = _weight_grads(X2, dQKV2)
    dW[:, :D] *= scale
    db[:D] *= scale
    return dW, db


def attention_backward(params: dict, cache: dict, dY: np.ndarray, defer=run_now):
    """eq. (A15)-(A19). Returns grads and (dX, None) (no gradient for the number of heads).

    dQ, dK and dV are written straight into the (B T, 3D) layout of [dQ | dK | dV] that eq. (A19)
    multiplies; eq. (A16)-(A18) run a cache-sized block of the batch at a time. The row sums of
    eq. (A17) come from eq. (A17'), dO . O: a (B, T, D) product instead of a (B, A, T, T) one.
    The weight gradients of W_o and W_qkv are ``defer``'s (:mod:`scratchgen.nn.overlap`).
    """
    X2, Qs, K, V, P_blocks, O2, scale = (cache[k] for k in ("X", "Qs", "K", "V", "P_blocks", "O", "scale"))
    B, A, T, d = K.shape
    D = A * d
    dY2 = dY.reshape(-1, D)  # (B T, D)
    w_o = defer(_weight_grads, O2, dY2)  # eq. (A15): dW_o = O^T dY, db_o = sum dY
    grads = {"W_o": part(w_o, 0), "b_o": part(w_o, 1)}
    dtype = np.result_type(dY2, params["W_o"])
    dQKV = np.empty((B, T, 3, A, d), dtype=dtype)  # [dQ | dK | dV] rows
    dX = np.empty((B * T, D), dtype=dtype)
    arrays = (dY2, params["W_o"], O2, Qs, K, V, P_blocks, dQKV, cache["W_s"], dX)
    chunks = _thread_chunks(_batch_chunks(B, A, T), defer)
    split(defer, _attention_back_rows, [(b0, b1, arrays) for b0, b1 in chunks])  # eq. (A15)-(A19)
    dQKV2 = dQKV.reshape(-1, 3 * D)  # (B T, 3D): [dQs | dK | dV], the gradient of the scaled queries
    w_qkv = defer(_qkv_weight_grads, X2, dQKV2, scale)  # eq. (A19), eq. (A18)'s 1 / sqrt(d)
    grads["W_qkv"], grads["b_qkv"] = part(w_qkv, 0), part(w_qkv, 1)
    return grads, (dX.reshape(B, T, D), None)


def _attention_back_rows(b0: int, b1: int, arrays: tuple) -> None:
    """eq. (A15)-(A19) for the sequences b0 .. b1 - 1, without the weight gradients: dO = dY W_o^T, the row
    sums dO . O of eq. (A17'), eq. (A16)-(A18) into their rows of [dQ | dK | dV], and dX = [dQs | dK | dV] W_s^T,
    while their rows are in the cache."""
    dY2, W_o, O2, Qs, K, V, P_blocks, dQKV, W_s, dX = arrays
    A, T, d = K.shape[1:]
    rows = slice(b0 * T, b1 * T)
    dO2 = dY2[rows] @ W_o.T  # (n T, D) eq. (A15)
    rowdot = _row_dot(dO2.reshape(-1, d), O2[rows].reshape(-1, d)).reshape(b1 - b0, T, A).transpose(0, 2, 1)  # (A17')
    dO = dO2.reshape(b1 - b0, T, A, d).transpose(0, 2, 1, 3)  # (n, A, T, d) view
    Pc = [Pj[b0:b1] for Pj in P_blocks]
    _attend_backward_block(Qs[b0:b1], K[b0:b1], V[b0:b1], Pc, dO, rowdot, dQKV[b0:b1])  # eq. (A16)-(A18)
    np.matmul(dQKV[b0:b1].reshape(-1, 3 * A * d), W_s.T, out=dX[rows])  # eq. (A19): dX = [dQs | dK | dV] W_s^T


# --- the MLP and the pre-LN block: eq. (A8), (A9), (A20) ------------------------------------------------


MLP_BLOCK = 1 << 17  # numbers of the (rows, F) hidden layer a block of rows: 512 KiB of float32


def _mlp_blocks(N: int, F: int) -> list[tuple[int, int]]:
    """Blocks [r0, r1) of the N rows of the MLP, about MLP_BLOCK hidden numbers each (256 rows at F = 512).

    Each row's MLP is its own, so eq. (A8) runs a block of rows at a time: the block's X W_fc + b_fc, its
    GELU and GELU' and its product with W_proj, while its (r1 - r0, F) hidden numbers are in the cache. The
    whole (N, F) pre-activation is never made (measured: the MLP's forward 6% faster at N 4096, F 512, one
    thread), and the backward's (N, F) dG neither (:func:`mlp_backward`).

    >>> _mlp_blocks(1024, 512), _mlp_blocks(1024, 256)
    ([(0, 256), (256, 512), (512, 768), (768, 1024)], [(0, 512), (512, 1024)])
    """
    return _row_chunks(N, F, MLP_BLOCK)


def mlp_forward(params: dict, X: np.ndarray, defer=run_now, backward: bool = True, residual=None):
    """eq. (A8): params "W_fc" (D, F), "b_fc" (F,), "W_proj" (F, D), "b_proj" (D,).

    A block of rows at a time (:func:`_mlp_blocks`): the bias b_fc is added inside GELU's pass over the block
    (:func:`_bias_gelu_block`), and GELU's derivative is computed there too; ``backward=False`` (scoring,
    generation): not computed. With an :class:`~scratchgen.nn.overlap.Overlap` ``defer``, half of the blocks
    on its thread (:func:`~scratchgen.nn.overlap.split`): the same blocks, so the same numbers. ``residual``
    (..., D) or None: added to the output, a block of rows at a time (eq. (A9)'s X' + mlp(LN_2(X'))).
    """
    X2 = X.reshape(-1, X.shape[-1])  # (N, D)
    N, F = len(X2), params["W_fc"].shape[1]
    G = np.empty((N, F), dtype=np.result_type(X2, params["W_fc"]))  # (N, F) GELU's output
    dG = np.empty_like(G) if backward else None  # (N, F) GELU'
    Y = np.empty((N, params["W_proj"].shape[1]), dtype=G.dtype)  # (N, D)
    R = None if residual is None else residual.reshape(N, -1)  # (N, D)
    split(defer, _mlp_rows, [(X2, params, G, dG, Y, R, r0, r1) for r0, r1 in _mlp_blocks(N, F)])
    return Y.reshape(X.shape), {"X": X2, "dgelu": dG, "proj": {"X": G, "shape": G.shape}}


def _mlp_rows(X2, params, G, dG, Y, R, r0: int, r1: int) -> None:
    """eq. (A8) for the rows r0 .. r1 - 1, into G, dG (N, F) (GELU' or None) and Y (N, D), plus R (N, D) if not None."""
    Hf = X2[r0:r1] @ params["W_fc"]  # (r1 - r0, F); + b_fc inside the next line
    _bias_gelu_block(Hf, params["b_fc"], G[r0:r1], None if dG is None else dG[r0:r1])  # eq. (A3), (A14'')
    np.matmul(G[r0:r1], params["W_proj"], out=Y[r0:r1])  # eq. (A8)
    Y[r0:r1] += params["b_proj"]
    if R is not None:
        Y[r0:r1] += R[r0:r1]  # the residual of eq. (A9)


def _matmul_t(X2: np.ndarray, dY2: np.ndarray) -> np.ndarray:
    """X^T dY: a weight's gradient without its bias's."""
    return X2.T @ dY2


def _mlp_back_rows(dY2, W_proj, W_fc, dgelu, dHf, dX, sums: np.ndarray, r0: int, r1: int) -> None:
    """The rows r0 .. r1 - 1 of the MLP's backward: dHf = (dY W_proj^T) * GELU'(x) (eq. (A14)) into dHf,
    its column sums (b_fc's part of the block) into ``sums`` (F,), and dX = dHf W~_fc^T into dX."""
    dH = dHf[r0:r1]  # (r1 - r0, F)
    np.matmul(dY2[r0:r1], W_proj.T, out=dH)  # dG, the gradient of GELU's output
    dH *= dgelu[r0:r1]  # eq. (A14)
    sums[...] = _col_sums(dH)
    np.matmul(dH, W_fc.T, out=dX[r0:r1])


def mlp_backward(params: dict, cache: dict, dY: np.ndarray, defer=run_now):
    """The gradients of eq. (A8), a block of rows at a time (those of :func:`mlp_forward`): dG, dHf and dX of
    a block are computed while it is in the cache; b_fc's gradient is the blocks' column sums, added in the
    order of the blocks whoever computed them. The weight gradients are ``defer``'s
    (:mod:`scratchgen.nn.overlap`)."""
    X2, G = cache["X"], cache["proj"]["X"]  # (N, D), (N, F)
    dY2 = dY.reshape(-1, dY.shape[-1])  # (N, D)
    w_proj = defer(_weight_grads, G, dY2)  # dW_proj = G^T dY, db_proj = sum dY
    N, F = G.shape
    dHf = np.empty((N, F), dtype=np.result_type(G, dY2))
    dX = np.empty((N, params["W_fc"].shape[0]), dtype=dHf.dtype)
    blocks = _mlp_blocks(N, F)
    sums = np.empty((len(blocks), F), dtype=dHf.dtype)  # (blocks, F) each block's column sums of dHf
    pieces = [(dY2, params["W_proj"], params["W_fc"], cache["dgelu"], dHf, dX, sums[i], r0, r1)
              for i, (r0, r1) in enumerate(blocks)]  # fmt: skip
    split(defer, _mlp_back_rows, pieces)
    db_fc = sums[0].copy()
    for block_sum in sums[1:]:
        db_fc += block_sum  # in the order of the blocks, whichever thread computed them
    grads = {"W_fc": defer(_matmul_t, X2, dHf), "b_fc": db_fc, "W_proj": part(w_proj, 0), "b_proj": part(w_proj, 1)}
    return grads, dX.reshape(dY.shape)


def block_forward(params: dict, inputs, defer=run_now, backward: bool = True):
    """One pre-LN block, eq. (A9): ``X' = X + attn(LN_1(X))``, ``Y = X' + mlp(LN_2(X'))``.

    inputs : (X (B, T, D), heads). Returns Y (B, T, D) and the cache. Each LayerNorm's gain and shift are
    folded into the map that follows it (eq. (A22)): the attention reads xh of LN_1 through W~_qkv, the MLP
    xh of LN_2 through W~_fc. ``defer``: an :class:`~scratchgen.nn.overlap.Overlap` shares the attention's
    and GELU's blocks with its thread. ``backward=False``: no backward will follow (GELU's derivative is not
    computed, :func:`mlp_forward`).
    """
    X, A = inputs
    attn, mlp = _sub(params, "attn."), _sub(params, "mlp.")
    attn["W_qkv"], attn["b_qkv"] = _fold(_sub(params, "ln1."), attn["W_qkv"], attn["b_qkv"])  # eq. (A22)
    mlp["W_fc"], mlp["b_fc"] = _fold(_sub(params, "ln2."), mlp["W_fc"], mlp["b_fc"])  # eq. (A22)
    Xh1, c_ln1 = _normalise(X)  # (B T, D) eq. (A1) of LN_1; its eq. (A2) is inside W~_qkv
    X1, c_attn = attention_forward(attn, (Xh1.reshape(X.shape), A), defer, residual=X)  # the first residual
    Xh2, c_ln2 = _normalise(X1)  # eq. (A1) of LN_2
    Y2, c_mlp = mlp_forward(mlp, Xh2.reshape(X.shape), defer, backward, residual=X1)  # the second residual
    return Y2, {"ln1": c_ln1, "attn": c_attn, "ln2": c_ln2, "mlp": c_mlp, "W_fc~": mlp["W_fc"]}


def block_backward(params: dict, cache: dict, dY: np.ndarray, defer=run_now):
    """eq. (A20): each residual passes its gradient straight through and adds the branch's; eq. (A23) turns
    the gradients of the folded maps W~_qkv, W~_fc back into those of the LayerNorms and the maps.

    ``defer`` computes the weight gradients (:mod:`scratchgen.nn.overlap`): with the default, now."""
    ln1, attn, ln2, mlp = (_sub(params, p) for p in ("ln1.", "attn.", "ln2.", "mlp."))
    g_mlp, dXh2 = mlp_backward({**mlp, "W_fc": cache["W_fc~"]}, cache["mlp"], dY, defer)  # dxh of LN_2
    u2 = defer(_unfold, ln2, mlp["W_fc"], g_mlp["W_fc"], g_mlp["b_fc"])  # eq. (A23)
    dX1 = _normalise_backward(cache["ln2"], dXh2.reshape(-1, dY.shape[-1]))  # eq. (A13)
    dX1 += dY  # X' reaches Y directly and through the MLP (dX1 is a fresh array)
    g_attn, (dXh1, _) = attention_backward(attn, cache["attn"], dX1, defer)  # dxh of LN_1: W~_qkv inside the cache
    u1 = defer(_unfold, ln1, attn["W_qkv"], g_attn["W_qkv"], g_attn["b_qkv"])  # eq. (A23)
    dX = _normalise_backward(cache["ln1"], dXh1.reshape(-1, dY.shape[-1]))  # eq. (A13)
    grads = {"ln1.g": part(u1, 2), "ln1.b": part(u1, 3), "attn.W_qkv": part(u1, 0), "attn.b_qkv": part(u1, 1),
             "attn.W_o": g_attn["W_o"], "attn.b_o": g_attn["b_o"], "ln2.g": part(u2, 2), "ln2.b": part(u2, 3),
             "mlp.W_fc": part(u2, 0), "mlp.b_fc": part(u2, 1), "mlp.W_proj": g_mlp["W_proj"],
             "mlp.b_proj": g_mlp["b_proj"]}  # fmt: skip
    dX += dX1  # X reaches X' directly and through the attention
    return grads, (dX, None)


# --- embeddings and the whole network: eq. (A10), (A11), (A21) -------------------------------------------


def embed_forward(params: dict, inputs):
    """eq. (A10): token rows plus the position rows t0 .. t0 + T - 1.

    params : "C" (V, D), "P_pos" (T_max, D); inputs : (ids (B, T), t0)

    >>> p = {"C": np.array([[0.0, 0.0], [1.0, 1.0]]), "P_pos": np.array([[10.0, 0.0], [20.0, 0.0], [30.0, 0.0]])}
    >>> embed_forward(p, (np.array([[1, 0]]), 1))[0]  # positions 1 and 2
    array([[[21.,  1.],
            [30.,  0.]]])
    """
    ids, t0 = inputs
    T = ids.shape[1]
    if t0 + T > params["P_pos"].shape[0]:
        raise ScratchgenError(
            f"position {t0 + T - 1} is past the model's context of {params['P_pos'].shape[0]} positions "
            "(--context): a longer text needs a model trained with a larger --context"
        )
    X, c_tok = embedding_forward({"C": params["C"]}, ids)  # (B, T, D)
    return X + params["P_pos"][t0 : t0 + T], {"tok": c_tok, "t0": t0, "T": T, "n_pos": params["P_pos"].shape[0]}


def embed_backward(params: dict, cache: dict, dX: np.ndarray):
    """eq. (A21): scatter-add into the token rows; sum over the batch into the position rows."""
    g_tok, _ = embedding_backward({"C": params["C"]}, cache["tok"], dX)
    dP = np.zeros_like(params["P_pos"])
    dP[cache["t0"] : cache["t0"] + cache["T"]] = dX.sum(axis=0)
    return {"C": g_tok["C"], "P_pos": dP}, (None, None)


def _n_blocks(params: dict) -> int:
    return len({k.split(".")[1] for k in params if k.startswith("h.")})


def transformer_forward(params: dict, inputs):
    """Embeddings, L blocks, the final LayerNorm and the logits: eq. (A10), (A9), (A11).

    inputs : (ids (B, T), heads); T <= T_max. Without a "W_out" the logits use the tied table, ``C^T``.
    Returns the logits (B, T, V) and the cache (the loss is ``layers.softmax_ce_forward`` of them).
    """
    ids, A = inputs
    X, c_emb = embed_forward(params, (ids, 0))
    c_blocks = []
    for layer in range(_n_blocks(params)):
        X, c = block_forward(_sub(params, f"h.{layer}."), (X, A))
        c_blocks.append(c)
    N, c_lnf = layernorm_forward(_sub(params, "lnf."), X)
    W_out = params["W_out"] if "W_out" in params else params["C"].T  # (D, V)
    logits, c_out = dense_forward({"W": W_out, "b": params["b_out"]}, N)  # eq. (A11)
    return logits, {"emb": c_emb, "blocks": c_blocks, "lnf": c_lnf, "out": c_out}


def transformer_backward(params: dict, cache: dict, dlogits: np.ndarray):
    """All gradients by eq. (A12)-(A21), the blocks in reverse. With tied weights, C receives the gradient
    of both its uses (the lookup and the output map) added together."""
    tied = "W_out" not in params
    W_out = params["C"].T if tied else params["W_out"]
    g_out, dN = dense_backward({"W": W_out}, cache["out"], dlogits)
    grads = {"b_out": g_out["b"]}
    g_lnf, dX = layernorm_backward(_sub(params, "lnf."), cache["lnf"], dN)
    grads.update(_prefixed(g_lnf, "lnf."))
    for layer in range(len(cache["blocks"]) - 1, -1, -1):
        g, (dX, _) = block_backward(_sub(params, f"h.{layer}."), cache["blocks"][layer], dX)
        grads.update(_prefixed(g, f"h.{layer}."))
    g_emb, _ = embed_backward(params, cache["emb"], dX)
    grads["P_pos"] = g_emb["P_pos"]
    if tied:
        grads["C"] = g_emb["C"] + g_out["W"].T  # both uses of C
    else:
        grads["C"], grads["W_out"] = g_emb["C"], g_out["W"]
    return grads, (None, None)


# --- generation with a key/value cache (forward only) ---------------------------------------------------


def kv_cache(batch: int, heads: int, width: int, t_max: int, dtype=np.float64) -> dict:
    """An empty key/value cache for one attention layer: room for t_max positions, "n" of them filled."""
    shape = (batch, heads, t_max, width // heads)
    return {"K": np.zeros(shape, dtype=dtype), "V": np.zeros(shape, dtype=dtype), "n": 0}


def attention_step(params: dict, x: np.ndarray, cache: dict) -> np.ndarray:
    """Row t = cache["n"] of eq. (A4)-(A7) for one new position: x (B, D) -> (B, D); appends k_t, v_t.

    Equals row t of :func:`attention_forward` on the whole context (the mask keeps row t from the future).
    """
    B, D = x.shape
    A, t = cache["K"].shape[1], cache["n"]
    if t >= cache["K"].shape[2]:
        raise ScratchgenError(
            f"the key/value cache holds {cache['K'].shape[2]} positions (--context); position {t} does not fit"
        )
    qkv = x @ params["W_qkv"] + params["b_qkv"]  # (B, 3D) eq. (A4), this position only
    q, k, v = (qkv[:, j * D : (j + 1) * D].reshape(B, A, 1, D // A) for j in range(3))  # (B, A, 1, d)
    cache["K"][:, :, t : t + 1] = k
    cache["V"][:, :, t : t + 1] = v
    cache["n"] = t + 1
    K, V = cache["K"][:, :, : t + 1], cache["V"][:, :, : t + 1]  # (B, A, t+1, d): positions 0..t
    s = (q @ K.swapaxes(-1, -2)) / math.sqrt(D // A)  # (B, A, 1, t+1) eq. (A5): nothing to mask
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)  # eq. (A6)
    o = (p @ V).reshape(B, D)  # (B, D) heads merged, eq. (A7)
    return o @ params["W_o"] + params["b_o"]


def block_step(params: dict, x: np.ndarray, cache: dict) -> np.ndarray:
    """eq. (A9) for one new position, with the block's key/value cache: x (B, D) -> (B, D)."""
    x = x + attention_step(_sub(params, "attn."), layernorm_forward(_sub(params, "ln1."), x)[0], cache)
    return x + mlp_forward(_sub(params, "mlp."), layernorm_forward(_sub(params, "ln2."), x)[0], backward=False)[0]


def transformer_step(params: dict, ids: np.ndarray, caches: list) -> np.ndarray:
    """The logits (B, V) after one more token per row, ids (B,), at position caches[0]["n"].

    ``caches`` holds one :func:`kv_cache` per block (all at the same position). Each step costs one
    position's work; the logits equal those of :func:`transformer_forward` over the whole prefix.
    """
    t = caches[0]["n"]
    x, _ = embed_forward(params, (ids[:, None], t))  # (B, 1, D)
    x = x[:, 0]  # (B, D)
    for layer, cache in enumerate(caches):
        x = block_step(_sub(params, f"h.{layer}."), x, cache)
    W_out = params["W_out"] if "W_out" in params else params["C"].T
    return layernorm_forward(_sub(params, "lnf."), x)[0] @ W_out + params["b_out"]  # eq. (A11)
