"""Benchmark of a corpus bigger than the memory budget: ``train ngram --memory`` against ``lmplz -S``.

A corpus of at least 1 GiB is generated in a temporary folder: the lines of tinyshakespeare, shuffled with a
fixed seed (``numpy.random.default_rng(0)``), one shuffled copy after another until the size is reached
(quick: 4 MiB). On it, as whole commands (a fresh process each, as a user runs them):

- ``python -m scratchgen train ngram --order 5 --level word --memory 1G --temp-dir T`` (quick: ``--memory 64M``);
- ``lmplz -o 5 -S 1G -T T`` (quick: ``-S 64M``), its ARPA written to the temporary folder.

Each process's peak resident memory (``ru_maxrss`` of that child, from ``os.wait4``), wall seconds and CPU
seconds (user + system of that child). The target: scratchgen's peak RSS <= the budget + ``CONSTANT_MIB``,
the documented constant (the interpreter with NumPy and scratchgen imported, the vocabulary and the
in-memory estimation of the distinct n-gram tables: :mod:`scratchgen.ngram.external`). For scale, on a
smaller file (64 MiB; quick: 1 MiB) the in-memory fit (no ``--memory``) and the spilled one are timed too,
and their models are compared array by array. Last, the big model is loaded with
``scratchgen.load(path, mmap=True)`` in a fresh interpreter and scores 1000 lines: its large arrays are
memory maps, and the peak RSS above the bare interpreter is reported beside the model file's size.

Runs are interleaved (ours, lmplz, ours, lmplz ...), best of ``repeat`` (1 for the 1 GiB file, whose runs take
minutes; 3 in quick mode). Run ``python -m benchmarks.bench_spill [--quick]`` from the repository root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_ngram import lmplz_note, lmplz_path
from benchmarks.common import HERE, Section, data_file, run_isolated, table, write_section

#: MiB above the budget that the whole scratchgen process may use (see scratchgen/ngram/external.py).
CONSTANT_MIB = 150


def make_corpus(path: Path, size: int, seed: int = 0) -> int:
    """Shuffled copies of tinyshakespeare's non-empty lines until ``size`` bytes; the bytes written."""
    lines = [line for line in data_file("tinyshakespeare.txt").read_text(encoding="utf-8").split("\n") if line]
    rng = np.random.default_rng(seed)
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < size:
            text = "\n".join(lines[i] for i in rng.permutation(len(lines))) + "\n"
            f.write(text)
            written += len(text.encode("utf-8"))
    return written


def measured(cmd: list[str], stdout=subprocess.DEVNULL) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one child process (its own rusage, from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=HERE.parent, stdout=stdout, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.decode('utf-8', 'replace')[-800:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def best(runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    return min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)


def ours(corpus: Path, model: Path, memory: str | None, temp: Path) -> list[str]:
    cmd = [sys.executable, "-m", "scratchgen", "train", "ngram", "--order", "5", "--level", "word", "--quiet"]
    if memory is not None:
        cmd += ["--memory", memory, "--temp-dir", str(temp)]
    return cmd + [str(corpus), "-o", str(model)]


def lmplz(corpus: Path, arpa: Path, memory: str, temp: Path) -> list[str]:
    return [
        lmplz_path() or "lmplz",
        "-o",
        "5",
        "-S",
        memory,
        "-T",
        str(temp) + "/",
        "--text",
        str(corpus),
        "--arpa",
        str(arpa),
        "--discount_fallback",
    ]


_MMAP = """
import mmap, resource, numpy as np
from scratchgen import load
def mapped_view(a):  # the array, or an array it views, is a memory map of the file
    while a is not None and not isinstance(a, (np.memmap, mmap.mmap)):
        a = getattr(a, "base", None)
    return a is not None
m = load({path!r}, mmap=True)
mapped = sum(mapped_view(a) for a in m.keys_ + m.logp_ + m.bow_)
lines = [l for l in open({corpus!r}, encoding="utf-8").read(1 << 20).split("\\n")[:1001] if l.strip()][:1000]
s = m.score(lines)
print(mapped, len(m.keys_ + m.logp_ + m.bow_), s.perplexity, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
_BARE = "import resource, numpy, scratchgen; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"


def same_model(a: Path, b: Path) -> bool:
    """Both model files hold the same arrays, bit for bit (and the same header)."""
    x, y = np.load(a), np.load(b)
    return sorted(x.files) == sorted(y.files) and all(
        x[k].dtype == y[k].dtype and x[k].tobytes() == y[k].tobytes() for k in x.files
    )


def run(quick: bool = False) -> Section:
    command = "python -m benchmarks.bench_spill" + (" --quick" if quick else "")
    size, small, memory, repeat = (4 << 20, 1 << 20, "64M", 3) if quick else (1 << 30, 64 << 20, "1G", 1)
    budget_mib = 64 if quick else 1024
    has_lmplz = lmplz_path() is not None
    with tempfile.TemporaryDirectory(prefix="bench-spill-") as tmp:
        folder = Path(tmp)
        temp = folder / "runs"
        temp.mkdir()
        corpus, little = folder / "big.txt", folder / "small.txt"
        written = make_corpus(corpus, size)
        make_corpus(little, small)
        model, arpa = folder / "big.npz", folder / "lmplz.arpa"
        # The big file: ours and lmplz interleaved.
        mine, theirs = [], []
        for _ in range(repeat):
            mine.append(measured(ours(corpus, model, memory, temp)))
            if has_lmplz:
                theirs.append(measured(lmplz(corpus, arpa, memory, temp)))
                arpa.unlink()
        leftovers = list(temp.iterdir())
        w, c, r = best(mine)
        rows = [[f"scratchgen --memory {memory}", f"{written / 2**20:.0f}", w, c, r, r - budget_mib, "1.00"]]
        if theirs:
            lw, lc, lr = best(theirs)
            rows.append([f"lmplz -S {memory}", f"{written / 2**20:.0f}", lw, lc, lr, lr - budget_mib, f"{lc / c:.2f}"])
        # The smaller file: in memory against spilled (same model), and lmplz.
        small_rows, models = [], {}
        for name, mem in (("scratchgen (in memory)", None), (f"scratchgen --memory {memory}", memory)):
            out = folder / f"small-{'mem' if mem is None else 'spill'}.npz"
            models[name] = out
            runs = [measured(ours(little, out, mem, temp)) for _ in range(repeat)]
            sw, sc, sr = best(runs)
            small_rows.append([name, f"{small / 2**20:.0f}", sw, sc, sr])
        if has_lmplz:
            lw, lc, lr = best([measured(lmplz(little, arpa, memory, temp)) for _ in range(repeat)])
            small_rows.append([f"lmplz -S {memory}", f"{small / 2**20:.0f}", lw, lc, lr])
        identical = same_model(*models.values())
        mapped, arrays, ppl, peak = run_isolated(_MMAP.format(path=str(model), corpus=str(corpus))).split()
        bare = float(run_isolated(_BARE).strip())
        model_mib = model.stat().st_size / 2**20
    within = r <= budget_mib + CONSTANT_MIB
    body = (
        table(
            ["command", "corpus MiB", "wall s", "CPU s", "peak RSS MiB", "RSS - budget MiB", "CPU: lmplz / scratchgen"],
            rows,
        )
        + f"\n\n- Corpus: tinyshakespeare's lines shuffled (seed 0) and repeated to {written / 2**20:.0f} MiB; "
        f"order 5, word level; budget {memory}. lmplz: {lmplz_note()}, ARPA output, `--discount_fallback`."
        + f"\n- Target: scratchgen's peak RSS <= budget + {CONSTANT_MIB} MiB (the documented constant): "
        f"**{'met' if within else 'NOT met'}** ({r:.0f} MiB against {budget_mib + CONSTANT_MIB} MiB). "
        f"Temporary folder empty afterwards: {'yes' if not leftovers else 'NO'}."
        + f"\n- Clocks: wall (perf_counter) and CPU (user + system of the child, from `os.wait4`), best of {repeat}, "
        "runs interleaved; peak RSS is the child's `ru_maxrss`. Two shared cores: compare CPU seconds."
        + "\n\nFor scale, a smaller file of the same kind:\n\n"
        + table(["command", "corpus MiB", "wall s", "CPU s", "peak RSS MiB"], small_rows)
        + f"\n\n- The spilled model is {'identical' if identical else 'NOT identical'}, byte for byte, to the "
        "in-memory one (every array of the two files)."
        + f"\n- The big model ({model_mib:.1f} MiB) loaded with `scratchgen.load(path, mmap=True)` in a fresh "
        f"interpreter: {mapped} of its {arrays} tables are views of memory maps (the others are under 64 KiB, "
        "or computed: the unigram keys); scoring 1000 lines (perplexity "
        f"{float(ppl):.1f}) peaked at {float(peak):.0f} MiB RSS, {float(peak) - bare:.0f} MiB above the bare "
        "interpreter with NumPy and scratchgen imported."
    )
    return Section("bench_spill", "Corpora bigger than memory: train ngram --memory against lmplz -S", body, command)


if __name__ == "__main__":
    section = run("--quick" in sys.argv[1:])
    print(section.markdown())
    write_section(section)
