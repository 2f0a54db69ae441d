"""The gated RNNs (RNNModel(cell="gru"|"lstm"), issue 12): quality on names.txt, training speed against
PyTorch's nn.GRU / nn.LSTM, and the peak memory of one training step as T and B grow.

Rows for ``benchmarks/bench_deep.py`` (:func:`gated_rows`). Each figure is measured in the same run as
the one it is compared with.
"""

from __future__ import annotations

import contextlib
import time
import tracemalloc

import numpy as np

from benchmarks.common import module_available, run_isolated, table

# makemore's sizes (its defaults: n_embd 64, n_embd2 64, batch 32, AdamW lr 5e-4, weight decay 0.01)
MAKEMORE = {"gru": 2.035, "lstm": float("nan"), "tanh": 2.084}


def quality_rows(steps: int, cells=("gru",), settings=((4e-3, "cosine"),)) -> list:
    """Test loss on makemore's 1,000 held-out names (bench_nn.names_split) of a model of makemore's size."""
    from benchmarks.bench_nn import names_split
    from scratchgen import RNNModel

    test, train, split = names_split()
    rows = []
    for cell in cells:
        for lr, schedule in settings:
            t = time.perf_counter()
            m = RNNModel(cell=cell, hidden=64, embedding=64, batch_size=32, optimizer="adamw", lr=lr,
                         lr_schedule=schedule, max_steps=steps, epochs=1000, valid_fraction=0.05, patience=None,
                         dtype="float32", seed=0).fit(train)
            loss = m.score(test).cross_entropy_nats
            target = MAKEMORE[cell]
            rows.append([f"names.txt, 1,000 held out ({split})", f"{cell.upper()} E 64, H 64, B 32, AdamW {lr:g} "
                         f"{schedule}, {steps:,} steps", f"{time.perf_counter() - t:.0f} s wall",
                         f"{loss:.4f}", "n/a" if target != target else f"{target} (makemore's {cell.upper()})"])
    return rows


def _stream(V: int, B: int, T: int, steps: int, seed: int = 0) -> np.ndarray:
    """Random token rows (B, steps * T + 1): the speed of a step does not depend on the text."""
    return np.random.default_rng(seed).integers(3, V, size=(B, steps * T + 1))


#: The clocks a speed can be timed by: "wall" (time.perf_counter) or "cpu" (time.process_time, the process's
#: CPU time: for one thread against one thread on a shared machine, it leaves out the time other processes ran)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def ours_speed(
    cell: str,
    V: int,
    H: int,
    T: int,
    B: int,
    steps: int,
    E: int = 64,
    threads: int = 1,
    clock: str = "wall",
    mode: str = "default",
) -> float:
    """Characters a second of our training step (forward + backward + clipping + Adam), float32, after
    3 warm-up steps, the state carried from chunk to chunk, on ``threads`` threads as RNNModel.fit runs them
    (Adam given ``parallel.defer``, as nn/train.py's step does)
    (the GRU shards the batch over threads, nn/parallel.py; the LSTM over processes, nn/process_shards.py), after
    allocator.reuse_freed_memory; timed by ``clock``. ``mode`` (the LSTM at two threads): "default", "threads" (its
    shards in threads, as the GRU) or "overlap" (nn/lstm_overlap.py)."""
    from scratchgen.allocator import reuse_freed_memory
    from scratchgen.nn.gated import GatedNetwork, init_gated_params
    from scratchgen.nn.layers import one_blas_thread
    from scratchgen.nn.optim import clip_by_global_norm, make_optimizer
    from scratchgen.nn.parallel import DataParallel

    reuse_freed_memory()
    p = init_gated_params(cell, V, H, 1, E, np.random.default_rng(0), np.float32)
    net = GatedNetwork(cell, 1)
    if mode != "default":
        net.shards_in_processes = False
        net.overlaps_recurrence = mode == "overlap"
    opt = make_optimizer("adam")
    rows = _stream(V, B, T, steps)
    state = net.start_state(p, B)
    now = CLOCKS[clock]
    with one_blas_thread(), DataParallel(net, threads) as parallel:
        for i in range(steps + 3):
            if i == 3:
                start = now()
            k = (i % steps) * T
            x, y = rows[:, k : k + T], rows[:, k + 1 : k + T + 1]
            _, state, grads = parallel.step(p, (x, y, None, state))
            clip_by_global_norm(grads, 5.0)
            opt.step(p, grads, 2e-3, parallel.defer)  # as the Trainer: with 2 threads, part of Adam on the second
    return B * T * steps / (now() - start)


def torch_speed(
    cell: str,
    V: int,
    H: int,
    T: int,
    B: int,
    steps: int,
    E: int = 64,
    threads: int | None = None,
    clock: str = "wall",
    onednn: bool = True,
):
    """The same step in PyTorch: nn.Embedding + nn.GRU/nn.LSTM + nn.Linear + cross-entropy, Adam, clipping;
    its process gets the same allocator setting as ours (allocator.reuse_freed_memory). ``onednn`` False:
    ``torch.backends.mkldnn.flags(enabled=False)``, which takes nn.LSTM off oneDNN's fused LSTM primitive (its
    default CPU path) onto PyTorch's own cell-by-cell kernels (context rows; nn.GRU has no oneDNN path)."""
    import torch

    from scratchgen.allocator import reuse_freed_memory

    reuse_freed_memory()

    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    try:
        with torch.backends.mkldnn.flags(enabled=onednn):
            return _torch_steps(torch, cell, V, H, T, B, steps, E, clock)
    finally:
        torch.set_num_threads(default)


def _torch_steps(torch, cell: str, V: int, H: int, T: int, B: int, steps: int, E: int, clock: str) -> float:
    """chars/s of torch_speed's training steps (its docstring), after 3 warm-up steps."""
    torch.manual_seed(0)
    rnn_class = torch.nn.GRU if cell == "gru" else torch.nn.LSTM
    emb, rnn, lin = torch.nn.Embedding(V, E), rnn_class(E, H, batch_first=True), torch.nn.Linear(H, V)
    params = [*emb.parameters(), *rnn.parameters(), *lin.parameters()]
    opt = torch.optim.Adam(params, lr=2e-3)
    rows = torch.from_numpy(_stream(V, B, T, steps))
    state = torch.zeros(1, B, H) if cell == "gru" else (torch.zeros(1, B, H), torch.zeros(1, B, H))
    now = CLOCKS[clock]
    for i in range(steps + 3):
        if i == 3:
            start = now()
        k = (i % steps) * T
        x, y = rows[:, k : k + T], rows[:, k + 1 : k + T + 1]
        out, state = rnn(emb(x), state)
        state = state.detach() if cell == "gru" else tuple(s.detach() for s in state)
        loss = torch.nn.functional.cross_entropy(lin(out).reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
    return B * T * steps / (now() - start)


def _isolated(name: str, *args, **kwargs) -> float:
    """Call ``name`` of this module in a fresh interpreter: torch's OpenMP threads never share ours."""
    code = f"from benchmarks.deep_gated import {name}; print(float({name}(*{args!r}, **{kwargs!r})))"
    return float(run_isolated(code).strip().splitlines()[-1])


def _clock(n_ours: int, n_torch: int, busy: bool) -> str:
    """CPU time for one thread against one thread (nothing else of ours runs then), wall-clock otherwise."""
    return "cpu" if n_ours == 1 and n_torch == 1 and not busy else "wall"


def speed_rows(quick: bool, steps: int | None = None, rounds: int | None = None) -> tuple[list, str]:
    """chars/s of one training step: ours at our default threads against PyTorch's default, each at one
    thread, and the defaults again with a spinning process on the other core (bench_nn.busy_core);
    alternating rounds, best of each, every contestant in its own process."""
    from benchmarks.bench_nn import busy_core
    from scratchgen.nn.config import TrainConfig

    V, H, T, B = 65, (64 if quick else 256), 64, 32
    steps, rounds = steps or (5 if quick else 30), rounds or (1 if quick else 3)
    ours_default = TrainConfig().threads
    rows = []
    note = "PyTorch absent: no ratio"
    threads = 1
    have_torch = module_available("torch")
    if have_torch:
        code = "import torch; print(torch.__version__, torch.get_num_threads())"
        version, n = run_isolated(code).split()
        threads = int(n)
        note = (f"PyTorch {version}, {threads} threads by default; ours {ours_default} threads by default (two "
                "threads, one BLAS thread each: the GRU cuts the batch in shards run by two threads, nn/parallel.py; "
                "the LSTM in shards run by two processes, nn/process_shards.py, or by threads as the GRU where the row "
                "says so); each contestant in its own process; wall-clock, "
                "except one thread against one thread: CPU time (time.process_time), which leaves out the time other "
                "processes of a shared machine ran. PyTorch's default CPU nn.LSTM runs oneDNN's fused LSTM primitive "
                "(nn.GRU has no such path); the rows marked 'oneDNN off' run it with "
                "torch.backends.mkldnn.flags(enabled=False), PyTorch's own kernels: context only, the targets are "
                "the rows against its default; a contestant run in several rows with the same settings counts its best "
                "over all of them in each")
    for cell in ("gru", "lstm"):
        # (our threads, PyTorch's, other core busy, the LSTM's two-thread mode (ours_speed), PyTorch on oneDNN)
        settings = list(dict.fromkeys([(ours_default, threads, False, "default", True), (1, 1, False, "default", True),
                                       (2, threads, False, "default", True),
                                       (ours_default, threads, True, "default", True)]))
        if cell == "lstm":
            settings.insert(3, (2, threads, False, "threads", True))
            if have_torch:  # context, after the headline rows: PyTorch's LSTM off its default oneDNN path
                settings += [(1, 1, False, "default", False), (2, threads, False, "default", False)]
        best = {s: [0.0, 0.0] for s in settings}
        for _ in range(rounds):
            for n_ours, n_torch, busy, mode, onednn in settings:
                clock = _clock(n_ours, n_torch, busy)
                with busy_core() if busy else contextlib.nullcontext():
                    b = best[(n_ours, n_torch, busy, mode, onednn)]
                    b[0] = max(b[0], _isolated("ours_speed", cell, V, H, T, B, steps, threads=n_ours, clock=clock,
                                               mode=mode))
                    if have_torch:
                        b[1] = max(b[1], _isolated("torch_speed", cell, V, H, T, B, steps, threads=n_torch,
                                                   clock=clock, onednn=onednn))
        for (n_ours, n_torch, busy, mode, onednn), (ours, theirs) in _pooled(best).items():
            suffix = ", other core busy" if busy else (", CPU time" if _clock(n_ours, n_torch, busy) == "cpu" else "")
            default = " (default)" if n_ours == ours_default else ""
            if n_ours > 1:
                default += ", sharded by threads" if mode == "threads" or cell == "gru" else ", sharded by processes"
            label = f"{cell.upper()} H {H}, T {T}, B {B}, E 64, V {V}, float32, {n_ours} thread(s){default}{suffix}"
            if not have_torch:
                rows.append([label, ours, "-", float("nan"), float("nan")])
                continue
            what = f"{n_torch} thread(s)" + (" (default)" if n_torch == threads and threads > 1 else "")
            what += ("" if onednn else ", oneDNN off (context, not the target)") + suffix
            rows.append([label, ours, f"PyTorch nn.{cell.upper()}, {what}", theirs, ours / theirs])
    return rows, note


def _pooled(best: dict) -> dict:
    """Each row's (ours, theirs) with every contestant's best over all the rows that ran it with the same settings
    (threads, clock, a busy neighbour, our mode, PyTorch's oneDNN path): PyTorch's default-thread LSTM runs in three
    rows, and this machine's noise moved its best of three rounds from 30k to 38k chars/s between them in one run
    (session 24). So no row sets ours against a slow draw of the peer (or of ours).

    >>> _pooled({(1, 2, False, "default", True): [10.0, 30.0], (2, 2, False, "default", True): [20.0, 25.0]})
    {(1, 2, False, 'default', True): (10.0, 30.0), (2, 2, False, 'default', True): (20.0, 30.0)}
    """
    def ours_key(s):
        return (s[0], s[2], s[3], _clock(s[0], s[1], s[2]))

    def theirs_key(s):
        return (s[1], s[2], s[4], _clock(s[0], s[1], s[2]))

    ours, theirs = {}, {}
    for s, (a, b) in best.items():
        ours[ours_key(s)] = max(ours.get(ours_key(s), 0.0), a)
        theirs[theirs_key(s)] = max(theirs.get(theirs_key(s), 0.0), b)
    return {s: (ours[ours_key(s)], theirs[theirs_key(s)]) for s in best}


def step_memory(cell: str, H: int, T: int, B: int, V: int = 65, E: int = 64) -> tuple[float, float]:
    """Peak bytes NumPy allocates in one training step (tracemalloc: forward, backward, Adam) and the
    estimate of nn/memory.py's training_memory for the same shapes."""
    from scratchgen.nn.gated import GATES, GatedNetwork, init_gated_params
    from scratchgen.nn.memory import training_memory
    from scratchgen.nn.optim import make_optimizer

    p = init_gated_params(cell, V, H, 1, E, np.random.default_rng(0), np.float32)
    net = GatedNetwork(cell, 1)
    opt = make_optimizer("adam")
    rows = _stream(V, B, T, 1)
    x, y = rows[:, :T], rows[:, 1 : T + 1]
    tracemalloc.start()
    (_, _), cache = net.forward(p, (x, y, None, net.start_state(p, B)))
    grads, _ = net.backward(p, cache)
    opt.step(p, grads, 1e-3)
    del cache, grads
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    estimate = training_memory(V, H, 1, E, B, T, 4, "adam", B, T, 0, GATES[cell])
    return float(peak), estimate


def memory_rows(quick: bool) -> list:
    H = 64 if quick else 256
    shapes = ((16, 8), (64, 32)) if quick else ((64, 32), (128, 32), (256, 32), (64, 128), (256, 128))
    rows = []
    for cell in ("gru", "lstm"):
        for T, B in shapes:
            peak, estimate = step_memory(cell, H, T, B)
            rows.append([f"{cell.upper()} H {H}", T, B, peak / 2**20, estimate / 2**20, estimate / peak])
    return rows


def gated_rows(quick: bool) -> str:
    """The markdown of the gated part of the deep benchmark."""
    parts = []
    speed, note = speed_rows(quick)
    parts.append("### GRU and LSTM: training speed (forward + backward + clipping + Adam), chars/s\n\n" + note + "\n\n"
                 + table(["ours", "chars/s", "peer", "peer chars/s", "ours / peer"], speed))
    parts.append("### GRU and LSTM: peak memory of one training step (tracemalloc) and nn/memory.py's estimate\n\n"
                 + table(["model", "T", "B", "peak MiB", "estimate MiB", "estimate / peak"], memory_rows(quick)))
    if not quick:
        parts.append("### GRU on names.txt at makemore's size\n\n"
                     + table(["data", "model", "time", "test loss (nats/char)", "makemore"],
                             quality_rows(10_000, cells=("gru", "lstm"),
                                          settings=((5e-4, "constant"), (4e-3, "cosine")))))
    return "\n\n".join(parts)


def speed_section(quick: bool, steps: int | None, rounds: int | None):
    """The speed rows alone, as a section of their own (``deep-gated-speed``): a minute or two, where the whole
    deep section (``python -m benchmarks --only deep``) also trains the quality rows."""
    from benchmarks.common import Section

    rows, note = speed_rows(quick, steps, rounds)
    command = "python -m benchmarks.deep_gated" + (" --quick" if quick else "")
    command += (f" --steps {steps}" if steps else "") + (f" --rounds {rounds}" if rounds else "")
    body = (note + ". Best of alternating rounds; 'other core busy': a `while 1: pass` process runs beside.\n\n"
            + table(["ours", "chars/s", "peer", "peer chars/s", "ours / peer"], rows))
    return Section(name="deep-gated-speed", title="deep: GRU and LSTM training speed against PyTorch", body=body,
                   command=command)


if __name__ == "__main__":
    import argparse

    from benchmarks.common import write_section

    ap = argparse.ArgumentParser(description="GRU and LSTM training speed against PyTorch (a section of its own)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None, help="timed steps a measurement (default 30; quick 5)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds, best of them (default 3)")
    a = ap.parse_args()
    section = speed_section(a.quick, a.steps, a.rounds)
    print(section.markdown())
    write_section(section)
