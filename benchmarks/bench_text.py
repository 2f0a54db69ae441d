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

on tinyshakespeare (1x, and repeated 10x in a temporary folder) and on Chinese text (sentences sampled from the
built-in Chinese grammar with a fixed seed, repeated to about 1 MB). Then:

- start-up of the command line as whole processes (``import scratchgen``, ``import scratchgen.cli.main``,
  ``scratchgen --help``, ``scratchgen train ngram --help``; ``python -c pass`` and ``import numpy`` for scale),
  interleaved, best of 5, wall and CPU;
- whole commands as processes: ``scratchgen train ngram --order 5 --level word`` and ``--level char`` on the 10x
  file, this checkout against an earlier one (the environment variable ``SCRATCHGEN_BEFORE``: a checkout of an
  earlier commit, e.g. ``git worktree add /tmp/before <commit>``) and against ``lmplz -o 5`` (``LMPLZ`` or PATH;
  at character level on the same file with its characters written apart, as bench_ngram does).

Run ``python -m benchmarks.bench_text [--quick]`` from the repository root.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_ngram import lmplz_note, lmplz_path
from benchmarks.common import HERE, Section, best_of, data_file, table, write_section

ROOT = HERE.parent


def chinese_text(sentences: int) -> str:
    """Sentences of the built-in Chinese grammar (seed 0), one a line, characters without spaces."""
    from scratchgen import builtin
    from scratchgen.grammar.sampling import sample

    return "\n".join("".join(s) for s in sample(builtin("chinese"), n=sentences, seed=0)) + "\n"


def make_corpora(folder: Path, quick: bool) -> list[tuple[str, Path]]:
    """The files measured: tinyshakespeare 1x and 10x (2x with --quick), and Chinese text."""
    shakespeare = data_file("tinyshakespeare.txt")
    text = shakespeare.read_text(encoding="utf-8")
    times = 2 if quick else 10
    repeated = folder / f"tinyshakespeare_x{times}.txt"
    repeated.write_text(text * times, encoding="utf-8")
    chinese = chinese_text(500 if quick else 2000)
    copies = max(1, (300_000 if quick else 1_000_000) // len(chinese.encode("utf-8")))
    zh = folder / "chinese.txt"
    zh.write_text(chinese * copies, encoding="utf-8")
    return [("tinyshakespeare", shakespeare), (f"tinyshakespeare x{times}", repeated), ("Chinese (grammar)", zh)]


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
        for level in ("char", "word"):
            t_ours = best_of(lambda: ours(path, level), repeat)
            baselines = [("split + dict", split_dict), ("findall + dict", findall_dict)] if level == "word" else [
                ("dict a character", chars_dict)]
            for label, fn in baselines:
                t_base = best_of(lambda: fn(path), repeat)
                rows.append([name, f"{mb:.1f}", level, mb / t_ours, label, mb / t_base, t_base / t_ours])
            if name == "tinyshakespeare" or name.startswith("Chinese"):
                t_before = best_of(lambda: before(path, level), 1)
                rows.append([name, f"{mb:.1f}", level, mb / t_ours, "before (per line, reference)", mb / t_before,
                             t_before / t_ours])
    return rows


# --- processes: import time and whole commands -------------------------------------------------------------


def timed_process(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one process, run to its end (an error if it fails)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # microseconds, where os.times() counts 10 ms ticks
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.decode('utf-8', 'replace')[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def best_process(cmd: list[str], repeat: int, **kwargs) -> tuple[float, float]:
    runs = [timed_process(cmd, **kwargs) for _ in range(repeat)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def checkout_env(checkout: Path) -> dict:
    return dict(os.environ, PYTHONPATH=str(checkout))


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
            wall, cpu = timed_process([sys.executable, *args], cwd=checkout, env=checkout_env(checkout))
            best[what, label] = (min(best[what, label][0], wall), min(best[what, label][1], cpu))
    bare_cpu = best["python -c pass", ""][1]
    return [[what, label or "(for scale)", wall, cpu, cpu - bare_cpu] for (what, label), (wall, cpu) in best.items()]


def command_rows(path: Path, folder: Path, repeat: int) -> list[list[object]]:
    rows = []
    before_checkout = os.environ.get("SCRATCHGEN_BEFORE")
    lmplz = lmplz_path()
    char_text = None
    for level in ("word", "char"):
        out = folder / f"model_{level}.npz"
        cmd = [sys.executable, "-m", "scratchgen", "train", "ngram", "--order", "5", "--level", level, "--quiet",
               str(path), "-o", str(out)]
        wall, cpu = best_process(cmd, repeat, cwd=ROOT, env=checkout_env(ROOT))
        rows.append([f"train ngram --order 5 --level {level}", "scratchgen (this checkout)", wall, cpu, 1.0])
        mine = wall
        if before_checkout:
            wall, cpu = best_process(cmd, 1, cwd=Path(before_checkout), env=checkout_env(Path(before_checkout)))
            rows.append(["", "scratchgen before (SCRATCHGEN_BEFORE)", wall, cpu, wall / mine])
        if lmplz:
            text = path
            if level == "char":  # lmplz counts words: write the characters apart (not timed), as bench_ngram does
                from scratchgen.ngram.arpa import escape_token

                char_text = folder / "chars.txt"
                with open(path, encoding="utf-8") as src, open(char_text, "w", encoding="utf-8") as dst:
                    for line in src:
                        line = line.rstrip("\n")
                        if line:
                            dst.write(" ".join(escape_token(c) for c in line) + "\n")
                text = char_text
            arpa = folder / "lmplz.arpa"
            lcmd = [lmplz, "-o", "5", "--text", str(text), "--arpa", str(arpa), "--discount_fallback", "-S", "400M",
                    "-T", str(folder)]
            try:
                wall, cpu = best_process(lcmd, repeat)
                rows.append(["", "lmplz -o 5 -S 400M", wall, cpu, wall / mine])
            except RuntimeError as e:
                print(e, file=sys.stderr)
                rows.append(["", "lmplz (failed)", float("nan"), float("nan"), float("nan")])
    return rows


def run(quick: bool) -> Section:
    repeat = 2 if quick else 3
    folder = Path(tempfile.mkdtemp(prefix="bench_text_"))
    try:
        corpora = make_corpora(folder, quick)
        rows = pipeline_rows(corpora, repeat)
        imports = import_rows(3 if quick else 5)
        commands = command_rows(corpora[1][1], folder, 1 if quick else 2)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    before_note = (f"`{os.environ['SCRATCHGEN_BEFORE']}`" if os.environ.get("SCRATCHGEN_BEFORE")
                   else "not measured (set SCRATCHGEN_BEFORE to a checkout of an earlier commit)")
    body = (
        "The whole pipeline from the file: read (UTF-8), NFC-normalise, tokenize, encode to ids, one sequence a "
        "line, the vocabulary counted in the same pass (`scratchgen.corpus.read_ids`). MB of UTF-8 per second, "
        f"best of {repeat}; the baselines are plain Python measured in the same run on the same file (they do "
        "less: no normalisation, no lines, and `split` keeps punctuation on its words). Ratio > 1: scratchgen "
        "is faster. Targets (issue 13): >= 50 MB/s at character level and >= 20 MB/s at word level on English.\n\n"
        + table(["corpus", "MB", "level", "scratchgen MB/s", "baseline", "baseline MB/s", "ratio"], rows)
        + "\n\nStart-up of the command line, whole processes (best of "
        + f"{3 if quick else 5}, interleaved; CPU = user + system of the process; 'over bare' = CPU s minus "
        "`python -c pass`'s, the imports' own cost). Target (issue 13): <= 0.2 s.\n\n"
        + table(["process", "checkout", "wall s", "CPU s", "CPU s over bare"], imports)
        + f"\n\nWhole commands on {corpora[1][0]} (best of {1 if quick else 2} processes, `--quiet`); the earlier "
        f"checkout: {before_note}; lmplz: {lmplz_note()}. Ratio: its wall time over scratchgen's (> 1: scratchgen "
        "is faster).\n\n"
        + table(["command", "program", "wall s", "CPU s", "ratio"], commands)
    )
    command = "python -m benchmarks.bench_text" + (" --quick" if quick else "")
    return Section(name="text", title="Text pipeline: a file to ids", body=body, command=command)


if __name__ == "__main__":
    section = run(quick="--quick" in sys.argv[1:])
    print(section.markdown())
    write_section(section)
