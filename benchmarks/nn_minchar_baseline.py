"""Baseline for the nn benchmark: the min-char-rnn algorithm, re-implemented (our own code, same maths).

Karpathy's min-char-rnn trains a character RNN one sequence at a time with column vectors:

    h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h),  y_t = W_hy h_t + b_y,  p_t = softmax(y_t)

x_t is a one-hot column (V, 1) multiplied by W_xh, the backward pass accumulates every weight
gradient step by step inside the reversed time loop, each gradient entry is clipped to [-5, 5], and
Adagrad updates the weights. Settings: hidden 100, 25 steps, learning rate 0.1, weights N(0, 0.01^2).

    python -m benchmarks.nn_minchar_baseline [--chars N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def train(text: str, hidden: int = 100, seq_length: int = 25, learning_rate: float = 1e-1,
          max_chars: int = 200_000, seed: int = 0) -> dict:
    """Train on ``text`` for ``max_chars`` characters; throughput and smoothed loss."""
    chars = sorted(set(text))                                    # sorted: the same order every run
    V = len(chars)
    ix = {c: i for i, c in enumerate(chars)}
    data = [ix[c] for c in text]
    rng = np.random.default_rng(seed)
    Wxh = rng.normal(size=(hidden, V)) * 0.01
    Whh = rng.normal(size=(hidden, hidden)) * 0.01
    Why = rng.normal(size=(V, hidden)) * 0.01
    bh = np.zeros((hidden, 1))
    by = np.zeros((V, 1))
    mem = [np.zeros_like(p) for p in (Wxh, Whh, Why, bh, by)]
    smooth = -np.log(1.0 / V)
    hprev = np.zeros((hidden, 1))
    p = 0
    seen = 0
    start = time.perf_counter()
    while seen < max_chars:
        if p + seq_length + 1 >= len(data):
            hprev = np.zeros((hidden, 1))
            p = 0
        inputs = data[p:p + seq_length]
        targets = data[p + 1:p + seq_length + 1]
        xs, hs, ps = {}, {-1: hprev}, {}
        loss = 0.0
        for t in range(len(inputs)):
            xs[t] = np.zeros((V, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
            ys = Why @ hs[t] + by
            ps[t] = np.exp(ys - ys.max()) / np.sum(np.exp(ys - ys.max()))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dhnext = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += dy @ hs[t].T
            dby += dy
            dh = Why.T @ dy + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += dhraw @ xs[t].T
            dWhh += dhraw @ hs[t - 1].T
            dhnext = Whh.T @ dhraw
        for d in (dWxh, dWhh, dWhy, dbh, dby):
            np.clip(d, -5, 5, out=d)
        for param, d, m in zip((Wxh, Whh, Why, bh, by), (dWxh, dWhh, dWhy, dbh, dby), mem):
            m += d * d
            param += -learning_rate * d / np.sqrt(m + 1e-8)
        hprev = hs[len(inputs) - 1]
        smooth = smooth * 0.999 + loss / seq_length * 0.001
        p += seq_length
        seen += seq_length
    seconds = time.perf_counter() - start
    return {"chars": seen, "seconds": seconds, "chars_per_s": seen / seconds, "smooth_loss": smooth}


if __name__ == "__main__":
    from benchmarks.common import data_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=200_000)
    a = ap.parse_args()
    print(train(data_file("tinyshakespeare.txt").read_text(), max_chars=a.chars))
