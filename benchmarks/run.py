"""Run every benchmark, print one table and rewrite benchmarks/RESULTS.md.

    python -m benchmarks [--quick] [--only NAME ...]        (from the repository root)
    python benchmarks/run.py [--quick] [--only NAME ...]

Every ``benchmarks/bench_<name>.py`` is a benchmark: ``run(quick) -> benchmarks.common.Section``.
Each one runs in its own interpreter (its own imports and peak memory) with a budget of CPU seconds;
one that fails, runs out of budget or does not exist yet gives a row saying so and the run goes on.
At the end RESULTS.md is rewritten whole: title, date, machine, the command, a summary of this run,
then every section (with ``--only``, the sections of the benchmarks not run are kept from the previous
file).

Budgets count CPU seconds (user + system) of the benchmark's process and of every process it starts
(lmplz, the fresh interpreters that measure memory), not wall seconds: on a shared machine a
neighbour's load stretches the wall clock, not the work a benchmark does. A wall-clock limit of
``WALL_FACTOR`` times the budget remains, for a benchmark that waits forever without using the CPU.
With ``--quick`` every benchmark runs with one BLAS and OpenMP thread, it and the processes it
starts: the quick run is a check that every benchmark still works, and several threads on a busy
machine spend their time waiting for each other (ratios stay fair: scratchgen trains on one thread).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/run.py` puts benchmarks/ on the path, not the root
    sys.path.insert(0, str(ROOT))

from benchmarks.common import HERE, RESULTS, Section, machine, table  # noqa: E402
from scratchgen.io import atomic_write  # noqa: E402
from scratchgen.progress import Progress  # noqa: E402

#: Benchmarks the issues promise; a missing file gives an "absent" row instead of silence.
EXPECTED = ("baseline", "constraint", "grammar", "ngram", "nn", "em", "scale", "text", "labels", "deep", "spill")
#: CPU seconds each benchmark may use with --quick (it and the processes it starts). Without the optional
#: peers they used 1.0, 1.3, 4.5, 4.7 and 11.5 CPU s on 2 busy cores (the same as on idle ones); the
#: budgets leave room for the peers (NLTK's fit and parsers, lmplz's six runs, torch's import and its
#: training steps: up to about 40 CPU s in grammar, ngram and nn) and for a slower machine, and still
#: catch a benchmark whose quick sizes stopped being quick.
QUICK_BUDGET = {
    "baseline": 20.0, "constraint": 30.0, "evaluation": 20.0, "grammar": 60.0, "ngram": 70.0, "nn": 70.0,
    "em": 30.0, "scale": 45.0, "text": 45.0, "labels": 40.0, "deep": 120.0, "spill": 40.0,
}
QUICK_DEFAULT_BUDGET = 45.0
#: CPU seconds of the whole quick run (the quick run uses one core at a time: under 5 minutes on an idle one).
QUICK_TOTAL = 285.0
FULL_BUDGET = 1800.0
#: Full runs that need more: deep trains three models for 10 CPU-minutes each (tinyshakespeare) besides the rest.
FULL_BUDGETS = {"deep": 3600.0}
#: A benchmark is also stopped after WALL_FACTOR x its budget in wall seconds: a guard against one that
#: waits without using the CPU. Loose enough for a machine whose other work takes 5 of every 6 seconds.
WALL_FACTOR = 6.0
#: Seconds between two looks at a running benchmark's CPU time.
POLL = 0.25
#: Environment that gives one thread to the BLAS and OpenMP libraries of a process started with it.
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                  "BLIS_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1"}


@dataclasses.dataclass
class Outcome:
    name: str
    status: str  # "ok", "failed: ...", "over its budget ...", "absent ..."
    seconds: float  # wall seconds
    budget: float  # CPU seconds
    section: Section | None = None
    cpu_seconds: float = math.nan
    output: str = ""  # what the benchmark printed, kept when it failed


def discover() -> list[str]:
    """Benchmark names: every bench_*.py here, and the expected ones even when absent, sorted."""
    found = {p.stem[len("bench_"):] for p in HERE.glob("bench_*.py")}
    return sorted(found | set(EXPECTED))


def _child(name: str, quick: bool, out: str) -> int:
    """Run one benchmark in this (child) process and write its section, or its error, as JSON."""
    result: dict
    try:
        import importlib

        with one_thread_everywhere() if quick else contextlib.nullcontext():
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


@contextlib.contextmanager
def one_thread_everywhere() -> Iterator[None]:
    """One BLAS/OpenMP thread in this process (threadpoolctl, for the libraries already loaded) and in the
    processes it starts or the libraries it loads later (the environment variables they read at start)."""
    saved = {key: os.environ.get(key) for key in ONE_THREAD_ENV}
    os.environ.update(ONE_THREAD_ENV)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def session_cpu_seconds(session: int) -> float | None:
    """CPU seconds (user + system) used so far by the processes of ``session`` and the children they have
    waited for; ``None`` where ``/proc`` does not exist (not Linux)."""
    if not os.path.isdir("/proc/self"):
        return None
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()  # after "pid (command)": the command may hold spaces
        except (OSError, IndexError):  # the process ended meanwhile
            continue
        # fields[3] is the session; [11], [12] its own user and system time; [13], [14] its waited-for children's
        if int(fields[3]) == session:
            ticks += sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _reaped_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def supervise(cmd: list[str], budget: float, *, wall_limit: float, cwd: Path | None = None,
              env: dict | None = None, log=None, tick: Callable[[float], None] | None = None
              ) -> tuple[str | None, float, float]:
    """Run ``cmd`` in a session of its own and stop it, with everything it started, once it has used
    ``budget`` CPU seconds or ``wall_limit`` wall seconds.

    Returns ``(why it was stopped, or None when it ended by itself, CPU seconds, wall seconds)``.
    ``tick(cpu_seconds)`` is called at every look (every ``POLL`` seconds). Where the CPU time of a
    process tree cannot be read (no ``/proc``), the budget counts wall seconds.
    """
    reaped_before = _reaped_cpu_seconds()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)
    stopped, cpu = None, 0.0
    try:
        while True:
            try:
                proc.wait(timeout=POLL)
                break
            except subprocess.TimeoutExpired:
                pass
            wall = time.perf_counter() - start
            used = session_cpu_seconds(proc.pid)
            clock = "CPU"
            if used is None:
                used, clock = wall, "wall"
            cpu = max(cpu, used)
            if tick is not None:
                tick(cpu)
            if cpu > budget:
                stopped = f"over its budget: stopped after {cpu:.0f} {clock} s (budget {budget:.0f})"
            elif wall > wall_limit:
                stopped = f"stopped after {wall:.0f} wall s (limit {wall_limit:.0f}, {cpu:.0f} CPU s used)"
            if stopped:
                break
    finally:  # stopped, ended, or Ctrl-C here (the child has its own session, so Ctrl-C reaches only us)
        _kill_group(proc)
    cpu = max(cpu, _reaped_cpu_seconds() - reaped_before)
    return stopped, cpu, time.perf_counter() - start


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child's process group (it and what it started, even when it has ended), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # the group is empty already
        pass
    proc.wait()


def run_one(name: str, quick: bool, budget: float, tick: Callable[[float], None] | None = None) -> Outcome:
    """Run ``bench_<name>`` in a fresh interpreter, stopped once it has used ``budget`` CPU seconds."""
    if not (HERE / f"bench_{name}.py").exists():
        return Outcome(name, f"absent (benchmarks/bench_{name}.py not written yet)", 0.0, budget, cpu_seconds=0.0)
    fd, out = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", name, "--out", out] + (["--quick"] if quick else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    try:
        with tempfile.TemporaryFile(prefix=f"bench-{name}-", suffix=".log") as log:
            stopped, cpu, seconds = supervise(cmd, budget, wall_limit=WALL_FACTOR * budget, cwd=ROOT, env=env,
                                              log=log, tick=tick)
            log.seek(0)
            output = log.read().decode("utf-8", "replace")
        if stopped:
            return Outcome(name, stopped, seconds, budget, cpu_seconds=cpu, output=output)
        try:
            with open(out, encoding="utf-8") as f:
                result = json.load(f)
        except (OSError, ValueError):
            return Outcome(name, "failed: no result (the benchmark's process died)", seconds, budget,
                           cpu_seconds=cpu, output=output)
        if "error" in result:
            return Outcome(name, f"failed: {result['error']}", seconds, budget, cpu_seconds=cpu, output=output)
        return Outcome(name, "ok", seconds, budget, Section(**result["section"]), cpu_seconds=cpu)
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
        "a missing one gives a row saying it was skipped. Budgets are CPU seconds of each benchmark and of the "
        "processes it starts" + ("; this quick run gave every benchmark one BLAS/OpenMP thread" if "--quick" in
                                 command else "") + ".\n",
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
    rows = [[o.name, o.status, f"{o.cpu_seconds:.1f}", f"{o.seconds:.1f}", f"{o.budget:.0f}"] for o in outcomes]
    rows.append(["total", "", f"{sum(o.cpu_seconds for o in outcomes if o.cpu_seconds == o.cpu_seconds):.1f}",
                 f"{sum(o.seconds for o in outcomes):.1f}", ""])
    return table(["benchmark", "status", "CPU s", "wall s", "budget (CPU s)"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"small sizes and one BLAS thread; at most {QUICK_TOTAL:.0f} CPU seconds in all "
                             "(about a minute on 2 idle cores)")
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
    outcomes = run_all(chosen, args.quick)
    text = write_results(outcomes, command, names)
    atomic_write(RESULTS, lambda f: f.write(text), mode="w")
    print(_summary(outcomes))
    print(f"\nwrote {_shown(RESULTS)}")
    return 0 if all(o.status == "ok" or o.status.startswith("absent") for o in outcomes) else 1


def run_all(names: list[str], quick: bool) -> list[Outcome]:
    """Run the benchmarks one after the other, showing progress (a bar on a terminal, lines in a log)."""
    outcomes: list[Outcome] = []
    used = 0.0
    with Progress(total=len(names), desc="benchmarks", unit="benchmarks") as progress:
        for name in names:
            budget = FULL_BUDGETS.get(name, FULL_BUDGET)
            if quick:
                budget = max(5.0, min(QUICK_BUDGET.get(name, QUICK_DEFAULT_BUDGET), QUICK_TOTAL - used))
            progress.write(f"--- {name} (budget {budget:.0f} CPU s)")

            def tick(cpu: float, name: str = name, budget: float = budget) -> None:
                progress.update(0, running=name, cpu=f"{cpu:.0f}/{budget:.0f} s")

            outcome = run_one(name, quick, budget, tick=tick)
            outcomes.append(outcome)
            if outcome.cpu_seconds == outcome.cpu_seconds:
                used += outcome.cpu_seconds
            if outcome.section is not None:
                progress.write(outcome.section.body.strip() + "\n")
            elif outcome.output.strip():  # a failure: the end of what the benchmark printed says why
                progress.write("\n".join(outcome.output.rstrip().splitlines()[-20:]))
            progress.write(f"--- {name}: {outcome.status} ({outcome.cpu_seconds:.1f} CPU s, "
                           f"{outcome.seconds:.1f} wall s)\n")
            progress.update(1, done=name)
    return outcomes


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
