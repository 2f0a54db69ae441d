"""Benchmark of corpora at scale: n-gram counting on a Dask cluster, and models loaded memory-mapped.

**Dask.**
``scratchgen train ngram --order 5 --level word`` on tinyshakespeare repeated 100 times (112 MB, built in a
temporary folder: a size where counting, not starting the cluster, dominates; quick: 2 times and order 3),
run as a whole command, as a user runs it:

- in one process (no Dask);
- with ``--dask local:1`` and ``--dask local:2`` (a LocalCluster of 1 or 2 worker processes, started by
  the command: its start-up is part of the time), partitions of 8 MB (quick: 2 MB).

Wall seconds (best of 2; quick: 1 round) and the CPU seconds of the command and all its processes, each
also as a ratio to the one-process command of the same run. The scaling figure is the 1-worker wall time
over the 2-worker one (2.0 would be perfect on two idle cores). Starting and stopping each cluster with
nothing to count is measured once (not in the quick run): the fixed cost of a Dask row. All models are
checked to be identical to the one-process model, array by array. Skipped without Dask.

**Memory-mapped models.** The one-process model of the same corpus is loaded in a fresh interpreter
with ``load(path, mmap=False)`` and with ``mmap=True``, and scores 200 lines: peak resident memory of
each, the fresh interpreter's own (``own_peak_mib`` of benchmarks/common.py; the interpreter with NumPy and
scratchgen alone is measured too, and subtracted).

Run ``python -m benchmarks.bench_scale [--quick]`` from the repository root.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time

from benchmarks.common import HERE, Section, data_file, module_available, run_isolated, table, write_section

#: Bytes of the corpus a worker counts at a time, and rounds of the three commands (best of ROUNDS; quick: 1).
PARTITION, ROUNDS = "8M", 2

_RSS = """
{body}
print(own_peak_mib())
"""
_SCORE = """
import numpy as np
from scratchgen import load
m = load({path!r}, mmap={mmap})
lines = open({corpus!r}, encoding="utf-8").read(1 << 20).split("\\n")[:400]  # not the whole corpus
m.score([l for l in lines if l.strip()][:200])
"""


def _mmap_rows(model: str, corpus: str) -> list[list[object]]:
    """Peak RSS (MiB) of loading ``model`` and scoring 200 lines, read and mapped, minus the bare interpreter:
    each a fresh interpreter's own peak (``own_peak_mib``, not ``ru_maxrss``, which a child inherits from this
    process: see benchmarks/common.py)."""
    bare = float(run_isolated(_RSS.format(body="import numpy, scratchgen")).strip())
    rows = []
    for mmap in (False, True):
        peak = float(run_isolated(_RSS.format(body=_SCORE.format(path=model, mmap=mmap, corpus=corpus))).strip())
        rows.append(["mmap=True" if mmap else "mmap=False", os.path.getsize(model) / 2**20, peak, peak - bare])
    return rows


def _command(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (the command and its children) of ``python -m scratchgen ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "scratchgen", *args],
        check=True,
        cwd=HERE.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _command_code(code: str) -> tuple[float, float]:
    """Wall and CPU seconds (with its children) of ``python -c CODE``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=HERE.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _same(a: str, b: str) -> bool:
    import numpy as np

    from scratchgen import load

    x, y = load(a), load(b)
    return x.vocab_.to_list() == y.vocab_.to_list() and all(
        np.array_equal(p, q) for p, q in zip(x.keys_ + x.logp_ + x.bow_, y.keys_ + y.logp_ + y.bow_)
    )


_START_STOP = (
    "from scratchgen.ngram.distributed import connect\nc = connect({address!r})\nc.close()\nc.cluster.close()\n"
)


def run(quick: bool = False) -> Section:
    command = "python -m benchmarks.bench_scale" + (" --quick" if quick else "")
    title = "corpora at scale: Dask counting, memory-mapped models"
    if not module_available("distributed"):
        return Section("scale", title, "Skipped: Dask is not installed (pip install 'scratchgen[dask]').", command)
    copies, order, partition, rounds = (2, 3, "2M", 1) if quick else (100, 5, PARTITION, ROUNDS)
    text = data_file("tinyshakespeare.txt").read_text(encoding="utf-8")
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write(text * copies)
        del text
        mb = os.path.getsize(corpus) / 1e6
        base = ["train", "ngram", "--order", str(order), "--level", "word", "--quiet", corpus]
        reference = os.path.join(tmp, "one.npz")
        configs = [("one process", []), ("dask local:1", ["--dask", "local:1"])]
        configs.append(("dask local:2", ["--dask", "local:2"]))
        runs: dict[str, list] = {name: [] for name, _ in configs}
        outs = {}
        for _ in range(rounds):  # interleaved: one, local:1, local:2, one, ...
            for name, extra in configs:
                out = reference if not extra else os.path.join(tmp, name.replace(" ", "_").replace(":", "") + ".npz")
                outs[name] = out
                more = extra + ["--partition-size", partition] if extra else []
                runs[name].append(_command(base + ["-o", out] + more))
        # The cluster alone (started and stopped, nothing counted): what a Dask row pays before counting.
        alone = {} if quick else {n: _command_code(_START_STOP.format(address=f"local:{n}")) for n in (1, 2)}
        best = {name: (min(r[0] for r in runs[name]), min(r[1] for r in runs[name])) for name, _ in configs}
        one_wall, one_cpu = best["one process"]
        for name, extra in configs:
            wall, cpu = best[name]
            same = "-" if not extra else ("yes" if _same(outs[name], reference) else "NO")
            rows.append([name, wall, cpu, wall / one_wall, cpu / one_cpu, mb / wall, same])
        mmap_rows = _mmap_rows(reference, corpus)
    load_after = os.getloadavg()[0]
    scaling = best["dask local:1"][0] / best["dask local:2"][0]
    header = [
        "command",
        f"wall s (best of {rounds})",
        f"CPU s (fewest of {rounds})",
        "wall / one process",
        "CPU / one process",
        "MB/s",
        "model identical to one process",
    ]
    body = (
        table(header, rows)
        + f"\n\n- Corpus: tinyshakespeare x {copies} ({mb:.1f} MB), order {order}, word level, one sequence "
        f"a line; partitions of {partition}B; the three commands interleaved, {rounds} round(s). CPU: user + "
        "system seconds of the command and all its processes (the client, the scheduler and nannies in it, "
        "the workers), from wait4. Load average (1 min) before and after: "
        f"{load_before:.1f}, {load_after:.1f} on {os.cpu_count()} cores."
        + f"\n- Scaling, 1 worker / 2 workers (wall): **{scaling:.2f}x** (2.0 is perfect on two idle cores)."
        + (
            "\n- Starting and stopping the LocalCluster alone, nothing counted (once): "
            + ", ".join(f"local:{n} {w:.1f} s wall, {c:.1f} CPU-s" for n, (w, c) in alone.items())
            + ": part of every Dask row (importing distributed, spawning the workers, which import NumPy and "
            "scratchgen)."
            if alone
            else ""
        )
        + "\n- Each worker counts byte ranges of the file it reads itself (chunked counting, as one process "
        "does); only tokens and sorted count tables cross process boundaries. The client smooths alone."
        + "\n\nLoading the one-process model and scoring 200 lines in a fresh interpreter; peak RSS is "
        "that interpreter's own high-water mark (VmHWM; benchmarks/common.py says why not ru_maxrss):\n\n"
        + table(["load", "model file MiB", "peak RSS MiB", "above the bare interpreter MiB"], mmap_rows)
    )
    return Section("scale", title, body, command)


if __name__ == "__main__":
    section = run("--quick" in sys.argv[1:])
    print(section.markdown())
    write_section(section)
