"""The Transformer's rows of ``benchmarks/bench_deep.py``: quality, speed against PyTorch, generation, memory.

    python -m benchmarks --quick --only deep                 # the quick rows (seconds)
    python -m benchmarks.deep_transformer [--quick]          # this file's rows alone
    python -m benchmarks.deep_transformer --speed [--quick]  # speed and generation rows only, into RESULTS.md

Quality: names.txt at makemore's split and size (E 64, 4 layers, 4 heads, context 32, batch 32, 10,000
steps; makemore's Transformer row, AdamW 5e-4 constant, weight decay 0.01: test loss 1.9725) with makemore's
recipe and with a higher peak rate, warm-up and cosine decay (``NAMES_RECIPES``), and
tinyshakespeare with the last 10% held out within 10 CPU-minutes. Speed: one training step (forward,
backward, AdamW) against a PyTorch model of the same shape, with the default BLAS threads and with one.
Generation: seconds per token at growing positions with the key/value cache. Memory: the peak of one
training step (tracemalloc, which sees NumPy's buffers) as T and B grow, beside an RNN's.
"""

from __future__ import annotations

import math
import sys
import time
import tracemalloc

import numpy as np

from .common import Section, module_available, table

# makemore's Transformer (its README's table): E 64, 4 layers, 4 heads, block 32, batch 32, AdamW 5e-4
MAKEMORE = {"layers": 4, "heads": 4, "embedding": 64, "context": 32}


#: The recipes of the names rows: makemore's own (AdamW 5e-4 constant) and the best found in session 17.
NAMES_RECIPES = (
    dict(lr=5e-4, lr_schedule="constant", warmup=0),
    dict(lr=2e-3, lr_schedule="cosine", warmup=200),
)


def names_quality(steps: int = 10_000, dtype: str = "float32", lr: float = 5e-4, lr_schedule: str = "constant",
                  warmup: int = 0) -> list:  # fmt: skip
    """One row: our test loss on makemore's 1,000 held-out names after ``steps`` steps at its size
    (every name's characters and its end token, the loss a mean over all of them, as makemore's)."""
    from scratchgen import TransformerModel

    from .bench_nn import names_split

    test, train, split = names_split()
    t = time.perf_counter()
    m = TransformerModel(**MAKEMORE, dtype=dtype, batch_size=32, optimizer="adamw", lr=lr, weight_decay=0.01,
                         lr_schedule=lr_schedule, warmup=warmup, clip=None, max_steps=steps, epochs=10_000,
                         valid_fraction=0.0, patience=None, seed=0).fit(train)  # fmt: skip
    loss = m.score(test).cross_entropy_nats
    recipe = f"AdamW {lr:g} wd 0.01 {lr_schedule}" + (f", warm-up {warmup}" if warmup else "")
    return [f"names.txt, 1,000 names held out ({split})",
            f"E 64, 4 layers, 4 heads, context 32, B 32, {recipe}, {steps:,} steps, {dtype}",
            f"{time.perf_counter() - t:.0f} wall, {m.history_[-1]['cpu_seconds']:.0f} CPU",
            f"{loss:.4f}", "<= 1.972 (makemore's Transformer: 1.9725)"]  # fmt: skip


def shakespeare_quality(cpu_seconds: float = 600.0, embedding: int = 128, layers: int = 2, context: int = 64,
                        stride: int = 1) -> list:  # fmt: skip
    """One row: held-out loss on the last 10% of tinyshakespeare after ``cpu_seconds`` of training: as the
    training loop measured it (the windows of eq. (T4)) and, after training, read through windows sliding by
    ``stride`` tokens (1: every prediction past the first T sees T tokens, the longest context trained for)."""
    from scratchgen import TransformerModel

    from .deep_shakespeare import corpus, held_out_stream

    pieces = corpus()
    t = time.perf_counter()
    m = TransformerModel(layers=layers, heads=4, embedding=embedding, context=context, dtype="float32",
                         batch_size=32, optimizer="adamw", lr=2e-3, weight_decay=0.01, lr_schedule="cosine",
                         warmup=200, clip=1.0, epochs=1000, running_text=True, valid_fraction=0.1, patience=None,
                         eval_interval=500, seed=0, time_limit=cpu_seconds, clock="cpu").fit(pieces)  # fmt: skip
    wall = time.perf_counter() - t
    sliding = m.network().stream_loss(m.params_, held_out_stream(m, pieces), stride=stride)[0]
    return ["tinyshakespeare, last 10% held out",
            f"E {embedding}, {layers} layers, 4 heads, context {context}, B 32, AdamW 2e-3 cosine, float32, "
            f"{cpu_seconds:g} CPU-seconds", f"{wall:.0f} wall, "
            f"{m.history_[-1]['cpu_seconds']:.0f} CPU, {m.history_[-1]['tokens']:,} tokens",
            f"{m.valid_loss_:.4f} (eq. T4 windows); {sliding:.4f} (windows sliding by {stride})",
            "<= 1.50 (nanoGPT's GPU baby model 1.4697)"]  # fmt: skip


# --- speed against PyTorch ------------------------------------------------------------------------------


def _torch_model(V: int, D: int, L: int, A: int, T: int):
    """A PyTorch GPT-2 block stack of the same shape (pre-LN, tanh GELU, tied output)."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
            self.qkv, self.o = nn.Linear(D, 3 * D), nn.Linear(D, D)
            self.mlp = nn.Sequential(nn.Linear(D, 4 * D), nn.GELU(approximate="tanh"), nn.Linear(4 * D, D))

        def forward(self, x):
            B, T_, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(D, dim=2)
            q, k, v = (z.view(B, T_, A, D // A).transpose(1, 2) for z in (q, k, v))
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.o(y.transpose(1, 2).reshape(B, T_, D))
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.C, self.P = nn.Embedding(V, D), nn.Embedding(T, D)
            self.blocks = nn.ModuleList(Block() for _ in range(L))
            self.lnf, self.b = nn.LayerNorm(D), nn.Parameter(torch.zeros(V))

        def forward(self, ids, targets):
            x = self.C(ids) + self.P(torch.arange(ids.shape[1]))
            for blk in self.blocks:
                x = blk(x)
            logits = self.lnf(x) @ self.C.weight.T + self.b
            return torch.nn.functional.cross_entropy(logits.view(-1, V), targets.view(-1))

    return GPT()


def _interleaved_best(fns, repeat: int, clock) -> list[float]:
    """The best of ``repeat`` timings of each function, taken in turns (A B A B ...), by ``clock``: a busy
    machine's slow moments then fall on both contestants alike."""
    best = [math.inf] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = clock()
            fn()
            best[i] = min(best[i], clock() - t)
    return best


def _parallel_step(net, threads: int, params: dict, batch: int):
    """The Trainer's two-thread step (``nn/parallel.py``): the batch cut into shards when each shard has
    enough work, else one shard whose weight gradients and halves of the forward run on the second
    thread (``nn/overlap.py``). Returns the context that holds the threads, a function (params, inputs)
    -> grads, and which of the two it is."""
    from scratchgen.nn.parallel import DataParallel, parameter_count, shard_bounds

    parallel = DataParallel(net, threads=threads)
    shards = len(shard_bounds(batch, threads, parameter_count(params)))
    mode = f"{shards} shards, nn/parallel.py" if shards > 1 else "overlap, nn/overlap.py"
    return parallel, (lambda params, inputs: parallel.step(params, inputs)[2]), mode


def _interleaved_threads(fns, repeat: int) -> tuple[list[float], list[float]]:
    """Like :func:`_interleaved_best` by wall clock, and also the best CPU time of the calling thread
    (``time.thread_time``): the length of the critical path a thread that hands work to another
    walks, which a machine busy with other processes does not stretch."""
    wall, own = [math.inf] * len(fns), [math.inf] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t, c = time.perf_counter(), time.thread_time()
            fn()
            own[i] = min(own[i], time.thread_time() - c)
            wall[i] = min(wall[i], time.perf_counter() - t)
    return wall, own


def speed_rows(shapes, dtype: str = "float32", repeat: int = 5) -> list:
    """Milliseconds per training step (forward, backward, AdamW), ours and PyTorch's of the same shape.

    Two comparisons a shape, each timed in turns (A B A B ..., best of ``repeat``):

    - per core: ours on one thread with one BLAS thread (as the Trainer runs a step) against PyTorch
      with ``torch.set_num_threads(1)``, by CPU time (``time.process_time``);
    - the whole machine, by wall-clock time: ours on 1 thread, ours on 2 threads (the Trainer's
      ``threads=2``, :func:`_parallel_step`) and PyTorch with its default threads, the three in turns.
      Our 2-thread / 1-thread speed-up is reported, and beside it the ratio of the CPU time of the
      calling thread (the critical path; it excludes waits, so it bounds the speed-up from above).

    Both run in this process after :func:`scratchgen.allocator.reuse_freed_memory`, as training does
    (PyTorch's allocations get the same setting).
    """
    from scratchgen.allocator import reuse_freed_memory
    from scratchgen.nn.optim import make_optimizer
    from scratchgen.nn.transformer import TransformerNetwork, init_transformer, network_backward, network_forward
    from scratchgen.threads import one_blas_thread

    reuse_freed_memory()
    have_torch = module_available("torch")
    rows = []
    rng = np.random.default_rng(0)
    V = 65
    for D, L, A, T, B in shapes:
        shape = f"train step E {D}, {L} layers, {A} heads, T {T}, B {B}, {dtype}"
        p = init_transformer(V, D, L, T, rng, dtype=np.dtype(dtype))
        x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
        inputs = (x, y, None, None)
        opt = make_optimizer("adamw", 0.01)

        def ours(p=p, inputs=inputs, opt=opt, A=A):
            (_, _), c = network_forward(p, inputs, A)
            opt.step(p, network_backward(p, c)[0], 1e-4)

        theirs, torch = None, None
        if have_torch:
            import torch

            tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
            model = _torch_model(V, D, L, A, T).to(tdt)
            topt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)

            def theirs(model=model, topt=topt, tx=tx, ty=ty):
                topt.zero_grad()
                model(tx, ty).backward()
                topt.step()

        # per core: one thread each, CPU time
        default_threads = torch.get_num_threads() if torch else 0
        with one_blas_thread():
            if torch:
                torch.set_num_threads(1)
            fns = [ours] + ([theirs] if theirs else [])
            for fn in fns:
                fn()  # warm up
            times = _interleaved_best(fns, repeat, time.process_time)
            if torch:
                torch.set_num_threads(default_threads)
        ms, torch_ms = times[0] * 1000, (times[1] * 1000 if theirs else math.nan)
        rows.append([shape, "1 (one BLAS thread)", f"{ms:.1f} ms", "1", f"{torch_ms:.1f} ms",
                     f"{torch_ms / ms:.2f}x", "CPU", ">= 1.0x"])  # fmt: skip
        # the whole machine: ours on 1 and 2 threads and PyTorch's default threads, in turns, wall clock
        parallel, step, mode = _parallel_step(TransformerNetwork(A), 2, p, B)

        def ours_2(p=p, inputs=inputs, opt=opt, step=step, parallel=parallel):
            opt.step(p, step(p, inputs), 1e-4, parallel.defer)  # as the Trainer: half of AdamW on the second thread

        with parallel:

            def one(fn):
                def timed():
                    with one_blas_thread():
                        fn()

                return timed

            fns = [one(ours), one(ours_2)] + ([theirs] if theirs else [])
            for fn in fns:
                fn()  # warm up
            wall, own = _interleaved_threads(fns, repeat)
        ms1, ms2 = wall[0] * 1000, wall[1] * 1000
        torch_ms = wall[2] * 1000 if theirs else math.nan
        rows.append([shape, "1 (one BLAS thread)", f"{ms1:.1f} ms", f"default ({default_threads})",
                     f"{torch_ms:.1f} ms", f"{torch_ms / ms1:.2f}x", "wall", ""])  # fmt: skip
        rows.append([shape, f"2 ({mode})", f"{ms2:.1f} ms", f"default ({default_threads})", f"{torch_ms:.1f} ms",
                     f"{torch_ms / ms2:.2f}x", "wall", ">= 1.0x"])  # fmt: skip
        rows.append([shape, f"2 / 1 of ours ({mode})", f"{ms1 / ms2:.2f}x wall",
                     "calling thread's CPU", f"{own[0] * 1000:.1f} / {own[1] * 1000:.1f} ms",
                     f"{own[0] / own[1]:.2f}x", "thread CPU", "speed-up, same run"])  # fmt: skip
    return rows


# --- generation with the cache, and memory --------------------------------------------------------------


def _timed_step(m, state, ids):
    """One token (advance and next_logprobs) and its CPU time (a busy machine's other work is not counted)."""
    t = time.process_time()
    state = m.advance(state, ids)
    m.next_logprobs(state)
    return state, time.process_time() - t


def generation_rows(context: int = 128, embedding: int = 128, batch: int = 1) -> list:
    """Seconds per token at positions 1 .. 3 context with the key/value cache (flat: one position's work;
    the windows of eq. (T4) recompute T/2 positions once every T/2 tokens past the context)."""
    from scratchgen import TransformerModel
    from scratchgen.nn.transformer import init_transformer
    from scratchgen.text import Vocabulary
    from scratchgen.threads import one_blas_thread

    m = TransformerModel(layers=4, heads=4, embedding=embedding, context=context, dtype="float32")
    m.vocab_ = Vocabulary.build([list("abcdefghij")])
    m.labels_ = None
    m.params_ = init_transformer(len(m.vocab_), embedding, 4, context, np.random.default_rng(0), dtype=np.float32)
    state = m.initial_state(batch)
    ids = np.full(batch, 3)
    times = []
    with one_blas_thread():  # as the Trainer: one position's products are too small for two threads
        for _ in range(3 * context):
            state, seconds = _timed_step(m, state, ids)
            times.append(seconds)
    times_ms = np.array(times) * 1000
    bands = [(0, context // 4), (context // 2, context), (context, 2 * context), (2 * context, 3 * context)]
    shown = ", ".join(f"{a}-{b}: {times_ms[a:b].mean():.2f}" for a, b in bands)
    return [[f"generation, E {embedding}, 4 layers, context {context}, batch {batch}",
             "CPU ms per token (mean) by position", shown, "", "", "flat in position"]]  # fmt: skip


def _peak(fn) -> int:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def memory_rows(Ts=(16, 64, 256, 512), Bs=(8, 32), D: int = 64, hidden: int = 384) -> list:
    """Peak bytes of one training step of the Transformer (E 64, 4 layers) and an RNN (hidden 384,
    embedding 64: about the same number of weights), float32, as T and B grow."""
    from scratchgen.nn.layers import network_backward as rnn_backward
    from scratchgen.nn.layers import network_forward as rnn_forward
    from scratchgen.nn.optim import init_params
    from scratchgen.nn.transformer import init_transformer, network_backward, network_forward

    rng = np.random.default_rng(0)
    V, rows = 65, []
    for B in Bs:
        for T in Ts:
            p = init_transformer(V, D, 4, T, rng, dtype=np.float32)
            r = init_params(V, hidden, 1, D, rng, dtype=np.float32)
            x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
            ours = _peak(lambda: network_backward(p, network_forward(p, (x, y, None, None), 4)[1]))
            h0 = np.zeros((1, B, hidden), dtype=np.float32)
            rnn = _peak(lambda: rnn_backward(r, rnn_forward(r, (x, y, None, h0))[1]))
            rows.append([f"peak memory of a training step, B {B}, T {T}", "transformer vs RNN",
                         f"{ours / 2**20:.1f} MiB", f"{rnn / 2**20:.1f} MiB", f"{ours / rnn:.2f}x", ""])  # fmt: skip
    return rows


def transformer_rows(quick: bool) -> str:
    """The Transformer's part of the deep section (markdown). Quick: speed at makemore's size, generation,
    memory and 200 steps on names (a minute or two); full: also the 128-wide speed row, names.txt at 10,000
    steps and tinyshakespeare for 10 CPU-minutes (about 30 minutes of wall clock on 2 cores)."""
    speed = speed_rows([(64, 4, 4, 32, 32)] + ([] if quick else [(128, 4, 4, 128, 32)]))
    gen = generation_rows(context=32 if quick else 128, embedding=64 if quick else 128)
    mem = memory_rows(Ts=(16, 64) if quick else (16, 64, 256, 512), Bs=(8,) if quick else (8, 32))
    if quick:
        quality = [names_quality(steps=200, **NAMES_RECIPES[-1])]
    else:
        quality = [names_quality(**r) for r in NAMES_RECIPES] + [shakespeare_quality()]
    body = [
        "### Transformer (GPT-2 layout): quality (held-out loss, nats/char)\n",
        table(["data", "model and run", "seconds", "test loss", "target"], quality),
        "\n### Transformer: one training step (forward, backward, AdamW) against PyTorch of the same shape\n",
        table(["shape", "our threads", "ours", "PyTorch threads", "PyTorch", "PyTorch / ours", "clock", "target"],
              speed),
        "\n### Transformer: generation with the key/value cache\n",
        table(["model", "measure", "ms per token by position band", "", "", "target"], gen),
        "\n### Transformer: peak memory of one training step (float32; the RNN: H 384, E 64, 1 layer)\n",
        table(["step", "", "Transformer (E 64, 4 layers)", "RNN", "Transformer / RNN", ""], mem),
    ]
    return "\n".join(body)


def run(quick: bool) -> Section:
    return Section(
        name="deep_transformer",
        title="deep: the Transformer",
        body=transformer_rows(quick),
        command="python -m benchmarks.deep_transformer" + (" --quick" if quick else ""),
    )


def speed_section(quick: bool) -> Section:
    """Only the speed rows and the generation row (issue 12's speed targets), as a section of their own.

    Best of 11 turns (5 with ``--quick``): on a 2-core machine shared with other work, a step of either
    contestant lands on a quiet moment more often in 11 turns than in 7, and both get the same number."""
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    speed = speed_rows([(64, 4, 4, 32, 32)] + ([] if quick else [(128, 4, 4, 128, 32)]), repeat=5 if quick else 11)
    gen = generation_rows(context=32 if quick else 128, embedding=64 if quick else 128)
    end_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    body = "\n".join([
        f"Load average (1 minute) {load:.1f} at the start, {end_load:.1f} at the end: above 1 the wall-clock "
        "rows measure the machine's other work as much as ours (PyTorch's default threads suffer most); the "
        "CPU rows and the calling thread's CPU time hold better.\n",
        "### Transformer: one training step (forward, backward, AdamW) against PyTorch of the same shape\n",
        table(["shape", "our threads", "ours", "PyTorch threads", "PyTorch", "PyTorch / ours", "clock", "target"],
              speed),
        "\n### Transformer: generation with the key/value cache\n",
        table(["model", "measure", "ms per token by position band", "", "", "target"], gen),
    ])  # fmt: skip
    command = "python -m benchmarks.deep_transformer --speed" + (" --quick" if quick else "")
    title = "deep: the Transformer's training step and generation speed"
    return Section(name="deep_transformer_speed", title=title, body=body, command=command)


if __name__ == "__main__":
    if "--speed" in sys.argv:  # the speed rows alone, written to their own section of RESULTS.md
        from .common import write_section

        section = speed_section("--quick" in sys.argv)
        write_section(section)
    else:
        section = run("--quick" in sys.argv)
    print(section.markdown())
