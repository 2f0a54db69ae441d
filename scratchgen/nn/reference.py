r"""The vanilla RNN as a textbook writes it: one sequence, one time step at a time. Read this first.

It computes the loss and every gradient of :func:`scratchgen.nn.layers.network_forward` and
:func:`~scratchgen.nn.layers.network_backward`, but for ONE sequence of the batch, with plain loops
over time steps and layers, Python lists of row vectors and ``+=`` for every shared weight. Nothing
here is batched, time-major, buffered or threaded: those are the fast path's transformations, and
``tests/nn/test_nn_reference.py`` proves that they change nothing but rounding.

Letters: V vocabulary, E embedding width, H hidden width, L layers, T time steps, N counted targets.
Row vectors: x_t (E,), h_t (H,), y_t (V,). Parameters by role (l = 0 .. L-1 numbers the layers):
``C`` (V, E) the embedding table (optional), ``W_xh.l`` (E, H) or (H, H), ``W_hh.l`` (H, H),
``b_h.l`` (H,), ``W_hy`` (H, V), ``b_y`` (V,). Without a table the inputs are one-hot ids: ``W_xh.0`` is
(V, H) and ``x_t W_xh`` is simply its row ``W_xh[i_t]``. Inputs ``i_t``, targets ``j_t``, mask ``m_t``
(1 for a target that counts, 0 for padding). The numbers are those of ``layers.py``::

    x_t = C[i_t]                                      embedding lookup                      (1)
    a_t = x_t W_xh + h_{t-1} W_hh + b_h               pre-activation                        (2)
    h_t = tanh(a_t)                                   hidden state                          (3)
    h_t <- h_t * k_t / (1 - r)                        dropout, top layer, towards (4) only  (14)
    y_t = h_t W_hy + b_y                              logits                                (4)
    p_t = softmax(y_t)                                next-token probabilities              (5)
    loss = -sum_t m_t log p_t[j_t]                    summed here; the batch divides by N   (6)

    dy_t = s m_t (p_t - onehot(j_t)),  s = d_loss / N          fused softmax + cross-entropy (7)
    dW_hy += h_t^T dy_t,  db_y += dy_t,  dh_t = dy_t W_hy^T                                 (8)
    dh_t += dh_next,  dh_next = da_{t+1} W_hh^T                 carried back in time        (9)
    da_t = dh_t * (1 - h_t^2)                                   tanh'(a) = 1 - tanh(a)^2    (10)
    dW_xh += x_t^T da_t,  dW_hh += h_{t-1}^T da_t,  db_h += da_t                            (11)
    dx_t = da_t W_xh^T,  dh_next = da_t W_hh^T (after step 1 it is dh_0)                    (12)
    dC[i_t] += dx_t                                                                         (13)

A labelled network (one label c a sequence) has two more tables, ``L_in`` (C, E), or (C, H) for
one-hot inputs, and ``L_h.l`` (C, H) a layer (:mod:`scratchgen.nn.conditioning`, whose numbers these are)::

    x_t = C[i_t] + L_in[c]      (one-hot: a_t = W_xh[i_t] + L_in[c] + ...)   every step     (L1)
    h_0 = tanh(L_h.l[c])                                          each layer's start       (L2)
    dL_in[c] += sum_t dx_t      (one-hot: sum_t da_t of the first layer)                   (L3)
    dL_h.l[c] += dh_0 * (1 - h_0^2)                                                         (L4)

Each layer l has its own W_xh.l, W_hh.l, b_h.l and h_0; layer l > 0 reads x_t = h_t of layer l - 1.
A padded position (m_t = 0) adds nothing to the loss, but its state still feeds the next step, so
dh_next still flows through it. Dropout touches only what the output reads: the recurrence and the
returned last states are the undropped h_t.

Which fast function each one mirrors:

- :func:`layer_forward` / :func:`layer_backward`: ``rnn_forward`` / ``rnn_backward``, one row of the batch;
- :func:`sequence_forward` / :func:`sequence_backward`: ``network_forward`` / ``network_backward``, one row,
  loss summed (not yet divided by N);
- :func:`batch_forward_backward`: both together over a batch, one sequence at a time: the batch loss is the
  mean over the N counted targets of the whole batch, so every sequence is divided by the same N.

>>> V, H = 4, 3                                  # all weights zero: p_t uniform, each step costs ln 4
>>> params = {"W_xh.0": np.zeros((V, H)), "W_hh.0": np.zeros((H, H)), "b_h.0": np.zeros(H),
...           "W_hy": np.zeros((H, V)), "b_y": np.zeros(V)}
>>> loss, n, h_T, cache = sequence_forward(params, [0, 2, 1], [2, 1, 3])
>>> n, round(loss, 6), round(3 * float(np.log(4)), 6)
(3, 4.158883, 4.158883)
>>> grads, dh0 = sequence_backward(params, cache)
>>> grads["b_y"]                                 # sum over 3 steps of 1/4 - onehot(j_t)
array([ 0.75, -0.25, -0.25, -0.25])
"""

from __future__ import annotations

import numpy as np

__all__ = ["layer_forward", "layer_backward", "sequence_forward", "sequence_backward", "batch_forward_backward"]


def layer_forward(W_xh, W_hh, b_h, xs, h0=None, u=None):
    """One tanh layer over one sequence, eq. (2)-(3); mirrors ``layers.rnn_forward`` for one row.

    ``xs`` is a list of T inputs: rows (E,), or Python ints for one-hot ids. ``h0`` (H,) is the state
    carried in (None: zeros); ``u`` (H,) a vector added to every a_t (a one-hot network's label vector,
    eq. L1), or None. Returns the list ``hs`` of T + 1 states: ``hs[0] = h_0``, ``hs[t] = h_t``.
    """
    hs = [np.zeros(W_hh.shape[0]) if h0 is None else np.array(h0, dtype=float)]  # h_0 (H,)
    for t in range(1, len(xs) + 1):
        x = xs[t - 1]
        xW = W_xh[x] if isinstance(x, int) else x @ W_xh  # (H,) x_t W_xh; one-hot: row i_t
        if u is not None:
            xW = xW + u  # (H,) eq. (L1), one-hot: the label beside W_xh[i_t]
        a = xW + hs[t - 1] @ W_hh + b_h  # (H,) eq. (2)
        hs.append(np.tanh(a))  # (H,) eq. (3)
    return hs


def layer_backward(W_xh, W_hh, xs, hs, dhs, dh_T=None):
    """Backpropagation through time in one layer, eq. (9)-(12); mirrors ``layers.rnn_backward``.

    ``dhs`` lists the T gradients (H,) reaching each h_t from above; ``dh_T`` (H,) is the gradient
    reaching the last state from a later chunk (None: zeros). Returns the grads (keys ``W_xh``,
    ``W_hh``, ``b_h``), the list of T input gradients dx_t (None for one-hot ids) and dh_0 (H,).
    """
    dW_xh, dW_hh, db_h = np.zeros_like(W_xh), np.zeros_like(W_hh), np.zeros(W_hh.shape[0])
    dxs = [None] * len(xs)
    dh_next = np.zeros(W_hh.shape[0]) if dh_T is None else np.array(dh_T, dtype=float)  # (H,)
    for t in reversed(range(1, len(xs) + 1)):
        x = xs[t - 1]
        dh = dhs[t - 1] + dh_next  # (H,) eq. (9): from above and from step t + 1
        da = dh * (1.0 - hs[t] ** 2)  # (H,) eq. (10)
        if isinstance(x, int):
            dW_xh[x] += da  # eq. (11): a one-hot x_t touches row i_t only
        else:
            dW_xh += np.outer(x, da)  # (E, H) eq. (11)
            dxs[t - 1] = da @ W_xh.T  # (E,) eq. (12)
        dW_hh += np.outer(hs[t - 1], da)  # (H, H) eq. (11)
        db_h += da  # (H,) eq. (11)
        dh_next = da @ W_hh.T  # (H,) eq. (12): dh_{t-1}, carried to step t - 1
    return {"W_xh": dW_xh, "W_hh": dW_hh, "b_h": db_h}, dxs, dh_next  # dh_next is now dh_0


def sequence_forward(params, ids, targets, mask=None, h0=None, keep=None, rate=0.0, label=None):
    """Loss of one sequence, summed over its counted targets: eq. (1)-(6), (14) and (L1)-(L2).

    ``ids``, ``targets``: T token ids; ``mask``: T values 0/1 or None (all count); ``h0``: (L, H) or
    None (zeros, or for a labelled sequence its label's start, eq. L2); ``keep``: (T, H) 0/1 dropout
    mask of the top states and ``rate`` its r, or None; ``label``: the sequence's label id c, or None.
    Returns the summed loss (nats), n (how many targets counted), the last states (L, H) and a cache.
    """
    L = sum(name.startswith("W_hh.") for name in params)
    labelled_start = label is not None and h0 is None  # then L_h receives a gradient (eq. L4)
    if labelled_start:
        h0 = [np.tanh(params[f"L_h.{l}"][label]) for l in range(L)]  # (H,) each, eq. (L2)
    u = None  # a one-hot network's label vector, added to a_t of the first layer
    if "C" in params:
        xs = [params["C"][i] for i in ids]  # (E,) each, eq. (1)
        if label is not None:
            xs = [x + params["L_in"][label] for x in xs]  # (E,) each, eq. (L1)
    else:
        xs = [int(i) for i in ids]  # one-hot: the id itself
        if label is not None:
            u = params["L_in"][label]  # (H,) eq. (L1)
    inputs, states = [], []  # per layer: its xs and its hs
    for l in range(L):
        hs = layer_forward(
            params[f"W_xh.{l}"],
            params[f"W_hh.{l}"],
            params[f"b_h.{l}"],
            xs,
            None if h0 is None else h0[l],
            u if l == 0 else None,
        )
        inputs.append(xs)
        states.append(hs)
        xs = hs[1:]  # layer l + 1 reads h_1 .. h_T of layer l
    tops = []  # what the output layer reads
    for t, h in enumerate(xs):
        tops.append(h if keep is None else h * keep[t] / (1.0 - rate))  # (H,) eq. (14)
    loss, n, ps = 0.0, 0, []
    for t, h in enumerate(tops):
        y = h @ params["W_hy"] + params["b_y"]  # (V,) eq. (4)
        e = np.exp(y - y.max())  # (V,) shifted: exp cannot overflow
        ps.append(e / e.sum())  # (V,) eq. (5)
        if mask is None or mask[t]:
            loss -= float(np.log(ps[t][targets[t]]))  # eq. (6)
            n += 1
    cache = {
        "ids": ids,
        "targets": targets,
        "mask": mask,
        "keep": keep,
        "rate": rate,
        "inputs": inputs,
        "states": states,
        "tops": tops,
        "ps": ps,
        "label": label,
        "labelled_start": labelled_start,
    }
    return loss, n, np.array([hs[-1] for hs in states]), cache


def sequence_backward(params, cache, scale=1.0, dh_T=None):
    """Every gradient of ``scale`` times the summed loss of one sequence: eq. (7)-(14) backward.

    In a batch, ``scale`` is d_loss / N (eq. 7). ``dh_T`` (L, H) is the gradient reaching the last
    states from a later chunk (None: truncated BPTT). A labelled sequence also gives its label's rows
    of ``L_in`` (eq. L3) and, when it started from its label's state, of ``L_h.l`` (eq. L4).
    Returns grads (the keys of params) and dh_0 (L, H).
    """
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    keep, rate, tops, T = cache["keep"], cache["rate"], cache["tops"], len(cache["ps"])
    dhs = [None] * T  # gradient reaching each top h_t
    for t in reversed(range(T)):
        m = 1.0 if cache["mask"] is None or cache["mask"][t] else 0.0  # m_t: does this target count?
        dy = cache["ps"][t].copy()  # (V,) p_t
        dy[cache["targets"][t]] -= 1.0  # (V,) p_t - onehot(j_t)
        dy *= scale * m  # (V,) eq. (7)
        grads["W_hy"] += np.outer(tops[t], dy)  # (H, V) eq. (8)
        grads["b_y"] += dy  # (V,) eq. (8)
        dhs[t] = dy @ params["W_hy"].T  # (H,) eq. (8)
        if keep is not None:
            dhs[t] = dhs[t] * keep[t] / (1.0 - rate)  # (H,) eq. (14) backward: the same mask
    L = len(cache["states"])
    dh0 = [None] * L
    for l in reversed(range(L)):  # top layer first; its dx_t is dh_t below
        g, dhs, dh0[l] = layer_backward(
            params[f"W_xh.{l}"],
            params[f"W_hh.{l}"],
            cache["inputs"][l],
            cache["states"][l],
            dhs,
            None if dh_T is None else dh_T[l],
        )
        for name, value in g.items():
            grads[f"{name}.{l}"] += value
    if "C" in params:
        for t, i in enumerate(cache["ids"]):
            grads["C"][i] += dhs[t]  # (E,) eq. (13): a repeated id adds up
    c = cache["label"]
    if c is not None:
        if "C" in params:
            for t in range(T):
                grads["L_in"][c] += dhs[t]  # (E,) eq. (L3): dx_t of every step
        else:  # u joins every a_t of the first layer as b_h does, so du = sum_t da_t = that layer's db_h
            grads["L_in"][c] += g["b_h"]  # (H,) eq. (L3); g is the first layer's (the loop ends there)
        if cache["labelled_start"]:
            for l in range(L):
                h0 = cache["states"][l][0]  # (H,) tanh(L_h.l[c])
                grads[f"L_h.{l}"][c] += dh0[l] * (1.0 - h0**2)  # (H,) eq. (L4)
    return grads, np.array(dh0)


def batch_forward_backward(params, ids, targets, mask=None, h0=None, dropout=None, d_loss=1.0, dh_T=None, labels=None):
    """``network_forward`` then ``network_backward``, one sequence of the batch at a time.

    Arguments as for the fast pair: ids, targets (B, T); mask (B, T) or None; h0 (L, B, H) or None;
    dropout a pair (keep (B, T, H), rate) or None; d_loss; dh_T (L, B, H) or None; labels (B,) or None
    (a labelled network: h0 None then means each sequence's label start). The loss is the
    sum over sequences divided by N, all counted targets of the batch (eq. 6; 0.0 when N = 0), so each
    sequence's gradient is scaled by d_loss / N (eq. 7) and the shared weights add up over sequences.
    Returns (loss, h_T (L, B, H), grads, dh_0 (L, B, H)).
    """
    keep, rate = dropout if dropout is not None else (None, 0.0)
    runs = []
    for b in range(len(ids)):
        runs.append(
            sequence_forward(
                params,
                ids[b],
                targets[b],
                None if mask is None else mask[b],
                None if h0 is None else h0[:, b],
                None if keep is None else keep[b],
                rate,
                None if labels is None else int(labels[b]),
            )
        )
    N = sum(n for _, n, _, _ in runs)
    loss = sum(seq_loss for seq_loss, _, _, _ in runs) / max(N, 1)  # eq. (6)
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dh0 = []
    for b, (_, _, _, cache) in enumerate(runs):
        g, d = sequence_backward(params, cache, d_loss / max(N, 1), None if dh_T is None else dh_T[:, b])
        for name in grads:
            grads[name] += g[name]  # shared weights: sum over sequences
        dh0.append(d)
    h_T = np.stack([last for _, _, last, _ in runs], axis=1)  # (L, B, H)
    return loss, h_T, grads, np.stack(dh0, axis=1)  # dh_0 (L, B, H)
