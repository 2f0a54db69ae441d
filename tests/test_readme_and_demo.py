"""The README's promises: its Python example runs, and the demo prints the four-family table, the same every run."""

from __future__ import annotations

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)  # it saves rnn.npz in the working directory
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "W_hh" in out and (tmp_path / "rnn.npz").exists()


def _demo(*args):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "scratchgen", "demo", "--quick", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def test_demo_prints_every_family_beside_the_floor_and_is_seeded(tmp_path):
    first = _demo("--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    for row in ("reference (floor)", "random: uniform", "random: unigram", "statistical:", "deep: RNN"):
        assert row in first.stdout, row
    assert "training" in first.stderr  # progress goes to stderr, the table to stdout
    assert (tmp_path / "report.json").exists() and (tmp_path / "rnn_curve.csv").exists()
    second = _demo()
    pointer = "See why, token by token"
    assert second.stdout.split(pointer)[0] == first.stdout.split(pointer)[0]  # seeded: the same tables and samples
    # The demo ends by pointing at one explain command on its own models (written with --out).
    command = f"scratchgen explain {tmp_path}/ngram.npz {tmp_path}/rnn.npz - --html {tmp_path}/explain.html"
    assert command in first.stdout
    assert "scratchgen demo --out models" in second.stdout.split(pointer)[1]
    # ... and that command runs on them
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    models = [str(tmp_path / "ngram.npz"), str(tmp_path / "rnn.npz")]
    explained = subprocess.run(
        [sys.executable, "-m", "scratchgen", "explain", *models, "-", "--html", str(tmp_path / "explain.html")],
        input="the kings that the dog sees sleep.\nthe kings that the dog sees sleeps.\n",
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert explained.returncode == 0, explained.stderr
    assert (tmp_path / "explain.html").exists() and explained.stdout.count("bits(2)-bits") == 2
    # Control: one grammar-constrained and one labelled example
    assert "Control 1: the 4-gram held to the grammar" in first.stdout and "P_model(L(G))" in first.stdout
    assert "Control 2: a labelled 3-gram" in first.stdout and "Bayes-optimal" in first.stdout


def test_demo_on_a_users_corpus(tmp_path):
    corpus = tmp_path / "mine.txt"
    corpus.write_text("\n".join(["the cat sat", "a dog ran", "我爱北京", "the bird sang"] * 30), encoding="utf-8")
    result = _demo("--corpus", str(corpus))
    assert result.returncode == 0, result.stderr
    assert "reference (floor)" not in result.stdout and "deep: RNN" in result.stdout
