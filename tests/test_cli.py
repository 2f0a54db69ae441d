"""The command line: every user error is one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

import pytest

from scratchgen.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*argv, input=None):
    """``python -m scratchgen`` in a child process, with this checkout's source first on the path."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "scratchgen", *map(str, argv)], capture_output=True, text=True,
                          env=env, input=input, timeout=300)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("the cat sat\nthe dog ran\n我爱北京\n", encoding="utf-8")
    return path


def test_train_generate_score_round_trip(tmp_path, corpus, capsys):
    model = tmp_path / "m.npz"
    assert main(["train", "random", "--kind", "uniform", "--level", "word", str(corpus), "-o", str(model)]) == 0
    test = tmp_path / "test.txt"
    test.write_text("the bird flew\n北京 欢迎 你\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["score", str(model), str(test), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # word types: the cat sat dog ran 我 爱 北 京 -> 9, + <unk> + </s> = 11 emittable tokens
    assert out["perplexity"] == pytest.approx(11, rel=1e-9)
    assert {"sequences", "tokens", "oov_tokens", "cross_entropy_nats", "bits_per_token", "perplexity"} <= set(out)
    # "the bird flew" + </s> = 4, "北 京 欢 迎 你" + </s> = 6; OOV: bird flew 欢 迎 你
    assert (out["sequences"], out["tokens"], out["oov_tokens"]) == (2, 10, 5)
    assert out["bits_per_token"] == pytest.approx(math.log2(11))
    assert main(["generate", str(model), "-n", "3", "--seed", "1", "--json"]) == 0
    samples = json.loads(capsys.readouterr().out)["samples"]
    assert len(samples) == 3
    assert main(["generate", str(model), "-n", "3", "--seed", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == samples


def test_generate_with_prompt_and_beam(tmp_path, corpus, capsys):
    model = tmp_path / "m.npz"
    assert main(["train", "random", str(corpus), "-o", str(model)]) == 0
    assert main(["generate", str(model), "--prompt", "th", "-n", "2", "--max-tokens", "5", "--seed", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("th") for line in lines)
    assert main(["generate", str(model), "--beam", "3", "-n", "2", "--max-tokens", "5"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["score", "{tmp}/missing.npz", "{corpus}"], "missing.npz"),
        (["train", "random", "{tmp}/missing.txt", "-o", "{tmp}/m.npz"], "missing.txt"),
        (["generate", "{model}", "--prompt", "xyz"], "'x'"),
        (["score", "{corpus}", "{corpus}"], "cannot load model"),
        (["train", "random", "{empty}", "-o", "{tmp}/m.npz"], "no non-empty"),
    ],
)
def test_user_errors_are_one_line(tmp_path, corpus, argv, message):
    model = tmp_path / "model.npz"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert main(["train", "random", str(corpus), "-o", str(model)]) == 0
    argv = [a.format(tmp=tmp_path, corpus=corpus, model=model, empty=empty) for a in argv]
    result = run(*argv)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv, option", [
    (["generate", "M", "--temperature", "-1"], "--temperature"),
    (["generate", "M", "-n", "0"], "-n"),
    (["generate", "M", "--top-p", "1.5"], "--top-p"),
    (["generate", "M", "--top-k", "x"], "--top-k"),
    (["generate", "M", "--beam", "0"], "--beam"),
    (["train", "random", "C", "-o", "M", "--k", "nan"], "--k"),
    (["score", "M", "C", "--chunk-size", "0"], "--chunk-size"),
])
def test_invalid_option_values_are_usage_errors(argv, option):
    result = run(*argv)
    assert result.returncode == 2, result.stderr
    assert option in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr


def test_usage_errors_exit_2_and_every_command_has_help():
    assert run("train", "random").returncode == 2
    assert run("frobnicate").returncode == 2
    for argv in (["--help"], ["train", "--help"], ["train", "random", "--help"], ["generate", "--help"],
                 ["score", "--help"], ["demo", "--help"]):
        result = run(*argv)
        assert result.returncode == 0 and "usage:" in result.stdout, argv


def test_python_dash_m_and_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("scratchgen ")


def test_beam_narrower_than_the_sample_default_and_beam_zero(tmp_path, corpus, capsys):
    model = tmp_path / "m.npz"
    assert main(["train", "random", str(corpus), "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["generate", str(model), "--beam", "3", "--max-tokens", "4"]) == 0  # -n defaults to 1 here
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert run("generate", str(model), "--beam", "0").returncode == 2  # refused, not silently sampled


def test_a_closed_pipe_is_not_an_error(tmp_path, corpus):
    model = tmp_path / "m.npz"
    assert main(["train", "random", str(corpus), "-o", str(model)]) == 0
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = f"{sys.executable} -m scratchgen generate {model} -n 20000 --seed 0 | head -1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stderr == ""


def test_a_range_without_an_upper_end_is_written_open():
    """--temperature refuses inf (not a finite number), so its range is [0, inf), not [0, inf]."""
    from scratchgen.cli.options import float_in, nonnegative_float

    with pytest.raises(argparse.ArgumentTypeError, match=r"must be in \[0, inf\), got -1$"):
        nonnegative_float("-1")
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be in \(-inf, 2\], got 3$"):
        float_in(high=2.0)("3")
    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
        nonnegative_float("inf")
