"""Benchmark of the deep family: training speed against min-char-rnn's algorithm and PyTorch, BLAS
efficiency, memory, and the quality of trained models.

    python -m benchmarks.bench_nn --quick        # about a minute: speed, GFLOP/s, memory
    python -m benchmarks.bench_nn                # longer speed runs
    python -m benchmarks.bench_nn --quality      # the quality runs, a section of their own (10-20 minutes)
    python -m benchmarks.bench_nn --labelled     # only the labelled-vs-unlabelled rows (a few minutes)

Speed is training characters per second on tinyshakespeare (forward, backward, clipping and the
optimiser step; the same loop as ``RNNModel.fit``), peers measured in the same run, alternating
rounds, best of the rounds for each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info

from benchmarks.common import SHARED_DATA, Section, data_file, module_available, run_isolated, table, write_section
from scratchgen.nn.config import TrainConfig
from scratchgen.nn.data import stream_array
from scratchgen.nn.layers import network_backward, network_forward, one_blas_thread
from scratchgen.nn.network import RNNNetwork
from scratchgen.nn.optim import clip_by_global_norm, init_params, make_optimizer
from scratchgen.nn.parallel import DataParallel
from scratchgen.text import Vocabulary


def shakespeare_ids() -> tuple[np.ndarray, int]:
    text = data_file("tinyshakespeare.txt").read_text()
    vocab = Vocabulary.build([list(text)])
    return vocab.encode(list(text)), len(vocab)


def ours(ids, V, hidden, seq_len, batch, steps, embedding=None, dtype="float32", optimizer="adam", lr=2e-3,
         clip=5.0, layers=1, threads=1) -> float:
    """Characters per second of our training loop (first 3 steps are warm-up, not timed), the step on
    ``threads`` shards of the batch (nn/parallel.py), as RNNModel.fit with --threads does."""
    rng = np.random.default_rng(0)
    p = init_params(V, hidden, layers, embedding, rng, np.dtype(dtype))
    opt = make_optimizer(optimizer)
    rows = stream_array(ids[: batch * seq_len * (steps + 1) + 1], batch)    # (B, n+1)
    h = np.zeros((layers, batch, hidden), dtype=dtype)
    with one_blas_thread(), DataParallel(RNNNetwork(layers), threads) as parallel:   # as RNNModel.fit does
        return _ours_loop(p, opt, rows, h, seq_len, steps, clip, lr, batch, parallel)


def _ours_loop(p, opt, rows, h, seq_len, steps, clip, lr, batch, parallel):
    for i in range(steps + 3):
        if i == 3:
            start = time.perf_counter()
        k = (i % steps) * seq_len
        x, y = rows[:, k:k + seq_len], rows[:, k + 1:k + seq_len + 1]
        loss, h, grads = parallel.step(p, (x, y, None, h))
        clip_by_global_norm(grads, clip)
        opt.step(p, grads, lr)
    return batch * seq_len * steps / (time.perf_counter() - start)


@contextlib.contextmanager
def busy_core():
    """A second process spinning in a Python loop (``while 1: pass``) for the duration: the other core busy."""
    spinner = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        time.sleep(0.2)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def torch_rnn(ids, V, hidden, seq_len, batch, steps, embedding=64, lr=2e-3, threads=None) -> float:
    """PyTorch CPU: nn.Embedding + nn.RNN(tanh) + nn.Linear, Adam, clipping; same data and sizes."""
    import torch

    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        return _torch_loop(torch, ids, V, hidden, seq_len, batch, steps, embedding, lr)
    finally:
        torch.set_num_threads(default_threads)


def _torch_loop(torch, ids, V, hidden, seq_len, batch, steps, embedding, lr) -> float:
    torch.manual_seed(0)
    emb, rnn, lin = torch.nn.Embedding(V, embedding), torch.nn.RNN(embedding, hidden, batch_first=True), \
        torch.nn.Linear(hidden, V)
    params = [*emb.parameters(), *rnn.parameters(), *lin.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    rows = torch.from_numpy(stream_array(ids[: batch * seq_len * (steps + 1) + 1], batch))
    h = torch.zeros(1, batch, hidden)
    for i in range(steps + 3):
        if i == 3:
            start = time.perf_counter()
        k = (i % steps) * seq_len
        x, y = rows[:, k:k + seq_len], rows[:, k + 1:k + seq_len + 1]
        out, h = rnn(emb(x), h)
        loss = torch.nn.functional.cross_entropy(lin(out).reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        h = h.detach()
    return batch * seq_len * steps / (time.perf_counter() - start)


def minchar(text_chars: int, chars: int) -> float:
    from benchmarks.nn_minchar_baseline import train

    text = data_file("tinyshakespeare.txt").read_text()[:text_chars]
    return train(text, max_chars=chars)["chars_per_s"]


def speed_rows(quick: bool, rounds: int, minchar_rows: bool = True, steps: int | None = None) -> tuple[list, dict]:
    ids, V = shakespeare_ids()
    rows, notes = [], {}
    if minchar_rows:
        rows += _minchar_rows(ids, V, quick, rounds)
    return _pytorch_rows(ids, V, quick, rounds, rows, notes, steps)


def _minchar_rows(ids, V, quick: bool, rounds: int) -> list:
    rows = []
    # min-char-rnn's own settings: hidden 100, 25 steps, one sequence, Adagrad 0.1, float64, one-hot inputs
    mc_chars = 20_000 if quick else 100_000
    best_ours64 = best_ours32 = best_mc = 0.0
    for _ in range(rounds):
        best_mc = max(best_mc, minchar(200_000, mc_chars))
        best_ours64 = max(best_ours64, ours(ids, V, 100, 25, 1, mc_chars // 25, dtype="float64",
                                            optimizer="adagrad", lr=0.1))
        best_ours32 = max(best_ours32, ours(ids, V, 100, 25, 1, mc_chars // 25, dtype="float32",
                                            optimizer="adagrad", lr=0.1))
    rows.append(["H 100, T 25, B 1, float64 (min-char-rnn settings)", best_ours64, "min-char-rnn algorithm",
                 best_mc, best_ours64 / best_mc])
    rows.append(["H 100, T 25, B 1, float32", best_ours32, "min-char-rnn algorithm (float64)", best_mc,
                 best_ours32 / best_mc])
    return rows


def _pytorch_rows(ids, V, quick: bool, rounds: int, rows: list, notes: dict, steps: int | None) -> tuple[list, dict]:
    have_torch = module_available("torch")
    torch_threads = 0
    if have_torch:
        import torch

        torch_threads = torch.get_num_threads()  # 1 under the quick run's OMP_NUM_THREADS=1
        notes["torch"] = f"PyTorch {torch.__version__}, {torch_threads} threads by default"
    steps = steps or (15 if quick else 40)
    threads = TrainConfig().threads  # our default
    torch_name = "PyTorch nn.Embedding+nn.RNN+nn.Linear, Adam"
    for hidden in (256, 512):
        label = f"H {hidden}, T 64, B 32, float32, embedding 64, Adam"
        pairs = _rnn_pairs(ids, V, hidden, steps, rounds, threads, torch_threads if have_torch else 0)
        for (n_ours, n_torch, busy), (b_ours, b_torch) in pairs.items():
            what = f"{label}, {n_ours} thread{'s' if n_ours > 1 else ''}" + (" (default)" if n_ours == threads else "")
            peer = (f"{torch_name}, {n_torch} thread{'s' if n_torch > 1 else ''}"
                    + (" (its default)" if n_torch == torch_threads and n_torch > 1 else ""))
            if busy:
                what, peer = what + ", other core busy", peer + ", other core busy"
            if not have_torch:
                rows.append([what, b_ours, "PyTorch: skipped (not installed)", math.nan, math.nan])
            else:
                rows.append([what, b_ours, peer, b_torch, b_ours / b_torch])
    return rows, notes


def _rnn_pairs(ids, V, hidden, steps, rounds, threads, torch_threads) -> dict:
    """{(our threads, PyTorch's threads, other core busy): (ours, PyTorch's) chars/s}, best of alternating rounds:
    ours at our default threads against PyTorch's default, each at one thread, ours at 2 threads against
    PyTorch's default, and the defaults again with a spinning process on the other core."""
    theirs = torch_threads or 1
    settings = list(dict.fromkeys([(threads, theirs, False), (1, 1, False), (2, theirs, False),
                                   (threads, theirs, True)]))
    best = {key: [0.0, 0.0] for key in settings}
    for _ in range(rounds):
        for n_ours, n_torch, busy in settings:
            with busy_core() if busy else contextlib.nullcontext():
                b = best[(n_ours, n_torch, busy)]
                b[0] = max(b[0], ours(ids, V, hidden, 64, 32, steps, embedding=64, threads=n_ours))
                if torch_threads:
                    b[1] = max(b[1], torch_rnn(ids, V, hidden, 64, 32, steps, threads=n_torch))
    return {key: (b[0], b[1] if torch_threads else math.nan) for key, b in best.items()}


def step_flops(T, B, H, V, E) -> float:
    """Multiply-add FLOPs (2 per multiply-add) of the matrix products of one training step."""
    fwd = 2 * T * B * (E * H + H * H + H * V)                    # eq. (2) input and recurrence, eq. (4)
    bwd = 2 * T * B * (H * H + H * H + E * H + E * H + H * V + H * V)   # dh, dW_hh, dW_xh, dX, dW_hy, dH
    return float(fwd + bwd)


def gflops_rows(quick: bool) -> list:
    """Our whole training step against NumPy's matmul at the recurrence's shape, interleaved.

    Each round times one training step and one burst of the T products (B, H) x (H, H) that the
    recurrence makes; the best of the rounds is kept for each (the least disturbed on a shared machine).
    """
    ids, V = shakespeare_ids()
    H, B, T, E = 512, 64, 64, 64
    rounds = 8 if quick else 20
    rng = np.random.default_rng(0)
    p = init_params(V, H, 1, E, rng, np.float32)
    opt = make_optimizer("adam")
    rows = stream_array(ids[: B * T * (rounds + 1) + 1], B)      # (B, n+1)
    h = np.zeros((1, B, H), dtype=np.float32)
    hb = rng.normal(size=(B, H)).astype(np.float32)
    W = rng.normal(size=(H, H)).astype(np.float32)
    out = np.empty((B, H), dtype=np.float32)
    Hbig = rng.normal(size=(T * B, H)).astype(np.float32)
    best_step = best_dot1 = best_dot2 = best_big = math.inf
    threads = blas_threads()                                     # 1 in the quick run: then no second row
    for i in range(rounds + 1):
        with one_blas_thread():
            t = time.perf_counter()
            x, y = rows[:, i * T:(i + 1) * T], rows[:, i * T + 1:(i + 1) * T + 1]
            (loss, h), cache = network_forward(p, (x, y, None, h))
            grads, _ = network_backward(p, cache)
            clip_by_global_norm(grads, 5.0)
            opt.step(p, grads, 2e-3)
            step = time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(T):
                np.dot(hb, W, out=out)
            dot1 = (time.perf_counter() - t) / T
            t = time.perf_counter()
            Hbig.T @ Hbig
            big = time.perf_counter() - t
        dot2 = math.inf
        if threads > 1:
            t = time.perf_counter()
            for _ in range(T):
                np.dot(hb, W, out=out)
            dot2 = (time.perf_counter() - t) / T
        if i:                                                    # round 0 is warm-up
            best_step, best_dot1 = min(best_step, step), min(best_dot1, dot1)
            best_dot2, best_big = min(best_dot2, dot2), min(best_big, big)
    achieved = step_flops(T, B, H, V, E) / best_step / 1e9
    numpy_one = 2 * B * H * H / best_dot1 / 1e9
    numpy_default = 2 * B * H * H / best_dot2 / 1e9              # 0 when not measured
    numpy_big = 2 * T * B * H * H / best_big / 1e9
    peak = max(numpy_default, numpy_one)
    rows = [["our training step (all of it: products, tanh, softmax, Adam)", achieved, achieved / peak]]
    if threads > 1:
        rows.append([f"NumPy matmul (64, 512) x (512, 512), default threads ({threads})", numpy_default,
                     numpy_default / peak])
    return rows + [
        ["NumPy matmul (64, 512) x (512, 512), one thread (as we train)", numpy_one, numpy_one / peak],
        ["NumPy matmul (512, 4096) x (4096, 512) (the dW_hh product), one thread", numpy_big, numpy_big / peak],
    ]


def blas_threads() -> int:
    """Threads the BLAS uses now (threadpoolctl), 1 when it knows of no BLAS."""
    return max([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"], default=1)


def memory_rows() -> list:
    """Bytes kept for the backward pass (the cache) and peak bytes allocated by a step, by T and B.

    One fresh interpreter measures every shape (tracemalloc's peak is reset before each step).
    """
    shapes = ((32, 32), (64, 32), (128, 32), (64, 16), (64, 64))
    code = f"""
import json, numpy as np, tracemalloc
from scratchgen.nn.layers import network_forward, network_backward
from scratchgen.nn.optim import init_params
V, H = 65, 256
p = init_params(V, H, 1, 64, np.random.default_rng(0), np.float32)
def size(x):
    if isinstance(x, np.ndarray): return x.nbytes
    if isinstance(x, dict): return sum(size(v) for v in x.values())
    if isinstance(x, (list, tuple)): return sum(size(v) for v in x)
    return 0
tracemalloc.start()
out = []
for T, B in {shapes!r}:
    ids = np.random.default_rng(1).integers(3, V, size=(B, T + 1))
    h0 = np.zeros((1, B, H), np.float32)
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    (loss, h), cache = network_forward(p, (ids[:, :-1], ids[:, 1:], None, h0))
    cached = size(cache)
    network_backward(p, cache)
    out.append((cached / 2**20, (tracemalloc.get_traced_memory()[1] - before) / 2**20))
    del cache, h, loss, ids, h0
print(json.dumps(out))
"""
    measured = json.loads(run_isolated(code).strip().splitlines()[-1])
    return [[T, B, cached, cached / (T * B) * 1024, peak, peak / (T * B) * 1024]
            for (T, B), (cached, peak) in zip(shapes, measured)]


def quality_rows(cpu_seconds: float = 600.0, names: bool = True, shakespeare: bool = True) -> list:
    """tinyshakespeare (last 10% held out) and names.txt (1,000 names held out, makemore's split size)."""
    from scratchgen import RNNModel, read_corpus
    from scratchgen.nn import ShowProgress

    rows = []
    if not shakespeare:
        return rows + names_rows(RNNModel) if names else rows
    corpus = read_corpus(data_file("tinyshakespeare.txt"), mode="chunks", chunk_size=256)
    t = time.perf_counter()
    m = RNNModel(hidden=512, layers=1, embedding=128, seq_len=64, batch_size=32, lr=3e-3, dropout=0.2, epochs=1000,
                 running_text=True,
                 valid_fraction=0.1, patience=None, eval_interval=200, dtype="float32", seed=0,
                 time_limit=cpu_seconds, clock="cpu").fit(corpus, callbacks=[ShowProgress()])
    rows.append(["tinyshakespeare, last 10% held out",
                 "H 512, 1 layer, embedding 128, dropout 0.2, T 64, B 32, Adam 3e-3 cosine, "
                 f"float32, {cpu_seconds:g} CPU-seconds (one core)", m.history_[-1]["tokens"],
                 f"{time.perf_counter() - t:.0f} wall, {m.history_[-1]['cpu_seconds']:.0f} CPU",
                 f"{m.valid_loss_:.4f}", "<= 1.55 within 10 min on 2 cores"])
    return rows + names_rows(RNNModel) if names else rows


def names_rows(RNNModel) -> list:
    rows = []
    test, train, split = names_split()
    for lr, schedule in ((5e-4, "constant"), (4e-3, "cosine")):
        t = time.perf_counter()
        m = RNNModel(hidden=64, embedding=64, batch_size=32, optimizer="adamw", lr=lr, lr_schedule=schedule,
                     max_steps=10_000, epochs=1000, valid_fraction=0.05, patience=None, dtype="float32",
                     seed=0).fit(train)
        rows.append([f"names.txt, 1,000 names held out ({split})", f"E 64, H 64, B 32, AdamW {lr:g} {schedule}, "
                     "10,000 steps (makemore's size)", m.history_[-1]["tokens"],
                     f"{time.perf_counter() - t:.0f} wall, {m.history_[-1]['cpu_seconds']:.0f} CPU",
                     f"{m.score(test).cross_entropy_nats:.4f}", "<= 2.08 (makemore's RNN: 2.084)"])
    return rows


def names_split() -> tuple[list, list, str]:
    """makemore's test split (torch.randperm after manual_seed(3407)) when PyTorch is there, else NumPy's:
    (test, train, what). As makemore's ``create_datasets``, the test names are the permutation's *last*
    1,000 and the training names all the others (before session 17 this took the first 1,000)."""
    words = [w.strip() for w in data_file("names.txt").read_text().splitlines()]
    words = [w for w in words if w]
    if module_available("torch"):
        import torch

        torch.manual_seed(3407)
        perm, split = torch.randperm(len(words)).tolist(), "makemore's split"
    else:
        perm, split = np.random.default_rng(3407).permutation(len(words)).tolist(), "a NumPy random split"
    return [words[i] for i in perm[-1000:]], [words[i] for i in perm[:-1000]], split




# --- a labelled RNN against an unlabelled one of the same size (issue 11) ---------------------------


def form_label(tokens: list[str]) -> str:
    """The form of a sentence of the built-in English grammar, which its words decide: a question ends in
    '?', a compound joins two clauses with 'and' or 'but' (the grammar uses them nowhere else)."""
    if tokens[-1] == "?":
        return "question"
    return "compound" if ("and" in tokens or "but" in tokens) else "statement"


def grammar_labelled_corpus(per_label: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """``per_label`` sentences of each form drawn from builtin:english (balanced: the rare forms are kept
    until each has as many as the others), shuffled."""
    from scratchgen.grammar.model import GrammarModel

    grammar = GrammarModel.from_grammar("builtin:english")
    kept: dict[str, list] = {"question": [], "compound": [], "statement": []}
    draw = 0
    while min(len(v) for v in kept.values()) < per_label:
        for tokens in grammar.sample(4 * per_label, seed=seed + draw):
            bucket = kept[form_label(tokens)]
            if len(bucket) < per_label:
                bucket.append(tokens)
        draw += 1
    pairs = [(label, tokens) for label, sentences in kept.items() for tokens in sentences]
    order = np.random.default_rng(seed).permutation(len(pairs))
    return [pairs[i][0] for i in order], [pairs[i][1] for i in order]


def grammar_truth(test_labels: list[str], test_texts: list[list[str]]) -> tuple[float, float]:
    """The true cross-entropies of the balanced corpus, from the grammar itself: given the label,
    -log P_g(x | c) = -log P_g(x) + log P_g(c), with P_g(c) the start rules' weights of each form; and the
    marginal of the balanced corpus, P(x) = P_g(x | c) / 3. Nats per token, </s> counted."""
    from scratchgen.grammar.model import GrammarModel

    grammar = GrammarModel.from_grammar("builtin:english")
    prior = {"question": 0.0, "compound": 0.0, "statement": 0.0}
    for rule in grammar.grammar_.rules:
        if rule.lhs == grammar.grammar_.start:
            prior["question" if rule.rhs == ("Q",) else "compound" if "CONJ" in rule.rhs else "statement"] += rule.prob
    tokens = sum(len(x) + 1 for x in test_texts)
    given = -sum(grammar.logprob(x) - math.log(prior[c]) for c, x in zip(test_labels, test_texts)) / tokens
    return given, given + len(test_texts) * math.log(len(prior)) / tokens


def shakespeare_speakers(speakers: int = 4, per_label: int = 1500) -> tuple[list[str], list[str]] | None:
    """Lines of tinyshakespeare labelled by who speaks them: the ``speakers`` with most lines, as many lines
    each as the least of them has (at most ``per_label``: balanced). None when the corpus is not there."""
    path = SHARED_DATA / "tinyshakespeare.txt"
    if not path.exists():
        return None
    by_speaker: dict[str, list[str]] = {}
    speaker = None
    for line in path.read_text().splitlines():
        if not line.strip():
            speaker = None
        elif speaker is None and line.endswith(":"):
            speaker = line[:-1]
        elif speaker is not None:
            by_speaker.setdefault(speaker, []).append(line)
    top = sorted(by_speaker, key=lambda k: -len(by_speaker[k]))[:speakers]
    each = min(per_label, *(len(by_speaker[name]) for name in top))
    pairs = [(name, text) for name in top for text in by_speaker[name][:each]]
    order = np.random.default_rng(0).permutation(len(pairs))
    return [pairs[i][0] for i in order], [pairs[i][1] for i in order]


def _held_out(labels: list, texts: list, fraction: float = 0.2) -> tuple:
    """The last ``fraction`` of an already shuffled corpus held out."""
    n = int(len(texts) * (1 - fraction))
    return labels[:n], texts[:n], labels[n:], texts[n:]


def labelled_pair_row(
    corpus: str, labels: list, texts: list, model_kw: dict, train_kw: dict, fidelity=None, truth=None
) -> list:
    """Train a labelled RNN and an unlabelled one of the same size on the same lines and steps; held-out
    cross-entropy given the label (and the labelled model's marginal), classification accuracy, and, when
    the label is a function of the text (``fidelity``), how often a sample of label c has the form c;
    ``truth(labels, texts)``: the true (given, marginal) cross-entropies when the source is known."""
    from scratchgen import RNNModel

    train_labels, train_texts, test_labels, test_texts = _held_out(labels, texts)
    kw = {**model_kw, **train_kw}
    t = time.perf_counter()
    labelled = RNNModel(**kw).fit(train_texts, labels=train_labels)
    t_labelled = time.perf_counter() - t
    t = time.perf_counter()
    plain = RNNModel(**kw).fit(train_texts)
    t_plain = time.perf_counter() - t
    given = labelled.score(test_texts, labels=test_labels).cross_entropy_nats
    marginal = labelled.score(test_texts).cross_entropy_nats
    unlabelled = plain.score(test_texts).cross_entropy_nats
    predicted = labelled.classify(test_texts).labels
    accuracy = float(np.mean([p == y for p, y in zip(predicted, test_labels)]))
    majority = max(test_labels.count(c) for c in set(test_labels)) / len(test_labels)
    if fidelity is not None:
        hits = [fidelity(s) == c for c in labelled.labels_.names for s in labelled.generate(100, label=c, seed=0)
                if s]
        faithful = f"{np.mean(hits):.3f}"
    else:
        faithful = "n/a (no rule)"
    true_ce = "n/a (unknown source)" if truth is None else "{:.4f} / {:.4f}".format(*truth(test_labels, test_texts))
    n_params = sum(v.size for v in plain.params_.values())
    extra = sum(v.size for k, v in labelled.params_.items() if k.startswith("L_"))
    return [corpus, f"{len(train_texts):,} / {len(test_texts):,}",
            ", ".join(f"{k} {v}" for k, v in model_kw.items() if k != "dtype") + f" ({n_params:,} + {extra:,} label)",
            f"{unlabelled:.5f}", f"{given:.5f}", f"{marginal:.5f}", true_ce,
            f"{accuracy:.3f} (majority {majority:.3f})", faithful, f"{t_plain:.0f} / {t_labelled:.0f}"]


def labelled_rows(quick: bool) -> list:
    """The label-conditional RNN against an unlabelled RNN of the same size on labelled corpora."""
    rows = []
    per_label = 150 if quick else 2000
    labels, sentences = grammar_labelled_corpus(per_label)
    model_kw = dict(hidden=32 if quick else 128, embedding=16 if quick else 32, dtype="float32")
    train_kw = dict(batch_size=16 if quick else 32, lr=1e-2 if quick else 3e-3, epochs=15 if quick else 30,
                    valid_fraction=0.1, patience=None if quick else 3, seed=0)
    rows.append(labelled_pair_row("builtin:english by form (question / compound / statement), words",
                                  labels, sentences, model_kw, train_kw, form_label, grammar_truth))
    speakers = None if quick else shakespeare_speakers()
    if speakers is not None:
        names, lines = speakers
        rows.append(labelled_pair_row(f"tinyshakespeare lines by speaker ({', '.join(sorted(set(names)))}), chars",
                                      names, lines, dict(hidden=256, embedding=64, dtype="float32"),
                                      dict(batch_size=32, lr=3e-3, epochs=20, valid_fraction=0.1, patience=2,
                                           seed=0)))
    return rows


LABELLED_HEADER = ["corpus", "train / held-out lines", "model (parameters)", "unlabelled CE",
                   "labelled CE given the label", "labelled CE, marginal", "true CE given / marginal",
                   "classification accuracy",
                   "samples of label c with form c", "seconds (unlabelled / labelled)"]
LABELLED_NOTE = (
    "\n\nCross-entropy in nats per token on the held-out lines (</s> counted). The labelled model gives "
    "log P(x | c) with c the line's label, and its marginal log sum_c P(c) P(x | c); when the label is a "
    "function of the text (the grammar rows), the marginal equals log P(x) and the label's own cost is "
    "log P(c) = CE(marginal) - CE(given) per token. The true CE is the grammar's own (its start rules give "
    "P(c)), the floor any model of these lines can reach. Accuracy of argmax_c log P(x | c) + log P(c) against the "
    "majority class. Same hidden width, embedding, steps and seed for both models; the labelled one has "
    "the label tables L_in and L_h.l more (eqs. L1-L4 of scratchgen/nn/conditioning.py)."
)


def run_labelled(quick: bool) -> Section:
    body = table(LABELLED_HEADER, labelled_rows(quick)) + LABELLED_NOTE
    return Section(name="nn-labelled", title="nn: a labelled RNN P(x | c) against an unlabelled one", body=body,
                   command="python -m benchmarks.bench_nn --labelled" + (" --quick" if quick else ""))


def run_quality(cpu_seconds: float, names: bool = True, shakespeare: bool = True) -> Section:
    body = table(["corpus", "model", "tokens trained", "seconds", "loss (nats/char)", "target"],
                 quality_rows(cpu_seconds, names, shakespeare))
    return Section(name="nn-quality", title="nn: quality of trained RNNs", body=body,
                   command="python -m benchmarks.bench_nn --quality"
                   + (f" --cpu-seconds {cpu_seconds:g}" if shakespeare else " --names-only"))


def run(quick: bool, quality: bool = False) -> Section:
    rounds = 2 if quick else 3
    speed, notes = speed_rows(quick, rounds)
    body = ["### Training throughput (characters/s, tinyshakespeare, best of "
            f"{rounds} alternating rounds)\n",
            table(["ours", "chars/s", "peer", "peer chars/s", "ratio"], speed),
            "\nTargets: >= 3x min-char-rnn at its settings; >= 1.0x PyTorch at H 256 and 512, T 64, B 32, at the "
            "default threads of each and at one thread each (ours: the batch in shards, one thread each, "
            "nn/parallel.py). Wall-clock chars/s; 'other core busy': a `while 1: pass` process runs beside. "
            + (notes.get("torch", "") + "." if notes else ""),
            "\n### BLAS efficiency at H 512, B 64, T 64, float32 (GFLOP/s of matrix products)\n",
            table(["what", "GFLOP/s", "fraction of best NumPy (64, 512) x (512, 512)"], gflops_rows(quick)),
            "\nTarget: our whole training step >= 50% of NumPy's matmul throughput at the same shape.",
            "\n### Memory of one training step (H 256, E 64, float32)\n",
            table(["T", "B", "cache MiB", "cache KiB per (t, b)", "peak allocated MiB (forward + backward)",
                   "peak KiB per (t, b)"], memory_rows()),
            "\nBoth grow as T x B (constant KiB per position): memory is linear in sequence length and in batch "
            "(peak measured with tracemalloc, which sees NumPy's allocations).",
            "\n### A labelled RNN P(x | c) against an unlabelled one of the same size\n",
            table(LABELLED_HEADER, labelled_rows(quick)) + LABELLED_NOTE]
    return Section(name="nn", title="nn: vanilla RNN (hand-written BPTT)", body="\n".join(body),
                   command="python -m benchmarks.bench_nn" + (" --quick" if quick else ""))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Benchmark of the RNN family")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--quality", action="store_true",
                    help="only the long quality runs (a section of their own): tinyshakespeare and names")
    ap.add_argument("--cpu-seconds", type=float, default=600.0,
                    help="CPU-time budget of the tinyshakespeare run (default 600: one core for 10 minutes)")
    ap.add_argument("--names-only", action="store_true", help="with --quality: only the names runs (a minute)")
    ap.add_argument("--labelled", action="store_true",
                    help="only the labelled-vs-unlabelled rows (a section of their own; with --quick, small)")
    ap.add_argument("--speed", action="store_true",
                    help="only the training-speed rows against PyTorch at H 256 and 512 (a section of their own)")
    ap.add_argument("--steps", type=int, default=None, help="with --speed: timed steps a measurement (default 40)")
    ap.add_argument("--rounds", type=int, default=3, help="with --speed: alternating rounds (default 3)")
    a = ap.parse_args()
    if a.speed:
        rows, notes = speed_rows(a.quick, a.rounds, minchar_rows=False, steps=a.steps)
        command = "python -m benchmarks.bench_nn --speed" + (f" --steps {a.steps}" if a.steps else "")
        section = Section(name="nn-speed", title="nn: vanilla RNN training speed against PyTorch", body=(
            f"Best of {a.rounds} alternating rounds; wall-clock chars/s; ours: the batch in shards, one BLAS thread "
            "each (nn/parallel.py); 'other core busy': a `while 1: pass` process runs beside. "
            + notes.get("torch", "") + ".\n\n" + table(["ours", "chars/s", "peer", "peer chars/s", "ratio"], rows)),
            command=command + f" --rounds {a.rounds}")
    elif a.labelled:
        section = run_labelled(a.quick)
    else:
        section = run_quality(a.cpu_seconds, shakespeare=not a.names_only) if a.quality else run(a.quick)
    print(section.markdown())
    write_section(section)
    sys.exit(0)
