"""Benchmark of the text pipeline: a corpus file read, NFC-normalised, tokenized and encoded to ids.

Measured, each in the same run (megabytes of UTF-8 per second, best of 3):

- ``read_ids``: the whole pipeline from the file, one sequence a line, counting the vocabulary in the same
  pass (:func:`scratchgen.corpus.read_ids`), at character and word level;
- the plain Python baselines on the same file: ``str.split`` plus a dict (token -> id, new ids as met), and
  ``re.findall`` with a simple word pattern (``\\w+|[^\\w\\s]``) plus the same dict; at character level the
  baseline is a dict look-up a character (``[index.setdefault(c, len(index)) for c in text]``);
- the pipeline before this benchmark existed (the 1x file only: it is slow): each line NFC-normalised and
  tokenized by the reference tokenizer (:mod:`scratchgen.text_reference`), the token lists encoded by
  ``ngram.fitting.build_vocab``, as ``scratchgen train ngram`` read a corpus then;

on tinyshakespeare (1x, and repeated 10x and 100x in a temporary folder; the 100x file for read_ids only,
once) and on Chinese text (sentences sampled from the
built-in Chinese grammar with a fixed seed, repeated to about 1 MB). Then:

- start-up of the command line as whole processes (``import scratchgen``, ``import scratchgen.cli.main``,
  ``scratchgen --help``, ``scratchgen train ngram --help``; ``python -c pass`` and ``import numpy`` for scale),
  interleaved, best of 5, wall and CPU;
- whole commands as processes: ``scratchgen train ngram --order 5 --level word --memory 400M`` and ``--level
  char`` on tinyshakespeare 1x, 10x and 100x (the copies built in a temporary folder; quick: 1x and 2x), against
  ``lmplz -o 5 -S 400M`` (the same budget; ``LMPLZ`` or PATH; at character level on the same file with its
  characters written apart, as bench_ngram does, not timed), and scratchgen without ``--memory``, the three
  interleaved (A B C A B C), best of 3, 2 and 2 processes; wall and CPU seconds (user + system) and the peak
  resident memory of each child process (``os.wait4``). The children run without ``PYTHONDONTWRITEBYTECODE``
  (after one warm-up run), as an installed package runs. A last row gives the in-memory figure: the same fit
  from ids already in memory (``NGramCounts.from_flat`` then ``fit_counts``), CPU seconds in this process;
- and, with ``SCRATCHGEN_BEFORE`` (a checkout of an earlier commit, e.g. ``git worktree add /tmp/before
  <commit>``), the whole command of that checkout on the 10x file.

Run ``python -m benchmarks.bench_text [--quick]`` from the repository root; ``--commands`` runs the whole
commands alone and rewrites only their part of the section.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from benchmarks.bench_ngram import lmplz_note, lmplz_path
from benchmarks.common import HERE, Section, best_cpu, data_file, table, write_section

ROOT = HERE.parent


def chinese_text(sentences: int) -> str:
    """Sentences of the built-in Chinese grammar (seed 0), one a line, characters without spaces."""
    from scratchgen import builtin
    from scratchgen.grammar.sampling import sample

    return "\n".join("".join(s) for s in sample(builtin("chinese"), n=sentences, seed=0)) + "\n"


def make_corpora(folder: Path, quick: bool) -> list[tuple[str, Path]]:
    """The files measured: tinyshakespeare 1x, 10x and 100x (quick: 1x and 2x), and Chinese text."""
    shakespeare = data_file("tinyshakespeare.txt")
    text = shakespeare.read_text(encoding="utf-8")
    files = [("tinyshakespeare", shakespeare)]
    for times in (2,) if quick else (10, 100):
        repeated = folder / f"tinyshakespeare_x{times}.txt"
        repeated.write_text(text * times, encoding="utf-8")
        files.append((f"tinyshakespeare x{times}", repeated))
    chinese = chinese_text(500 if quick else 2000)
    copies = max(1, (300_000 if quick else 1_000_000) // len(chinese.encode("utf-8")))
    zh = folder / "chinese.txt"
    zh.write_text(chinese * copies, encoding="utf-8")
    return files + [("Chinese (grammar)", zh)]


# --- the pipelines ---------------------------------------------------------------------------------------


def ours(path: Path, level: str) -> int:
    from scratchgen.corpus import read_ids
    from scratchgen.text import Tokenizer

    return len(read_ids(path, Tokenizer(level)).ids)


def split_dict(path: Path) -> int:
    """Plain Python, word level: str.split and a dict (no normalisation, no punctuation apart)."""
    index: dict[str, int] = {}
    ids = [index.setdefault(w, len(index)) for w in path.read_text(encoding="utf-8").split()]
    return len(ids)


WORD_RE = re.compile(r"\w+|[^\w\s]")


def findall_dict(path: Path) -> int:
    """Plain Python, word level: re.findall with a simple word pattern and a dict."""
    index: dict[str, int] = {}
    ids = [index.setdefault(w, len(index)) for w in WORD_RE.findall(path.read_text(encoding="utf-8"))]
    return len(ids)


def chars_dict(path: Path) -> int:
    """Plain Python, character level: a dict look-up a character."""
    index: dict[str, int] = {}
    ids = [index.setdefault(c, len(index)) for c in path.read_text(encoding="utf-8")]
    return len(ids)


def before(path: Path, level: str) -> int:
    """The pipeline before read_ids: a line at a time, the reference tokenizer, token lists, build_vocab."""
    import unicodedata

    from scratchgen import text_reference
    from scratchgen.ngram.fitting import build_vocab

    tokenize = list if level == "char" else text_reference.word_tokenize
    sequences = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            tokens = tokenize(unicodedata.normalize("NFC", line.rstrip("\r\n")))
            if tokens:
                sequences.append(tokens)
    _, flat, _ = build_vocab(sequences)
    return len(flat)



def pipeline_rows(corpora, repeat: int) -> list[list[object]]:
    rows = []
    for name, path in corpora:
        mb = path.stat().st_size / 1e6
        big = name.endswith("x100")  # read once, without the baselines: it takes a while
        for level in ("char", "word"):
            t_ours = best_cpu(partial(ours, path, level), 1 if big else repeat)
            if big:
                rows.append([name, f"{mb:.1f}", level, mb / t_ours, "-", float("nan"), float("nan")])
                continue
            baselines = [("dict a character", chars_dict)]
            if level == "word":
                baselines = [("split + dict", split_dict), ("findall + dict", findall_dict)]
            for label, fn in baselines:
                t_base = best_cpu(partial(fn, path), repeat)
                rows.append([name, f"{mb:.1f}", level, mb / t_ours, label, mb / t_base, t_base / t_ours])
            if name == "tinyshakespeare" or name.startswith("Chinese"):
                t_before = best_cpu(partial(before, path, level), 1)
                label = "before (per line, reference)"
                rows.append([name, f"{mb:.1f}", level, mb / t_ours, label, mb / t_before, t_before / t_ours])
    return rows


# --- processes: import time and whole commands -------------------------------------------------------------


#: Runs a command and prints its exit code, wall and CPU seconds and peak resident MiB (``os.wait4``).
_LAUNCH = """
import json, os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = child.stderr.read()
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
sys.stderr.buffer.write(err[-2000:])
print(json.dumps([os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024]))
"""


def timed_process(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, float, float]:
    """Wall and CPU seconds (user + system) and peak resident MiB of one process, run to its end (an error if
    it fails). A small launcher process starts it and reads its own usage: a child forked straight from this
    process, grown large by the in-process rows, would report this process's peak as its own (Linux keeps the
    high-water mark of memory across fork and exec)."""
    done = subprocess.run([sys.executable, "-c", _LAUNCH, *cmd], cwd=cwd, env=env, capture_output=True)
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"launching {' '.join(cmd)} failed: {done.stderr.decode('utf-8', 'replace')[-500:]}")
    code, wall, cpu, rss = json.loads(lines[-1])
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.decode('utf-8', 'replace')[-500:]}")
    return wall, cpu, rss


def best_process(cmd: list[str], repeat: int, **kwargs) -> tuple[float, float]:
    runs = [timed_process(cmd, **kwargs) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def checkout_env(checkout: Path) -> dict:
    """The environment of a child run from ``checkout``: bytecode caches written and read, as installed."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


#: The processes of the import rows: what starts before the command line can do anything.
IMPORT_PROCESSES = (
    ("python -c 'import scratchgen'", ["-c", "import scratchgen"]),
    ("python -c 'import scratchgen.cli.main'", ["-c", "import scratchgen.cli.main"]),
    ("scratchgen --help", ["-m", "scratchgen", "--help"]),
    ("scratchgen train ngram --help", ["-m", "scratchgen", "train", "ngram", "--help"]),
)
#: For scale: the bare interpreter (what every process above pays before importing anything), and NumPy alone.
SCALE_PROCESSES = (("python -c pass", ["-c", "pass"]), ("python -c 'import numpy'", ["-c", "import numpy"]))


def import_rows(repeat: int) -> list[list[object]]:
    """Each process of :data:`IMPORT_PROCESSES` (per checkout) and :data:`SCALE_PROCESSES`, run in turn,
    ``repeat`` rounds (interleaved, so a busy moment of the machine hits all alike); the best wall and the best
    CPU time (user + system) of each, and the CPU time over the bare interpreter's (the import's own cost)."""
    checkouts = [("this checkout", ROOT)]
    if os.environ.get("SCRATCHGEN_BEFORE"):
        checkouts.append(("before (SCRATCHGEN_BEFORE)", Path(os.environ["SCRATCHGEN_BEFORE"])))
    runs = [(what, label, args, checkout) for label, checkout in checkouts for what, args in IMPORT_PROCESSES]
    runs += [(what, "", args, ROOT) for what, args in SCALE_PROCESSES]
    best = {(what, label): (float("inf"), float("inf")) for what, label, _, _ in runs}
    for _ in range(repeat):
        for what, label, args, checkout in runs:
            wall, cpu, _ = timed_process([sys.executable, *args], cwd=checkout, env=checkout_env(checkout))
            best[what, label] = (min(best[what, label][0], wall), min(best[what, label][1], cpu))
    bare_cpu = best["python -c pass", ""][1]
    return [[what, label or "(for scale)", wall, cpu, cpu - bare_cpu] for (what, label), (wall, cpu) in best.items()]


def _chars_apart(path: Path, folder: Path) -> Path:
    """The file with its characters written apart (lmplz counts words), as bench_ngram does: not timed."""
    from scratchgen.ngram.arpa import escape_token

    out = folder / f"{path.stem}_chars.txt"
    with open(path, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            line = line.rstrip("\n")
            if line:
                dst.write(" ".join(escape_token(c) for c in line) + "\n")
    return out


def in_memory_cpu(path: Path, level: str) -> float:
    """CPU seconds of the fit from ids already in memory: counting and smoothing, as the command runs them."""
    from scratchgen.corpus import read_ids
    from scratchgen.ngram import NGramModel
    from scratchgen.ngram.counting import NGramCounts
    from scratchgen.text import Tokenizer

    tokenizer = Tokenizer(level)
    enc = read_ids(path, tokenizer)
    start = time.process_time()
    counts = NGramCounts.from_flat(enc.ids, enc.lengths, 5, len(enc.vocab))
    NGramModel(order=5, tokenizer=tokenizer).fit_counts(counts, enc.vocab)
    return time.process_time() - start


#: The memory budget both programs get in the whole-command rows (lmplz ``-S``, scratchgen ``--memory``).
BUDGET = "400M"


def train_command(path: Path, level: str, out: Path, memory: str | None = None) -> list[str]:
    budget = ["--memory", memory] if memory else []
    return [sys.executable, "-m", "scratchgen", "train", "ngram", "--order", "5", "--level", level, "--quiet",
            *budget, str(path), "-o", str(out)]  # fmt: skip


def command_rows(files: list[tuple[str, Path]], folder: Path, quick: bool) -> list[list[object]]:
    """Whole commands, scratchgen (with the budget, and without) and lmplz, interleaved, at each size and level;
    then the in-memory fit."""
    rows = []
    lmplz = lmplz_path()
    env = checkout_env(ROOT)
    timed_process(train_command(files[0][1], "word", folder / "warm.npz"), cwd=ROOT, env=env)  # writes the .pyc
    for (name, path), repeat in zip(files, (2, 1) if quick else (3, 2, 2)):  # 100x: best of 2 as well
        for level in ("word", "char"):
            cmd = train_command(path, level, folder / f"model_{level}.npz", BUDGET)
            plain = train_command(path, level, folder / f"model_{level}.npz")
            text = path if level == "word" else _chars_apart(path, folder)
            lcmd = [lmplz, "-o", "5", "--text", str(text), "--arpa", str(folder / "lmplz.arpa"), "--discount_fallback",
                    "-S", BUDGET, "-T", str(folder)] if lmplz else None  # fmt: skip
            mine, theirs, default = [], [], []
            for _ in range(repeat):  # interleaved: A B C A B C
                mine.append(timed_process(cmd, cwd=ROOT, env=env))
                if lcmd:
                    try:
                        theirs.append(timed_process(lcmd))
                    except RuntimeError as e:
                        print(e, file=sys.stderr)
                default.append(timed_process(plain, cwd=ROOT, env=env))
            wall, cpu, rss = (min(r[i] for r in mine) for i in range(3))
            dwall, dcpu, drss = (min(r[i] for r in default) for i in range(3))
            nan = float("nan")
            lwall, lcpu, lrss = (min(r[i] for r in theirs) for i in range(3)) if theirs else (nan, nan, nan)
            rows.append([name, level, f"scratchgen train ngram --memory {BUDGET} (file to saved model)", wall, cpu,
                         rss, lwall / wall, lcpu / cpu])  # fmt: skip
            rows.append(["", "", f"lmplz -o 5 -S {BUDGET} (file to ARPA)" if theirs else "lmplz (failed or absent)",
                         lwall, lcpu, lrss, 1.0, 1.0])  # fmt: skip
            rows.append(["", "", "scratchgen train ngram (no --memory: the default chunks)", dwall, dcpu, drss,
                         lwall / dwall, lcpu / dcpu])  # fmt: skip
            mem = in_memory_cpu(path, level)
            rows.append(["", "", "scratchgen in memory (ids to smoothed tables)", nan, mem, nan, nan, lcpu / mem])
            if folder.joinpath(f"{path.stem}_chars.txt").exists():
                folder.joinpath(f"{path.stem}_chars.txt").unlink()
    before_checkout = os.environ.get("SCRATCHGEN_BEFORE")
    if before_checkout:
        for level in ("word", "char"):
            cmd = train_command(files[1][1], level, folder / "before.npz")
            wall, cpu, rss = timed_process(cmd, cwd=Path(before_checkout), env=checkout_env(Path(before_checkout)))
            rows.append([files[1][0], level, "scratchgen before (SCRATCHGEN_BEFORE)", wall, cpu, rss, nan, nan])
    return rows


def commands_text(commands: list[list[object]], quick: bool) -> str:
    """The whole-command part of the section: what the rows measure, then the table."""
    return (
        "Whole commands, order 5 (`--quiet`), scratchgen and lmplz interleaved, best of "
        + ("2 and 1" if quick else "3, 2 and 2")
        + f" processes by size; lmplz: {lmplz_note()}. Both programs get the same memory budget, {BUDGET} (lmplz "
        f"`-S {BUDGET}`, scratchgen `--memory {BUDGET}`: it counts the file in chunks of lines and spills to disk "
        "only when the distinct n-grams outgrow the budget, which they do not here); the third row is scratchgen "
        "without `--memory` (the same chunks by default). Peak RSS: the child's own maximum resident set (target "
        "<= lmplz's). Ratios: lmplz's time over scratchgen's (> 1: scratchgen is faster; target >= 1 on the wall "
        "clock). The machine is shared: the CPU ratio is the steadier figure. The in-memory row is the fit from ids "
        "already in memory (counting and smoothing, CPU seconds in the benchmark's process) against lmplz's whole "
        "process.\n\n"
        + table(["corpus", "level", "program", "wall s", "CPU s", "peak RSS MiB", "wall ratio", "CPU ratio"],
                commands)  # fmt: skip
    )


#: Where the whole-command part of the section begins (``--commands`` replaces the text from there on).
COMMANDS_START = "Whole commands, order 5"


def run(quick: bool) -> Section:
    repeat = 2 if quick else 3
    folder = Path(tempfile.mkdtemp(prefix="bench_text_"))
    try:
        corpora = make_corpora(folder, quick)
        rows = pipeline_rows(corpora, repeat)
        imports = import_rows(3 if quick else 5)
        commands = command_rows(corpora[:-1], folder, quick)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    body = (
        "The whole pipeline from the file: read (UTF-8), NFC-normalise, tokenize, encode to ids, one sequence a "
        "line, the vocabulary counted in the same pass (`scratchgen.corpus.read_ids`). MB of UTF-8 per CPU second "
        f"(`time.process_time`, best of {repeat}; the 100x file once, without baselines); the baselines are plain "
        "Python measured in the same run on the same file (they do less: no normalisation, no lines, and `split` keeps "
        "punctuation on its words). Ratio > 1: scratchgen is faster. Targets (issue 13): >= 50 MB/s at character "
        "level and >= 20 MB/s at word level on English.\n\n"
        + table(["corpus", "MB", "level", "scratchgen MB/s", "baseline", "baseline MB/s", "ratio"], rows)
        + "\n\nStart-up of the command line, whole processes (best of "
        + f"{3 if quick else 5}, interleaved; CPU = user + system of the process; 'over bare' = CPU s minus "
        "`python -c pass`'s, the imports' own cost). Target (issue 13): <= 0.2 s.\n\n"
        + table(["process", "checkout", "wall s", "CPU s", "CPU s over bare"], imports)
        + "\n\n"
        + commands_text(commands, quick)
    )
    command = "python -m benchmarks.bench_text" + (" --quick" if quick else "")
    return Section(name="text", title="Text pipeline: a file to ids", body=body, command=command)


def run_commands(quick: bool) -> str:
    """The whole-command rows alone (``--commands``), as markdown with their own time stamp and command."""
    folder = Path(tempfile.mkdtemp(prefix="bench_text_"))
    try:
        shakespeare = make_corpora(folder, quick)[:-1]
        commands = command_rows(shakespeare, folder, quick)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python -m benchmarks.bench_text --commands" + (" --quick" if quick else "")
    return f"{COMMANDS_START} (these rows: {stamp}; `{command}`, run apart from the rows above)" + commands_text(
        commands, quick
    )[len(COMMANDS_START) :]


def write_commands(markdown: str) -> None:
    """Replace the whole-command part of the text section of RESULTS.md (from :data:`COMMANDS_START` to the
    section's end marker); the rows above it and the other sections stay as they are. Without a text section
    yet, run the whole benchmark first."""
    from benchmarks.common import RESULTS
    from scratchgen.io import atomic_write

    text = RESULTS.read_text() if RESULTS.exists() else ""
    start, end = text.find("<!-- text:start -->"), text.find("<!-- text:end -->")
    cut = text.find(COMMANDS_START, start, end) if start >= 0 else -1
    if cut < 0:
        raise SystemExit("RESULTS.md has no text section with whole commands yet: run python -m benchmarks.bench_text")
    new = text[:cut] + markdown.strip() + "\n" + text[end:]
    atomic_write(RESULTS, lambda f: f.write(new), mode="w")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Benchmark of the text pipeline (writes its RESULTS.md section)")
    parser.add_argument("--quick", action="store_true", help="small files, fewer repeats")
    parser.add_argument("--commands", action="store_true",
                        help="only the whole commands against lmplz (scratchgen train ngram, 1x 10x 100x), written "
                             "in place of that part of the text section")  # fmt: skip
    args = parser.parse_args()
    if args.commands:
        part = run_commands(args.quick)
        print(part)
        write_commands(part)
    else:
        section = run(args.quick)
        print(section.markdown())
        write_section(section)
