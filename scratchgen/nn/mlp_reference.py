r"""Bengio's MLP language model as a textbook writes it: one sequence, one token at a time. Read this first.

It computes what :meth:`scratchgen.nn.mlp.MLPModel.token_logprobs` computes (and, token by token,
what the training loss of :class:`~scratchgen.nn.mlp.MLPNetwork` averages), with plain Python loops:
a list of the tokens read so far, the last N of them looked up one slot at a time, each slot's
embedding multiplied by its own block of W_h. Nothing is batched, windowed by strides or concatenated;
``tests/nn/test_mlp_model.py`` proves the fast path gives the same numbers.

Letters: V vocabulary, N context, E embedding, H hidden. Parameters: ``C`` (V, E), ``W_h`` (N E, H)
whose rows k E .. (k+1) E - 1 are slot k's block W_h^k, ``b_h`` (H,), ``W_y`` (H, V), ``b_y`` (V,);
a labelled model also ``L_in`` (C, E) and ``W_c`` (E, H). For each target x_t (``</s>`` last)::

    w_1 .. w_N = the last N tokens read, <s> before the start          the window      (mlp eq. 2)
    a = b_h + sum_k C[w_k] W_h^k  (+ L_in[c] W_c for label c)          pre-activation  (M1, M2; mlp 3)
    h = tanh(a);  y = h W_y + b_y                                      hidden, logits  (M2, M3)
    log P(x_t | w) = y[x_t] - log sum_{v != <s>} exp y[v]              <s> is never next

>>> V, N, E, H = 4, 2, 1, 1                   # all weights zero: 3 possible tokens (<s> excluded)
>>> p = {"C": np.zeros((V, E)), "W_h": np.zeros((N * E, H)), "b_h": np.zeros(H),
...      "W_y": np.zeros((H, V)), "b_y": np.zeros(V)}
>>> [round(float(v), 6) for v in sequence_logprobs(p, [3], N)]    # log 1/3 for "3" and for </s>
[-1.098612, -1.098612]
"""

from __future__ import annotations

import math

import numpy as np

from ..text import Vocabulary

__all__ = ["sequence_logprobs"]

BOS, EOS = Vocabulary.bos_id, Vocabulary.eos_id


def sequence_logprobs(params: dict, ids, context: int, label: int | None = None) -> list[float]:
    """log P(x_t | the N tokens before it[, label]) of every token of one id sequence, ``</s>`` appended."""
    E = params["C"].shape[1]
    read = [BOS] * context  # what precedes the first token: N <s>
    out = []
    for target in [*ids, EOS]:
        window = read[-context:]  # the last N tokens, oldest first
        a = params["b_h"].copy()  # (H,)
        for k, token in enumerate(window):
            a += params["C"][token] @ params["W_h"][k * E : (k + 1) * E]  # slot k's block
        if label is not None:
            a += params["L_in"][label] @ params["W_c"]  # the label's vector
        h = np.tanh(a)  # (H,)
        y = h @ params["W_y"] + params["b_y"]  # (V,)
        others = [y[v] for v in range(len(y)) if v != BOS]
        top = max(others)
        log_z = top + math.log(sum(math.exp(v - top) for v in others))
        out.append(float(y[target] - log_z))
        read.append(target)
    return out
