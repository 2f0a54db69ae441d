"""The memory a training run needs, estimated before anything is allocated (checked by
:func:`scratchgen.resources.check_memory` before a run starts)."""

from __future__ import annotations

__all__ = ["WORKER_BASE_BYTES", "training_memory"]

#: The resident memory of a shard's worker process before its first step (nn/process_shards.py): a second
#: interpreter with NumPy and scratchgen.nn imported. Measured 30 MiB (ru_maxrss, session 22); counted as 40.
WORKER_BASE_BYTES = 40 * 2**20


def training_memory(
    V: int,
    hidden: int,
    layers: int,
    embedding: int | None,
    batch: int,
    seq_len: int,
    itemsize: int,
    optimizer: str,
    eval_rows: int,
    eval_len: int,
    labels: int = 0,
    gates: int = 1,
    processes: int = 1,
) -> float:
    """Bytes a training run needs, estimated before anything is allocated.

    - parameters P (counted below), their gradients, the best copy, the last good copy with its
      optimiser state, and the optimiser's own state (Adam: m and v; SGD and Adagrad: one array);
    - the activations of one step of B x T tokens: per layer the inputs, states and their gradients
      (about 4 H numbers a token), the logits, probabilities and their gradient (3 V a token), the
      embeddings (2 E a token); validation runs ``eval_rows`` x ``eval_len`` tokens through the same;
    - the orthogonal initialisation of W_hh: a Gaussian matrix and its QR in float64 (3 H^2 numbers);
    - a labelled model's tables (``labels`` C > 0): L_in (C, E or H) and L_h.l (C, H) a layer.
    - ``gates`` k column blocks of the recurrent weights (1 tanh, 3 GRU, 4 LSTM): W_xg, W_hg and b_g
      are k times the tanh layer's, and every token of a chunk keeps, a layer, about 14 H numbers instead
      of 4 H: a GRU its state, r, z, n, the recurrent part of n (5 H), the input products (3 H) and the
      backward's two buffers of gate gradients (6 H); an LSTM h, c, tanh(c) and the four gates (7 H), the
      gate gradients (4 H), d c / d h and the temporaries of the backward (3 H). (Measured against
      tracemalloc's peak by benchmarks/deep_gated.py: 1.07-1.4x of it.) A labelled gated model with
      one-hot inputs reads a dense (B, T, V) input, and an LSTM has a second start table L_c.l.
    - ``processes`` k > 1: the step's batch is cut into k shards, k - 1 of them run by worker processes
      (the LSTM at ``--threads k``, :mod:`scratchgen.nn.process_shards`). Each worker is an interpreter of its
      own (:data:`WORKER_BASE_BYTES`), maps two shared blocks the size of the parameters (the parameters, its
      gradients), makes its own gradients before copying them there, and holds the activations of its shard,
      ceil(B / k) of the B rows. The calling process is counted as before (the whole batch's activations: an
      upper bound for its own shard, and validation runs the whole batch there).
    """
    H, L, E = hidden, layers, embedding or 0
    k = gates
    first_input = V * E + E * k * H if E else V * k * H  # C and W_xh.0, or the one-hot W_xh.0
    n_params = first_input + (L - 1) * H * k * H + L * k * (H * H + H) + H * V + V
    if k == 1:
        n_params += labels * ((E or H) + L * H)  # L_in and L_h.l
    else:  # L_in (C, E or V), L_h.l and (LSTM) L_c.l; b_hn.l of a GRU
        n_params += labels * ((E or V) + L * H * (2 if k == 4 else 1)) + (L * H if k == 3 else 0)
    slots = 2 if optimizer in ("adam", "adamw") else 1
    weights = n_params * itemsize * (4 + 2 * slots)  # params, grads, best, good; opt state twice
    per_token = (4 if k == 1 else 14) * L * H + 3 * V + 2 * E
    if k > 1 and labels and not E:
        per_token += 2 * V  # the dense one-hot input with its label vector, and its gradient
    activations = max(batch * seq_len, eval_rows * eval_len) * per_token * itemsize
    init = 3 * H * H * 8 + n_params * 8  # one orthogonal block at a time
    workers = 0.0
    if processes > 1:
        shard_rows = -(-batch // processes)  # ceil(B / k)
        per_worker = WORKER_BASE_BYTES + 3 * n_params * itemsize + shard_rows * seq_len * per_token * itemsize
        workers = (processes - 1) * per_worker
    return float(max(weights + activations, init) + workers)
