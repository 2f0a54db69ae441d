"""Model files: atomic, pickle-free, and every damaged file refused with one clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scratchgen
from scratchgen import ModelFileError, UnigramModel
from scratchgen.errors import OutputError
from scratchgen.io import atomic_write

MODEL = UnigramModel(k=0.5, tokenizer=scratchgen.Tokenizer("word")).fit(["the cat sat", "我 爱 你"])


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "good.npz"
    MODEL.save(path)
    return path.read_bytes()


def test_round_trip_keeps_everything(tmp_path):
    path = tmp_path / "m.npz"
    MODEL.save(path)
    loaded = scratchgen.load(path)
    assert loaded.get_params() == {"k": 0.5, "min_count": 1}
    assert loaded.tokenizer == scratchgen.Tokenizer("word")
    np.testing.assert_array_equal(loaded.logprobs_, MODEL.logprobs_)
    assert [f for f in os.listdir(tmp_path)] == ["m.npz"]  # no temporary file left behind


def test_file_is_readable_without_pickle(tmp_path):
    path = tmp_path / "m.npz"
    MODEL.save(path)
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(z["__header__"].tobytes())
    assert header["format"] == "scratchgen-model" and header["class"] == "UnigramModel"
    assert header["vocab"] == MODEL.vocab_.to_list()


def test_interrupted_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    MODEL.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process is interrupted in the middle of writing

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        UnigramModel().fit(["xyz"]).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_atomic_write_into_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        atomic_write(tmp_path / "no" / "such" / "file", lambda f: f.write(b"x"))


def _npz(tmp_path, header=None, **arrays):
    path = tmp_path / "x.npz"
    if header is not None:
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: _npz(p, logprobs=np.zeros(3)), "no scratchgen header"),
        (lambda p: _npz(p, header={"format": "other"}), "does not say"),
        (lambda p: _npz(p, header={"format": "scratchgen-model", "version": 99}), "version 99"),
        (lambda p: _npz(p, header={"format": "scratchgen-model", "version": 1, "class": "Nope", "params": {},
                                   "vocab": []}), "Nope"),
        (lambda p: _npz(p, header={"format": "scratchgen-model", "version": 1, "class": "UnigramModel",
                                   "params": {}, "vocab": ["a"]}, logprobs=np.zeros(2)), "shape"),
        (lambda p: _npz(p, header={"format": "scratchgen-model", "version": 1, "class": "UnigramModel",
                                   "params": {"bogus": 1}, "vocab": []}), "inconsistent"),
    ],
)
def test_foreign_and_inconsistent_files(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(ModelFileError, match=match) as info:
        scratchgen.load(path)
    assert str(path) in str(info.value)


def test_pickled_object_arrays_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __header__=np.array([{"format": "scratchgen-model"}], dtype=object))
    with pytest.raises(ModelFileError):
        scratchgen.load(path)


def test_truncated_file(tmp_path, good_bytes):
    for cut in (0, 10, len(good_bytes) // 2, len(good_bytes) - 1):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(good_bytes[:cut])
        with pytest.raises(ModelFileError, match=f"cut{cut}.npz"):
            scratchgen.load(path)


def test_directory_and_plain_npy(tmp_path):
    with pytest.raises(ModelFileError, match="directory"):
        scratchgen.load(tmp_path)
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match="single .npy"):
        scratchgen.load(tmp_path / "a.npy")


@given(data=st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mutated_and_random_bytes_give_only_model_file_errors(tmp_path, good_bytes, data):
    """Fuzzing: random bytes, or a good file with bytes flipped, cut or inserted."""
    kind = data.draw(st.sampled_from(["random", "flip", "cut", "insert"]))
    blob = bytearray(good_bytes)
    if kind == "random":
        blob = bytearray(data.draw(st.binary(max_size=2000)))
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= data.draw(st.integers(1, 255))
    elif kind == "cut":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    else:
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i] = data.draw(st.binary(min_size=1, max_size=20))
    path = tmp_path / "fuzz.npz"
    path.write_bytes(bytes(blob))
    try:
        model = scratchgen.load(path)
    except ModelFileError:
        return
    # A few flips land where they change nothing that matters (zip padding, a CRC-free field...):
    # then the file must still be a working model.
    assert isinstance(model, scratchgen.LanguageModel)
    model.logprob("the cat")


def test_zip_with_bad_crc_is_refused(tmp_path, good_bytes):
    path = tmp_path / "crc.npz"
    path.write_bytes(good_bytes)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("logprobs.npy")
    blob = bytearray(good_bytes)
    data_start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    blob[data_start + info.compress_size - 1] ^= 0xFF  # last byte of the array's data
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelFileError):
        scratchgen.load(path)


def test_zip_needing_a_newer_zip_version_is_refused(tmp_path, good_bytes):
    """Found by the fuzz test: zipfile raises NotImplementedError for a 'version needed' it lacks."""
    blob = bytearray(good_bytes)
    central = blob.find(b"PK\x01\x02")  # the first central directory record
    blob[central + 6] = 109  # "version needed to extract" = 10.9
    path = tmp_path / "v.npz"
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelFileError, match="v.npz"):
        scratchgen.load(path)


# --- the registry: one-way imports, built-in classes found on demand (issue 10) ---------------------


def _scratchgen_imports(module: str) -> set[str]:
    """The scratchgen modules that ``scratchgen/<module>.py`` imports anywhere (function bodies included)."""
    import ast
    import pathlib

    tree = ast.parse((pathlib.Path(scratchgen.__file__).parent / f"{module}.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names.add(node.module or "")
            names.update(a.name for a in node.names if node.module is None)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scratchgen"):
            names.add(node.module.removeprefix("scratchgen").lstrip("."))
    return names


def test_io_and_model_import_each_other_in_one_direction_only():
    """model.py uses io (to save); io.py finds classes through the registry, never through model.py."""
    assert "io" in _scratchgen_imports("model")
    assert "model" not in _scratchgen_imports("io") and "registry" in _scratchgen_imports("io")
    assert _scratchgen_imports("registry") <= {"errors", "model"}  # model for annotations only
    from scratchgen import registry

    assert "model" not in vars(registry)  # the annotation import is for type checkers, not run


def test_import_scratchgen_io_alone_loads_every_builtin_class(tmp_path):
    """A fresh process imports scratchgen.io and nothing else, and loads a file of every class; before
    a load, no family beyond the baselines is imported (the registry does not fill itself on import)."""
    from cases_all import unfitted

    from scratchgen.registry import BUILTIN_MODELS

    paths = {}
    for name in BUILTIN_MODELS:
        paths[name] = str(tmp_path / f"{name}.npz")
        unfitted(name).fit([["a", "b"], ["b", "a"], ["a"]]).save(paths[name])
    code = textwrap.dedent(f"""
        import sys
        import scratchgen.io
        families = ("scratchgen.grammar", "scratchgen.ngram", "scratchgen.nn")
        print(sorted(m for m in sys.modules if m.startswith(families)))
        for name, path in {paths!r}.items():
            print(name, type(scratchgen.io.load(path)).__name__)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(scratchgen.__file__))).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1:] == [f"{name} {name}" for name in BUILTIN_MODELS]


def test_the_registry_lists_every_builtin_class_and_names_an_unknown_one():
    from scratchgen.registry import BUILTIN_MODELS, MODEL_REGISTRY, model_class

    assert set(BUILTIN_MODELS) <= set(MODEL_REGISTRY) and len(MODEL_REGISTRY) == len(set(MODEL_REGISTRY))
    for name in BUILTIN_MODELS:
        assert model_class(name).__name__ == name and name in MODEL_REGISTRY
    with pytest.raises(scratchgen.ScratchgenError, match="no model class named 'Nope'.*NGramModel"):
        model_class("Nope")
    with pytest.raises(KeyError):
        MODEL_REGISTRY["Nope"]


def test_a_model_class_of_ones_own_is_loadable_once_registered(tmp_path, monkeypatch):
    from scratchgen import registry
    from scratchgen.baseline import UniformModel
    from scratchgen.registry import MODEL_REGISTRY, register_model

    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))  # forgotten after this test

    @register_model
    class MyUniformModel(UniformModel):
        """A user's model: registered by the decorator, loadable like a built-in one."""

    path = tmp_path / "mine.npz"
    MyUniformModel().fit(["ab"]).save(path)
    assert "MyUniformModel" in MODEL_REGISTRY
    assert type(scratchgen.load(path)) is MyUniformModel
