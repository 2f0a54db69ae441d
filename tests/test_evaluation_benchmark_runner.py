"""The benchmark runner (benchmarks/run.py): discovery, failures as rows, budgets, RESULTS.md whole."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from benchmarks import run as runner
from benchmarks.common import Section

ROOT = Path(__file__).resolve().parent.parent


def test_discover_lists_the_expected_benchmarks_even_when_absent():
    names = runner.discover()
    assert "baseline" in names and set(runner.EXPECTED) <= set(names)
    assert names == sorted(names)


def test_an_absent_benchmark_is_a_row_not_a_crash():
    outcome = runner.run_one("does_not_exist", quick=True, budget=10)
    assert outcome.status.startswith("absent") and outcome.section is None


def test_child_reports_errors_and_sections(tmp_path, monkeypatch):
    good = types.ModuleType("benchmarks.bench_good")
    good.run = lambda quick: Section(name="good", title="Good", body=f"quick={quick}", command="x")
    bad = types.ModuleType("benchmarks.bench_bad")

    def fail(quick):
        raise SystemExit("benchmark data /nowhere/names.txt not found")

    bad.run = fail
    monkeypatch.setitem(sys.modules, "benchmarks.bench_good", good)
    monkeypatch.setitem(sys.modules, "benchmarks.bench_bad", bad)
    out = tmp_path / "r.json"
    runner._child("good", True, str(out))
    assert json.loads(out.read_text())["section"]["body"] == "quick=True"
    runner._child("bad", False, str(out))
    assert "not found" in json.loads(out.read_text())["error"]


def test_a_benchmark_over_its_budget_is_killed():
    outcome = runner.run_one("baseline", quick=True, budget=0.05)
    assert outcome.status.startswith("timed out") and outcome.seconds < 5


def test_results_are_rewritten_whole_and_keep_sections_not_run(tmp_path, monkeypatch):
    results = tmp_path / "RESULTS.md"
    results.write_text("# old title\n\nstale text\n\n<!-- nn:start -->\n## RNN\n\nold nn table\n<!-- nn:end -->\n"
                       "\n<!-- baseline:start -->\n## old baseline\n<!-- baseline:end -->\n")
    monkeypatch.setattr(runner, "RESULTS", results)
    section = Section(name="baseline", title="Random generators", body="| a |\n|---|\n| 1 |", command="c")
    outcomes = [runner.Outcome("baseline", "ok", 1.5, 30, section),
                runner.Outcome("grammar", "failed: ValueError: boom", 0.7, 75)]
    text = runner.write_results(outcomes, "python -m benchmarks --quick", ["baseline", "grammar", "nn"])
    assert text.startswith("# Benchmark results") and "stale text" not in text and "old baseline" not in text
    assert "python -m benchmarks --quick" in text and "cores" in text  # the command and the machine
    assert "## Random generators" in text and "failed: ValueError: boom" in text
    assert "old nn table" in text  # not run this time: kept
    assert text.index("baseline:start") < text.index("grammar:start") < text.index("nn:start")


def test_unknown_only_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        runner.main(["--only", "nope"])
    assert e.value.code == 2 and "known:" in capsys.readouterr().err


def test_both_entry_points_run_from_the_repository_root(tmp_path):
    # `--help` exercises the import path of each entry point without running the benchmarks.
    for cmd in ([sys.executable, "-m", "benchmarks", "--help"], [sys.executable, "benchmarks/run.py", "--help"]):
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "--quick" in out.stdout and "--only" in out.stdout
