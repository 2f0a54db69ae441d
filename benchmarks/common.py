"""What every benchmark shares: where the data is, timing, peak memory, the machine, RESULTS.md.

Each benchmark module has ``run(quick: bool) -> Section`` and can run alone
(``python -m benchmarks.bench_ngram``); ``python -m benchmarks`` runs them all. A section is written
into ``benchmarks/RESULTS.md`` between its own markers, so benchmarks rewrite only their own part.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

from scratchgen.io import atomic_write

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SHARED_DATA = Path(os.environ.get("SCRATCHGEN_DATA", HERE.parent.parent / "shared" / "data"))


def data_file(name: str) -> Path:
    """A file of ../shared/data; a clear error when the corpora are not beside the checkout."""
    path = SHARED_DATA / name
    if not path.exists():
        raise SystemExit(f"benchmark data {path} not found (set SCRATCHGEN_DATA to the folder holding {name})")
    return path


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (wall clock, perf_counter)."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def best_of(fn, repeat: int = 3) -> float:
    """The fastest of ``repeat`` wall-clock timings of ``fn()`` (the least disturbed run)."""
    times = []
    for _ in range(repeat):
        with Timer() as t:
            fn()
        times.append(t.seconds)
    return min(times)


def best_cpu(fn, repeat: int = 3) -> float:
    """The fewest CPU seconds of this process (``time.process_time``) that one of ``repeat`` calls of ``fn()`` took."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: Defined before the code that :func:`run_isolated` runs: ``own_peak_mib()``, the peak resident memory of that
#: fresh interpreter alone. Not ``ru_maxrss``: a child started from this process reports at least this
#: process's peak in it, because Linux carries the high-water mark of the memory it leaves over ``exec``
#: (and subprocess's vfork leaves this process's); a benchmark that holds 400 MiB would measure every child at
#: 400 MiB or more. ``VmHWM`` of /proc/self/status is the high-water mark of the memory the child's ``exec``
#: created, so its own. (Elsewhere than Linux, ``ru_maxrss``: KiB, bytes on macOS.)
OWN_PEAK = """
def own_peak_mib():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource, sys
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
"""


def run_isolated(code: str, timeout: float = 600) -> str:
    """Run Python ``code`` in a fresh interpreter (own imports); its stdout. The code can call
    ``own_peak_mib()`` (:data:`OWN_PEAK`) for that interpreter's own peak resident memory (MiB)."""
    out = subprocess.run([sys.executable, "-c", OWN_PEAK + code], capture_output=True, text=True,
                         timeout=timeout, cwd=HERE.parent)
    if out.returncode != 0:
        raise RuntimeError(f"isolated benchmark failed:\n{out.stderr[-2000:]}")
    return out.stdout


def _package_of(filepath: str) -> str:
    """The installed package a shared library came with: the folder under site-packages that holds it
    (``numpy.libs`` is NumPy's, ``torch/lib`` torch's), or "the system" for one outside any."""
    parts = Path(filepath).parts
    for i, part in enumerate(parts[:-1]):
        if part in ("site-packages", "dist-packages"):
            return parts[i + 1].removesuffix(".libs")
    return "the system"


def machine(pools: list[dict] | None = None) -> str:
    """Cores, CPU, Python, NumPy and its BLAS, in one line.

    threadpoolctl lists every thread pool loaded in the process (``pools``, default ``threadpool_info()``):
    NumPy's BLAS, but also a peer's (torch brings its own OpenMP, and may bring an OpenBLAS of its own). The
    line names NumPy's BLAS as NumPy's and the others by the package each came with, so two OpenBLAS builds
    are never read as one."""
    pools = threadpool_info() if pools is None else pools

    def describe(pool: dict) -> str:
        version = f" {pool['version']}" if pool.get("version") else ""
        return f"{pool['internal_api']}{version} ({pool.get('num_threads')} threads)"

    numpy_blas = [describe(p) for p in pools if _package_of(p.get("filepath", "")) == "numpy"]
    others = [f"{_package_of(p.get('filepath', ''))}'s {describe(p)}" for p in pools
              if _package_of(p.get("filepath", "")) != "numpy"]
    blas = f"with {', '.join(numpy_blas)}" if numpy_blas else "(no BLAS of its own that threadpoolctl knows)"
    if others:
        blas += f"; other thread pools loaded: {', '.join(others)}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}, NumPy {np.__version__} {blas}"


def module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@dataclasses.dataclass
class Section:
    """One benchmark's part of RESULTS.md: a title, a markdown body and the command that made it."""

    name: str
    title: str
    body: str
    command: str

    def markdown(self) -> str:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return (f"## {self.title}\n\n{stamp}; `{self.command}`; {machine()}.\n\n{self.body.strip()}\n")


def table(header: list[str], rows: list[list[object]]) -> str:
    """A markdown table."""
    def cell(v: object) -> str:
        if isinstance(v, float):
            if v != v:
                return "n/a"
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(section: Section) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md; other sections stay as they are."""
    start, end = f"<!-- {section.name}:start -->", f"<!-- {section.name}:end -->"
    block = f"{start}\n{section.markdown()}{end}\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    atomic_write(RESULTS, lambda f: f.write(text), mode="w")  # never half a RESULTS.md
