"""Benchmark of Bengio's MLP (scratchgen/nn/mlp.py): quality on names.txt beside makemore's MLP and beside its
statistical twin, the n-gram of order N + 1, and training speed against a PyTorch MLP of the same shape.

    python -m benchmarks.deep_mlp --quick     # a minute: short runs, same tables
    python -m benchmarks.deep_mlp             # makemore's size and 10,000 steps (several minutes)

:func:`mlp_rows` gives the section's markdown for ``benchmarks/bench_deep.py``. The split is
``benchmarks.bench_nn.names_split`` (makemore's own permutation, torch.manual_seed(3407), when PyTorch is
installed; else a NumPy permutation of the same sizes: 1,000 test names), the one the RNN's row uses.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.common import Section, module_available, table, write_section

MAKEMORE_MLP = 2.053  # makemore's README, test loss of its MLP on names.txt (measured on this machine)
SIZE = dict(embedding=64, hidden=64)  # makemore's n_embd, n_embd2
CONTEXT = 16  # makemore's block_size on names.txt: the longest name (15) + 1


#: The recipes of the quality rows: makemore's own (AdamW 5e-4 constant) and the best found in session 17
#: (a higher peak rate, 200 warm-up steps, cosine decay), as (lr, schedule, warm-up steps).
RECIPES = ((5e-4, "constant", 0), (2e-3, "cosine", 200))


def _fit(train, context, steps, lr, schedule, seed=0, warmup=0):
    """Trained on every name outside the test set, as makemore trains (no validation split, the last weights)."""
    from scratchgen import MLPModel

    t = time.perf_counter()
    m = MLPModel(context=context, **SIZE, batch_size=32, optimizer="adamw", lr=lr, lr_schedule=schedule,
                 warmup=warmup, weight_decay=0.01, max_steps=steps, epochs=10_000, valid_fraction=0.0,
                 patience=None, dtype="float32", seed=seed).fit(train)
    return m, time.perf_counter() - t


def quality_rows(quick: bool) -> list:
    """Test loss at makemore's size (context 16, E 64, H 64, B 32, AdamW) and step count, beside 2.053."""
    from benchmarks.bench_nn import names_split

    test, train, split = names_split()
    steps = 600 if quick else 10_000
    rows = []
    for lr, schedule, warmup in RECIPES:
        m, secs = _fit(train, CONTEXT, steps, lr, schedule, warmup=warmup)
        warm = f", warm-up {warmup}" if warmup else ""
        rows.append([f"names.txt, 1,000 test names ({split})",
                     f"context {CONTEXT}, E 64, H 64, B 32, AdamW {lr:g} {schedule}{warm}, {steps:,} steps",
                     f"{secs:.0f}", f"{m.score(test).cross_entropy_nats:.4f}",
                     f"<= {MAKEMORE_MLP} (makemore's MLP)" if not quick else "(quick: short run)"])
    return rows


def twin_rows(quick: bool) -> list:
    """The MLP of context N beside the n-gram of order N + 1 (modified Kneser-Ney) on the same split."""
    from benchmarks.bench_nn import names_split
    from scratchgen import NGramModel

    test, train, _ = names_split()
    steps = 600 if quick else 10_000
    rows = []
    for N in (1, 2, 3, 5) if not quick else (2,):
        ngram = NGramModel(order=N + 1).fit(train)
        m, _ = _fit(train, N, steps, 4e-3, "cosine")
        rows.append([N, f"{ngram.score(test).cross_entropy_nats:.4f}", f"{m.score(test).cross_entropy_nats:.4f}"])
    return rows


def _batches(train, n, rng):
    from scratchgen.nn.data import padded_batch
    from scratchgen.text import Vocabulary

    vocab = Vocabulary.build([list(w) for w in train])
    ids = [vocab.encode(list(w)) for w in train]
    return len(vocab), [padded_batch([ids[i] for i in rng.integers(0, len(ids), 32)]) for _ in range(n)]


def _ours_steps_per_second(V, batches, context) -> float:
    from scratchgen.nn.mlp import MLPNetwork, init_mlp_params
    from scratchgen.nn.optim import make_optimizer
    from scratchgen.threads import one_blas_thread

    p = init_mlp_params(V, context, 64, 64, np.random.default_rng(0), np.float32)
    net, opt = MLPNetwork(context), make_optimizer("adamw", 0.01)
    with one_blas_thread():  # as the Trainer runs
        t = time.perf_counter()
        for x, y, mask in batches:
            (_, _), cache = net.forward(p, (x, y, mask, None))
            opt.step(p, net.backward(p, cache)[0], 5e-4)
        return len(batches) / (time.perf_counter() - t)


def _torch_steps_per_second(V, batches, context, threads=None) -> float:
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    emb = torch.nn.Embedding(V, 64)
    mlp = torch.nn.Sequential(torch.nn.Linear(context * 64, 64), torch.nn.Tanh(), torch.nn.Linear(64, V))
    params = list(emb.parameters()) + list(mlp.parameters())
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.01)
    from scratchgen.nn.data import BOS
    from scratchgen.nn.mlp import chunk_windows

    data = []
    for x, y, mask in batches:  # the same windows, built outside the timed loop
        w, _ = chunk_windows(np.full((len(x), context), BOS), x)
        target = np.where(mask, y, -100)
        data.append((torch.from_numpy(np.ascontiguousarray(w)), torch.from_numpy(target)))
    t = time.perf_counter()
    for w, target in data:
        B, T = target.shape
        logits = mlp(emb(w).reshape(B, T, -1))
        loss = torch.nn.functional.cross_entropy(logits.reshape(B * T, V), target.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(data) / (time.perf_counter() - t)


def speed_rows(quick: bool) -> list:
    """Training steps/s at makemore's MLP shape (batches of 32 names), the same batches for both."""
    from benchmarks.bench_nn import names_split

    _, train, _ = names_split()
    n = 100 if quick else 400
    V, batches = _batches(train, n, np.random.default_rng(0))
    ours = max(_ours_steps_per_second(V, batches, CONTEXT) for _ in range(2))
    rows = [["ours (NumPy, one BLAS thread)", f"{ours:.0f}", "", ""]]
    if not module_available("torch"):
        return rows + [["PyTorch", "not installed: skipped", "", ""]]
    import torch

    default = torch.get_num_threads()
    for threads, name in ((None, f"PyTorch CPU, default threads ({default})"), (1, "PyTorch CPU, one thread")):
        peer = max(_torch_steps_per_second(V, batches, CONTEXT, threads) for _ in range(2))
        rows.append([name, f"{peer:.0f}", f"{ours / peer:.2f}x", ""])
    torch.set_num_threads(default)
    return rows


def mlp_rows(quick: bool) -> str:
    """The MLP's part of the deep section (markdown): quality beside makemore, the n-gram twin, speed."""
    body = [
        "### Bengio's MLP on names.txt beside makemore's MLP (test loss, nats/char)\n",
        table(["data", "model and run", "seconds", "test loss", "target"], quality_rows(quick)),
        "\n### The MLP of context N beside its statistical twin, the n-gram of order N + 1 (test loss, names.txt)\n",
        table(["N", "n-gram order N + 1 (modified Kneser-Ney)", "MLP context N (E 64, H 64)"], twin_rows(quick)),
        "\n### Training speed at makemore's MLP shape (context 16, E 64, H 64, batches of 32 names, float32)\n",
        table(["trainer", "steps/s", "ours / peer", ""], speed_rows(quick)),
        "\nThe same 32-name batches for both (windows built outside PyTorch's timed loop, inside ours); "
        "forward, backward and an AdamW step. At this small shape PyTorch's default threads can be far slower "
        "than its one thread on a 2-core machine (its threads wait on each other), so the one-thread ratio is "
        "the comparison that counts.",
    ]
    return "\n".join(body)


def run(quick: bool) -> Section:
    return Section(name="deep_mlp", title="deep: Bengio's MLP language model", body=mlp_rows(quick),
                   command="python -m benchmarks.deep_mlp" + (" --quick" if quick else ""))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Benchmark of Bengio's MLP language model")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true", help="also write the section into benchmarks/RESULTS.md")
    a = ap.parse_args()
    section = run(a.quick)
    print(section.markdown())
    if a.write:
        write_section(section)
    sys.exit(0)
