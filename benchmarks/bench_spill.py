"""Benchmark of a corpus bigger than the memory budget: ``train ngram --memory`` against ``lmplz -S``.

A corpus of at least 1 GiB is generated in a temporary folder: the lines of tinyshakespeare, shuffled with a
fixed seed (``numpy.random.default_rng(0)``), one shuffled copy after another until the size is reached
(quick: 4 MiB). On it, as whole commands (a fresh process each, as a user runs them):

- ``python -m scratchgen train ngram --order 5 --level word --memory 1G --temp-dir T`` (quick: ``--memory 64M``);
- ``lmplz -o 5 -S 1G -T T`` (quick: ``-S 64M``), its ARPA written to the temporary folder.

Each process's peak resident memory (as GNU time reports it: see :func:`measured`), wall seconds and CPU
seconds (user + system of that child). The target: scratchgen's peak RSS <= the budget + ``CONSTANT_MIB``,
the documented constant (the interpreter with NumPy and scratchgen imported, the vocabulary and the
in-memory estimation of the distinct n-gram tables: :mod:`scratchgen.ngram.external`). For scale, on a
smaller file (64 MiB; quick: 1 MiB) the in-memory fit (no ``--memory``) and the spilled one are timed too,
and their models are compared array by array. Last, the big model is loaded with
``scratchgen.load(path, mmap=True)`` in a fresh interpreter and scores 1000 lines: its large arrays are
memory maps, and the peak RSS above the bare interpreter is reported beside the model file's size.

Runs are interleaved (ours, lmplz, ours, lmplz ...), best of ``repeat`` (1 for the 1 GiB file, whose runs take
minutes; 3 in quick mode). Run ``python -m benchmarks.bench_spill [--quick]`` from the repository root.

**Estimation within the budget** (:func:`estimation`; alone: ``python -m benchmarks.bench_spill --estimation
[--quick]``, which rewrites that table inside the spill section). Shuffled tinyshakespeare has few distinct
n-grams, so its estimation is small whatever the file's size. Here lines of 12 words drawn uniformly (seed 1)
from 20,000 random words: almost every n-gram of order 3 to 5 is new, so the distinct n-grams
(``ESTIMATION_SIZES``: about 7 million; quick: 0.7 million) cost more than the budget (256M; quick: 32M) at the
120 bytes an n-gram of in-memory estimation, and their whole count tables (31 bytes an n-gram) and the finished
model (24) come close to it. Interleaved, best of 2: ``train ngram --memory`` (counting's end, estimation and the
model file all streamed: :mod:`scratchgen.ngram.external`, :mod:`scratchgen.ngram.external_smoothing`,
:func:`scratchgen.io.write_model`); the same counting with its tables read into memory, then the in-memory
estimation (``count_file`` then ``fit_counts``); ``lmplz -S``. The in-memory fit (no ``--memory``) is run once,
and the three scratchgen model files are compared byte for byte. Targets: the streamed command's peak RSS <= the
budget + ``SMALL_CONSTANT_MIB``, and <= lmplz's at the same budget (issue 13); a table gives the peak of each
stage of the streamed fit (one interpreter, the high-water mark reset between stages).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_ngram import lmplz_note, lmplz_path
from benchmarks.common import HERE, RESULTS, Section, data_file, run_isolated, table, write_section

SPILL_TITLE = "Corpora bigger than memory: train ngram --memory against lmplz -S"
#: MiB above the budget that the whole scratchgen process may use (see scratchgen/ngram/external.py).
CONSTANT_MIB = 150
#: The small constant of the estimation section: the interpreter with NumPy and scratchgen (about 34 MiB), the
#: vocabulary and the unigram tables (a few times 8 V), and the allocator's slack.
SMALL_CONSTANT_MIB = 64


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


#: GNU time, which reports its child's peak RSS (``%M``, KiB). A child started straight from this process
#: inherits this process's peak RSS in its own ``ru_maxrss`` (Linux carries the high-water mark over
#: ``exec``), so a child smaller than the benchmark itself would be reported at the benchmark's size; started
#: by ``time``, a small process, its own peak is what ``time`` prints.
GNU_TIME = "/usr/bin/time"
_PEAK = "@@peak-rss-kib"


def measured(cmd: list[str], stdout=subprocess.DEVNULL) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, from wait4: the child's and its children's) and peak RSS (MiB)
    of one child process: as GNU time reports it when it is installed, else the child's ``ru_maxrss``."""
    timed = os.access(GNU_TIME, os.X_OK)
    full = [GNU_TIME, "-f", f"{_PEAK} %M", *cmd] if timed else cmd
    start = time.perf_counter()
    proc = subprocess.Popen(full, cwd=HERE.parent, stdout=stdout, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.decode('utf-8', 'replace')[-800:]}")
    peak = usage.ru_maxrss / 1024
    if timed:
        peak = [float(line.split()[1]) / 1024 for line in err.decode().splitlines() if line.startswith(_PEAK)][-1]
    return wall, usage.ru_utime + usage.ru_stime, peak


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
import mmap, numpy as np
from scratchgen import load
def mapped_view(a):  # the array, or an array it views, is a memory map of the file
    while a is not None and not isinstance(a, (np.memmap, mmap.mmap)):
        a = getattr(a, "base", None)
    return a is not None
m = load({path!r}, mmap=True)
mapped = sum(mapped_view(a) for a in m.keys_ + m.logp_ + m.bow_)
lines = [l for l in open({corpus!r}, encoding="utf-8").read(1 << 20).split("\\n")[:1001] if l.strip()][:1000]
s = m.score(lines)
print(mapped, len(m.keys_ + m.logp_ + m.bow_), s.perplexity, own_peak_mib())
"""
_BARE = "import numpy, scratchgen; print(own_peak_mib())  # run_isolated defines own_peak_mib"


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
        estimated = estimation(quick, folder)
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
        "runs interleaved; peak RSS as GNU time reports it (`%M`). Two shared cores: compare CPU seconds."
        + "\n\nFor scale, a smaller file of the same kind:\n\n"
        + table(["command", "corpus MiB", "wall s", "CPU s", "peak RSS MiB"], small_rows)
        + f"\n\n- The spilled model is {'identical' if identical else 'NOT identical'}, byte for byte, to the "
        "in-memory one (every array of the two files)."
        + f"\n- The big model ({model_mib:.1f} MiB) loaded with `scratchgen.load(path, mmap=True)` in a fresh "
        f"interpreter: {mapped} of its {arrays} tables are views of memory maps (the others are under 64 KiB, "
        "or computed: the unigram keys); scoring 1000 lines (perplexity "
        f"{float(ppl):.1f}) peaked at {float(peak):.0f} MiB RSS, {float(peak) - bare:.0f} MiB above the bare "
        "interpreter with NumPy and scratchgen imported." + f"\n\n{ESTIMATION_HEADING}\n\n" + estimated
    )
    # "spill": the section's name in RESULTS.md, as `python -m benchmarks` writes it (by the benchmark's name)
    return Section("spill", SPILL_TITLE, body, command)


# --- estimation within the budget --------------------------------------------------------------------------------

#: The heading of the estimation table inside the spill section (``--estimation`` rewrites from it to the end).
ESTIMATION_HEADING = "### Estimation within the budget: a corpus of random words (many distinct n-grams)"

#: Lines of the random-word corpus and the budget: (quick, full).
ESTIMATION_SIZES = {True: (15_000, "32M", 32), False: (160_000, "256M", 256)}

_IN_MEMORY_ESTIMATION = """
import sys, warnings
from scratchgen.ngram import NGramModel, external
from scratchgen.text import Tokenizer
warnings.simplefilter("ignore")  # the warning that estimation is over the budget: that is the point
m = NGramModel(order=5, tokenizer=Tokenizer("word"))
counts, vocab = external.count_file(sys.argv[1], 5, m.tokenizer_, int(sys.argv[3]) << 20, sys.argv[4])
m.fit_counts(counts, vocab)
del counts
m.save(sys.argv[2])
"""


#: The streamed fit in one interpreter, its peak RSS read stage by stage: the high-water mark (VmHWM) is read
#: and reset (by writing 5 to /proc/self/clear_refs, Linux) where each stage begins: reading, counting, merging
#: and ranking (to pass 4); the suffix and <s> columns (pass 4); estimation (streamed smoothing); writing the
#: model file (and mapping it back).
_STAGES = """
import warnings
import scratchgen.io
from scratchgen.ngram import NGramModel, external, external_smoothing as es
from scratchgen.text import Tokenizer
warnings.simplefilter("ignore")
def hwm():
    return [int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
peaks = []
def stage(module, name):
    original = getattr(module, name)
    def wrapped(*args, **kwargs):
        peaks.append(hwm())  # the stage before this one
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return original(*args, **kwargs)
    setattr(module, name, wrapped)
stage(external, "_suffixes")
stage(es, "estimate_columns")
stage(scratchgen.io, "write_model")
m = NGramModel(order=5, tokenizer=Tokenizer("word"))
m.fit_file({corpus!r}, memory={memory}, temp_dir={temp!r}, output={out!r})
print(*peaks, hwm())
"""

#: The stages of _STAGES, in order.
STAGES = (
    "reading, counting, merging, ranking (passes 1-3)",
    "suffixes and <s> flags (pass 4)",
    "estimation (smoothing streamed)",
    "writing the model file",
)


def random_words(path: Path, lines: int, seed: int = 1, words: int = 20_000) -> tuple[int, int]:
    """``lines`` lines of 12 words drawn uniformly from ``words`` random lower-case words; (bytes, tokens)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = ["".join(rng.choice(letters, size=rng.integers(2, 9))) for _ in range(words)]
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, lines, 10_000):
            ids = rng.integers(0, words, size=(min(10_000, lines - start), 12))
            f.write("".join(" ".join(vocabulary[i] for i in row) + "\n" for row in ids))
    return path.stat().st_size, 12 * lines


def estimation(quick: bool, folder: Path) -> str:
    """The table and notes of "estimation within the budget" (module docstring), run in ``folder``."""
    lines, memory, budget_mib = ESTIMATION_SIZES[quick]
    temp = folder / "est-runs"
    temp.mkdir(exist_ok=True)
    corpus = folder / "random-words.txt"
    size, tokens = random_words(corpus, lines)
    streamed, before, plain, arpa = (folder / f"est-{x}" for x in ("streamed.npz", "before.npz", "plain.npz", "l.arpa"))
    in_memory = [sys.executable, "-c", _IN_MEMORY_ESTIMATION, str(corpus), str(before), str(budget_mib), str(temp)]
    has_lmplz = lmplz_path() is not None
    runs: dict[str, list] = {"streamed": [], "before": [], "lmplz": []}
    for _ in range(2):
        runs["streamed"].append(measured(ours(corpus, streamed, memory, temp)))
        runs["before"].append(measured(in_memory))
        if has_lmplz:
            runs["lmplz"].append(measured(lmplz(corpus, arpa, memory, temp)))
            arpa.unlink()
    measured(ours(corpus, plain, None, temp))
    staged = folder / "est-staged.npz"
    code = _STAGES.format(corpus=str(corpus), memory=budget_mib << 20, temp=str(temp), out=str(staged))
    stage_peaks = [float(x) for x in run_isolated(code).split()]
    identical = same_model(streamed, before) and same_model(streamed, plain)
    bytes_identical = streamed.read_bytes() == before.read_bytes() == plain.read_bytes()
    distinct = [int(n) for n in run_isolated(_NUM_NGRAMS.format(path=str(streamed))).split()]
    leftovers = list(temp.iterdir())
    tiny = folder / "one-line.txt"
    tiny.write_text("a b c\n", encoding="utf-8")
    bare = measured(ours(tiny, folder / "est-tiny.npz", memory, temp))[2]  # the command's constant
    rows = []
    for label, key in (
        (f"scratchgen --memory {memory} (counting, estimation and writing streamed)", "streamed"),
        (f"scratchgen --memory {memory}, count tables and estimation in memory (count_file, fit_counts)", "before"),
        (f"lmplz -S {memory}", "lmplz"),
    ):
        if runs[key]:
            w, c, r = best(runs[key])
            ratio = c / best(runs["streamed"])[1]
            rows.append([label, w, c, r, r - bare, f"{ratio:.2f}"])
    r = best(runs["streamed"])[2]
    within = r <= budget_mib + SMALL_CONSTANT_MIB
    against_lmplz = ""
    if runs["lmplz"]:
        lr = best(runs["lmplz"])[2]
        against_lmplz = (
            f" Issue 13's target, peak RSS <= lmplz's at the same budget: **{'met' if r <= lr else 'NOT met'}** "
            f"({r:.0f} MiB against {lr:.0f} MiB)."
        )
    total = sum(distinct)
    stages = table(
        ["stage of the streamed fit (one interpreter)", "peak RSS MiB", "above the one-line command MiB"],
        [[name, peak, peak - bare] for name, peak in zip(STAGES, stage_peaks)],
    )
    return (
        table(
            ["command", "wall s", "CPU s", "peak RSS MiB", "RSS - one-line corpus MiB", "CPU: this / streamed"],
            rows,
        )
        + f"\n\n- Corpus: {lines:,} lines of 12 words drawn uniformly (seed 1) from 20,000 random words, "
        f"{size / 2**20:.1f} MiB, {tokens:,} tokens; order 5, word level; budget {memory}. Distinct n-grams per "
        f"order {distinct} ({total:,} in all): {120 * total / 2**20:.0f} MiB at the 120 bytes an n-gram of "
        f"in-memory estimation, {31 * total / 2**20:.0f} MiB for the whole count tables (31 bytes an n-gram), "
        f"{24 * total / 2**20:.0f} MiB for the finished model (24 bytes an n-gram)."
        + f"\n- Target: the streamed run's peak RSS <= budget + {SMALL_CONSTANT_MIB} MiB (the documented constant: "
        "the interpreter, NumPy and scratchgen, the vocabulary, the unigram tables): "
        f"**{'met' if within else 'NOT met'}** ({r:.0f} MiB against {budget_mib + SMALL_CONSTANT_MIB} MiB). "
        f"The same command on a one-line corpus: {bare:.0f} MiB; the streamed run is {r - bare:.0f} MiB above it, "
        f"{'within' if r - bare <= budget_mib else 'over'} the budget itself.{against_lmplz} "
        f"Temporary folder empty afterwards: {'yes' if not leftovers else 'NO'}."
        + "\n\nWhere the streamed fit peaks (`fit_file(memory=, output=)` in one interpreter; VmHWM read and reset "
        "where each stage begins):\n\n"
        + stages
        + f"\n\n- The three scratchgen models (streamed, estimation in memory, no --memory at all) are "
        f"{'identical' if identical else 'NOT identical'} array by array"
        f"{' and byte for byte as files' if bytes_identical else ' (the files differ)'}."
        + "\n- Clocks: wall (perf_counter) and CPU (user + system of the child, `os.wait4`), best of 2, interleaved; "
        "peak RSS as GNU time reports it (`%M`). Held whole by the streamed run, besides blocks sized from the budget: "
        "one order's distinct keys while it is ranked (8 bytes an n-gram), order n - 1's keys, suffixes and flags "
        "while order n gets its suffixes (17), p_{n-1} and L_n while order n is smoothed (8 + 4); the blocks take "
        "at most 64 MiB whatever the budget (`WORKING_CAP`): `scratchgen/ngram/external.py`, "
        "`external_smoothing.py`."
    )


_NUM_NGRAMS = "from scratchgen import load; print(*load({path!r}).num_ngrams())"


def with_estimation(spill: str, estimated: str, stamp: str) -> str:
    """The markdown of the spill section ``spill`` with its estimation part (from ``ESTIMATION_HEADING`` on)
    replaced by ``estimated``, under the line ``stamp`` (when and how it was rerun)."""
    before = spill.partition(ESTIMATION_HEADING)[0].rstrip()
    return f"{before}\n\n{ESTIMATION_HEADING}\n\n{stamp}\n\n{estimated.strip()}\n".lstrip()


@dataclasses.dataclass
class Rewritten(Section):
    """A section whose markdown is given whole (an existing section with one part rewritten)."""

    text: str = ""

    def markdown(self) -> str:
        return self.text


def written_section(name: str) -> str | None:
    """The markdown of section ``name`` as RESULTS.md holds it (between its markers), or None."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    found = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.S)
    return found.group(1) if found else None


def main(argv: list[str]) -> None:
    """``python -m benchmarks.bench_spill [--quick] [--estimation]``: the whole spill section; with
    ``--estimation``, only its estimation table, rewritten inside the spill section (there is one section)."""
    quick = "--quick" in argv
    if "--estimation" not in argv:
        section: Section = run(quick)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-spill-") as tmp:
            estimated = estimation(quick, Path(tmp))
        command = "python -m benchmarks.bench_spill --estimation" + (" --quick" if quick else "")
        stamp = Section("spill", SPILL_TITLE, "", command).markdown().splitlines()[2]  # date; command; machine
        old = written_section("spill") or f"## {SPILL_TITLE}\n"
        section = Rewritten("spill", SPILL_TITLE, "", command, with_estimation(old, estimated, stamp))
    print(section.markdown())
    write_section(section)


if __name__ == "__main__":
    main(sys.argv[1:])
