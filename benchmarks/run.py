"""Run every benchmark, print one table and rewrite benchmarks/RESULTS.md.

    python -m benchmarks [--quick] [--only NAME ...]        (from the repository root)
    python benchmarks/run.py [--quick] [--only NAME ...]

Every ``benchmarks/bench_<name>.py`` is a benchmark: ``run(quick) -> benchmarks.common.Section``.
Each one runs in its own interpreter (its own imports and peak memory) with a time budget; one that
fails, runs out of time or does not exist yet gives a row saying so and the run goes on. At the end
RESULTS.md is rewritten whole: title, date, machine, the command, a summary of this run, then every
section (with ``--only``, the sections of the benchmarks not run are kept from the previous file).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/run.py` puts benchmarks/ on the path, not the root
    sys.path.insert(0, str(ROOT))

from benchmarks.common import HERE, RESULTS, Section, machine, table  # noqa: E402
from scratchgen.io import atomic_write  # noqa: E402

#: Benchmarks the issues promise; a missing file gives an "absent" row instead of silence.
EXPECTED = ("baseline", "grammar", "ngram", "nn")
#: Seconds each benchmark may take with --quick (the whole quick run must stay under 5 minutes).
QUICK_BUDGET = {"baseline": 30.0, "evaluation": 30.0, "grammar": 70.0, "ngram": 70.0, "nn": 70.0}
QUICK_DEFAULT_BUDGET = 45.0
QUICK_TOTAL = 285.0
FULL_BUDGET = 1800.0


@dataclasses.dataclass
class Outcome:
    name: str
    status: str  # "ok", "failed: ...", "timed out ...", "absent ..."
    seconds: float
    budget: float
    section: Section | None = None


def discover() -> list[str]:
    """Benchmark names: every bench_*.py here, and the expected ones even when absent, sorted."""
    found = {p.stem[len("bench_"):] for p in HERE.glob("bench_*.py")}
    return sorted(found | set(EXPECTED))


def _child(name: str, quick: bool, out: str) -> int:
    """Run one benchmark in this (child) process and write its section, or its error, as JSON."""
    result: dict
    try:
        import importlib

        module = importlib.import_module(f"benchmarks.bench_{name}")
        section = module.run(quick)
        if not isinstance(section, Section):
            raise TypeError(f"bench_{name}.run returned {type(section).__name__}, not a Section")
        result = {"section": dataclasses.asdict(section)}
    except (Exception, SystemExit) as e:  # SystemExit: data_file() when the corpora are absent
        traceback.print_exc()
        result = {"error": f"{type(e).__name__}: {e}".strip().splitlines()[-1][:300]}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


def run_one(name: str, quick: bool, budget: float) -> Outcome:
    """Run ``bench_<name>`` in a fresh interpreter, killed after ``budget`` seconds."""
    if not (HERE / f"bench_{name}.py").exists():
        return Outcome(name, f"absent (benchmarks/bench_{name}.py not written yet)", 0.0, budget)
    fd, out = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", name, "--out", out] + (["--quick"] if quick else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    try:
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the child's own group: it and what it started
            proc.wait()
            return Outcome(name, f"timed out after {budget:.0f} s (its budget)", time.perf_counter() - start, budget)
        except KeyboardInterrupt:  # the child has its own session, so Ctrl-C reaches only us: stop it too
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        seconds = time.perf_counter() - start
        try:
            with open(out, encoding="utf-8") as f:
                result = json.load(f)
        except (OSError, ValueError):
            return Outcome(name, f"failed: exit code {proc.returncode}, no result", seconds, budget)
        if "error" in result:
            return Outcome(name, f"failed: {result['error']}", seconds, budget)
        return Outcome(name, "ok", seconds, budget, Section(**result["section"]))
    finally:
        os.unlink(out)


def _old_blocks(text: str) -> dict[str, str]:
    """The marked section blocks of an existing RESULTS.md, by name."""
    pattern = re.compile(r"<!-- ([\w-]+):start -->\n.*?<!-- \1:end -->\n?", re.S)
    return {m.group(1): m.group(0).rstrip("\n") + "\n" for m in pattern.finditer(text)}


def _block(name: str, markdown: str) -> str:
    return f"<!-- {name}:start -->\n{markdown.rstrip()}\n<!-- {name}:end -->\n"


def write_results(outcomes: list[Outcome], command: str, names: list[str]) -> str:
    """The whole of RESULTS.md for this run (sections of benchmarks not run, and of commands the runner
    does not run, are kept)."""
    old = _old_blocks(RESULTS.read_text()) if RESULTS.exists() else {}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ran = {o.name: o for o in outcomes}
    parts = [
        "# Benchmark results\n",
        f"Written {now} by `{command}` (from the repository root).\n",
        f"Machine: {machine()}.\n",
        "Timings are wall-clock on a shared machine and noisy: read the ratios against the peers measured in "
        "the same run, not the absolute figures. Peers are optional (`pip install -r benchmarks/requirements.txt`); "
        "a missing one gives a row saying it was skipped.\n",
        "## This run\n",
        _summary(outcomes) + "\n",
    ]
    for name in names:
        if name in ran:
            o = ran[name]
            if o.section is not None:
                parts.append(_block(name, o.section.markdown()))
            else:
                parts.append(_block(name, f"## {name}\n\nNot measured in this run: {o.status}.\n"))
        elif name in old:
            parts.append(old[name])
    # Sections written by commands the runner does not run (the long quality runs of bench_nn
    # --quality) are kept as they are, with their own date and command.
    parts += [block for key, block in old.items() if key not in names]
    return "\n".join(parts)


def _summary(outcomes: list[Outcome]) -> str:
    rows = [[o.name, o.status, f"{o.seconds:.1f}", f"{o.budget:.0f}"] for o in outcomes]
    total = sum(o.seconds for o in outcomes)
    rows.append(["total", "", f"{total:.1f}", ""])
    return table(["benchmark", "status", "seconds", "budget (s)"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; the whole run stays under 5 minutes")
    parser.add_argument("--only", action="append", metavar="NAME", default=None,
                        help="run only this benchmark (repeatable): " + ", ".join(discover()))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.quick, args.out)

    names = discover()
    chosen = names
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(names)}")
        chosen = [n for n in names if n in args.only]
    command = "python -m benchmarks" + (" --quick" if args.quick else "") + \
        "".join(f" --only {n}" for n in (args.only or []))

    print(f"{command}\n{machine()}\n", flush=True)
    outcomes = []
    start = time.perf_counter()
    for name in chosen:
        if args.quick:
            left = QUICK_TOTAL - (time.perf_counter() - start)
            budget = max(5.0, min(QUICK_BUDGET.get(name, QUICK_DEFAULT_BUDGET), left))
        else:
            budget = FULL_BUDGET
        print(f"--- {name} (budget {budget:.0f} s)", flush=True)
        outcome = run_one(name, args.quick, budget)
        outcomes.append(outcome)
        if outcome.section is not None:
            print(outcome.section.body.strip() + "\n", flush=True)
        print(f"--- {name}: {outcome.status} in {outcome.seconds:.1f} s "
              f"(elapsed {time.perf_counter() - start:.1f} s)\n", flush=True)

    text = write_results(outcomes, command, names)
    atomic_write(RESULTS, lambda f: f.write(text), mode="w")
    print(_summary(outcomes))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0 if all(o.status == "ok" or o.status.startswith("absent") for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
