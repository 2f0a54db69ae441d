"""The n-gram commands ask OpenBLAS for one thread before NumPy is imported (cli/blas.py); every other command,
a user's own setting and an already imported NumPy are left alone; and the figures printed do not change."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scratchgen.cli import main
from scratchgen.cli.blas import THREAD_VARIABLES, model_class_name, one_blas_thread_if_unused
from scratchgen.cli.main import build_parser

TRAIN = "the cat sat on the mat\nthe dog ran\nthe cat ran\n"


@pytest.fixture
def models(tmp_path):
    """An n-gram model and a model of another family (the unigram baseline), saved."""
    corpus = tmp_path / "train.txt"
    corpus.write_text(TRAIN, encoding="utf-8")
    out = {"ngram": tmp_path / "ngram.npz", "random": tmp_path / "random.npz", "corpus": corpus}
    assert main(["train", "ngram", "--order", "3", str(corpus), "-o", str(out["ngram"])]) == 0
    assert main(["train", "random", "--kind", "unigram", str(corpus), "-o", str(out["random"])]) == 0
    return out


def _decide(argv, environ=None):
    environ = {} if environ is None else environ
    return one_blas_thread_if_unused(build_parser().parse_args(argv), environ, numpy_imported=False), environ


def test_model_class_name_is_read_from_the_header(models, tmp_path):
    assert model_class_name(str(models["ngram"])) == "NGramModel"
    assert model_class_name(str(models["random"])) == "UnigramModel"
    assert model_class_name(str(tmp_path / "missing.npz")) is None
    assert model_class_name(str(models["corpus"])) is None  # not an archive
    assert model_class_name(str(tmp_path)) is None  # a directory


def test_only_the_ngram_commands_get_one_thread(models):
    ngram, other, corpus = str(models["ngram"]), str(models["random"]), str(models["corpus"])
    assert _decide(["score", ngram, corpus]) == (True, {"OPENBLAS_NUM_THREADS": "1"})
    assert _decide(["generate", ngram])[0]
    assert _decide(["train", "ngram", corpus, "-o", "m.npz"])[0]
    assert _decide(["score", other, corpus]) == (False, {})
    assert not _decide(["train", "rnn", corpus, "-o", "m.npz"])[0]
    assert not _decide(["explain", ngram, other, "the cat"])[0]  # one of the two models is not an n-gram
    assert not _decide(["score", "missing.npz", corpus])[0]  # the command reports the missing file


@pytest.mark.parametrize("variable", THREAD_VARIABLES)
def test_a_users_setting_is_kept(models, variable):
    assert _decide(["score", str(models["ngram"]), str(models["corpus"])], {variable: "2"}) == (False, {variable: "2"})


def test_nothing_changes_once_numpy_is_imported(models):
    """The tests run main() in-process, NumPy loaded: the environment of the test process stays untouched."""
    args = build_parser().parse_args(["score", str(models["ngram"]), str(models["corpus"])])
    environ: dict = {}
    assert not one_blas_thread_if_unused(args, environ)  # numpy_imported from sys.modules: it is
    assert environ == {}


def test_the_command_runs_with_one_openblas_thread_and_prints_the_same(models, capsys):
    """End to end in a fresh process: OpenBLAS reports one thread (when it is NumPy's BLAS), and the
    figures are those of the command run in-process."""
    assert main(["score", str(models["ngram"]), str(models["corpus"]), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    code = (
        "import contextlib, io, json, sys\n"
        "from scratchgen.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    main(['score', {str(models['ngram'])!r}, {str(models['corpus'])!r}, '--json'])\n"
        "from threadpoolctl import threadpool_info\n"
        "threads = [p['num_threads'] for p in threadpool_info() if p.get('internal_api') == 'openblas']\n"
        "import os\n"
        "print(json.dumps([json.loads(out.getvalue()), threads, os.environ.get('OPENBLAS_NUM_THREADS')]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    score, threads, variable = json.loads(done.stdout.strip().splitlines()[-1])
    assert score == expected
    assert variable == "1"
    assert all(n == 1 for n in threads)  # empty when NumPy's BLAS is not OpenBLAS: then only the variable is set
