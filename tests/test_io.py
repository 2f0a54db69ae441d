"""Model files: atomic, pickle-free, and every damaged file refused with one clear error."""

from __future__ import annotations

import json
import os
import re
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
    with pytest.raises(ModelFileError, match="CRC-32"):
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



#: Damaged .npy headers that NumPy would read only after a warning, each found by a fuzz test:
#: - an invalid escape (the key 'descr' spelt 'de\\:r', the same length): NumPy parses a header with
#:   ast.literal_eval, and Python warned of the escape (a SyntaxWarning, shown by default from Python 3.12);
#: - a header that is no Python literal (a shape (n,) spelt (nL,), as Python 2 wrote a long; the slow fuzz
#:   test): NumPy retried it as Python 2's syntax and warned (a UserWarning);
#: - a descr spelt with NumPy's deprecated alias 'a' (one byte changed: found by trying every value of every
#:   header byte, after this file's fuzz test once reported two warnings): NumPy warned (a DeprecationWarning)
#:   and read it.
HEADER_DAMAGES = {
    "backslash": lambda header: header.replace(b"'descr'", b"'de\\:r'", 1),
    "python 2": lambda header: re.sub(rb"'shape': \((\d+),", rb"'shape': (\1L,", header, count=1),
    "alias": lambda header: re.sub(rb"'descr': '[<>|=]\w(\d+)'", rb"'descr': '|a\1'", header, count=1),
}


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("damage", sorted(HEADER_DAMAGES))
def test_a_damaged_npy_header_is_refused_without_a_warning(tmp_path, good_bytes, compression, damage):
    """Such a header is refused as damaged before NumPy parses it: the error alone, naming the member."""
    import warnings

    members = _members(_write(tmp_path / "good.npz", good_bytes))
    damaged = [(n, HEADER_DAMAGES[damage](d) if n == "logprobs.npy" else d) for n, d in members]
    assert damaged != members
    path = _zip(tmp_path / "damaged.npz", damaged, compression)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ModelFileError, match="damaged.npz.*the .npy header of 'logprobs.npy' is not one of a"):
            scratchgen.load(path)
    assert [str(w.message) for w in caught] == []


def test_an_npy_header_claiming_gigabytes_is_refused_before_reading_it(tmp_path):
    """The header is read before NumPy parses it: its length field (uint32 from version 2.0) is checked first, as
    NumPy's readers check it, so a damaged one cannot make the reader ask for a 4 GiB buffer."""
    import io
    import tracemalloc

    from scratchgen.io import read_archive

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.arange(3.0), version=(2, 0))
    member = bytearray(buffer.getvalue())
    member[8:12] = (2**32 - 1).to_bytes(4, "little")  # after the magic string and the version bytes
    path = _zip(tmp_path / "long.npz", [HEADER, ("x.npy", bytes(member))])
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="long.npz.*the .npy header of 'x.npy' claims 4294967295 bytes"):
            read_archive(path)
        assert tracemalloc.get_traced_memory()[1] < 2**20
    finally:
        tracemalloc.stop()


# --- the reader parses each member once: what it checks by itself --------------------------------------


def _zip(path, members, compression=zipfile.ZIP_STORED):
    """An archive of ``members`` (name -> bytes) in this order, written by zipfile itself."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, which one case wants
        with zipfile.ZipFile(path, "w", compression=compression) as z:
            for name, data in members:
                z.writestr(name, data)
    return path


def _npy(array):
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


HEADER = ("__header__.npy", _npy(np.frombuffer(b'{"format": "x"}', dtype=np.uint8)))


def test_fortran_order_big_endian_and_empty_arrays_read_as_numpy_reads_them(tmp_path):
    from scratchgen.io import read_archive

    arrays = {
        "f": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "be": np.arange(5, dtype=">i4"),
        "empty": np.zeros((0, 3)),
    }
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        path = _zip(tmp_path / "a.npz", [HEADER] + [(k + ".npy", _npy(v)) for k, v in arrays.items()], compression)
        header, read = read_archive(path)
        assert header == {"format": "x"} and read.keys() == arrays.keys()
        for k, v in arrays.items():
            assert read[k].dtype == v.dtype and read[k].shape == v.shape and np.array_equal(read[k], v)
            assert read[k].flags.writeable


def test_a_compressed_model_file_loads_and_its_crc_is_checked(tmp_path, good_bytes):
    """scratchgen writes stored members; a file zipped again with deflate still loads (through zipfile)."""
    members = _members(_write(tmp_path / "good.npz", good_bytes))
    path = _zip(tmp_path / "deflated.npz", members, zipfile.ZIP_DEFLATED)
    np.testing.assert_array_equal(scratchgen.load(path).logprobs_, MODEL.logprobs_)
    flipped = [(n, d[:-1] + bytes([d[-1] ^ 1]) if n == "logprobs.npy" else d) for n, d in members]
    _zip(path, flipped, zipfile.ZIP_DEFLATED)
    _with_crc_of(path, "logprobs.npy", dict(members)["logprobs.npy"])  # the CRC of the data before the flip
    with pytest.raises(ModelFileError, match="deflated.npz.*CRC"):
        scratchgen.load(path)


def _write(path, data):
    path.write_bytes(data)
    return path


def _members(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def _with_crc_of(path, name, original):
    """``path`` with the CRC-32 of member ``name`` set to that of ``original`` (both headers)."""
    import zlib

    blob = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name)
    old, new = info.CRC.to_bytes(4, "little"), zlib.crc32(original).to_bytes(4, "little")
    assert blob.count(old) == 2
    path.write_bytes(bytes(blob).replace(old, new))
    return path


def _rename_local(path, old, new):
    """``path`` with the name in ``old``'s local header (the first occurrence of the name) changed to ``new``."""
    return _write(path, path.read_bytes().replace(old, new, 1))


def _grow_central_sizes(path, name, by):
    """``path`` with the central directory's two sizes of ``name`` grown by ``by`` bytes."""
    blob = bytearray(path.read_bytes())
    record = blob.find(b"PK\x01\x02")  # the first record of the central directory; then the one of name
    while blob[record + 46 : record + 46 + len(name)] != name.encode():
        record = blob.find(b"PK\x01\x02", record + 4)
    for at in (record + 20, record + 24):
        blob[at : at + 4] = (int.from_bytes(blob[at : at + 4], "little") + by).to_bytes(4, "little")
    path.write_bytes(bytes(blob))
    return path


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: _zip(p, [HEADER, ("a.npy", _npy(np.zeros(3)) + b"x")]), "'a.npy' is not one whole .npy array"),
        (lambda p: _zip(p, [HEADER, ("a.npy", _npy(np.zeros(3))), ("a.npy", _npy(np.ones(3)))]),
         "two arrays named 'a'"),
        (lambda p: _zip(p, [HEADER, ("a.npy", _npy(np.zeros(3))[:-8])]), "'a.npy' is not one whole"),
        (lambda p: _zip(p, [HEADER, ("a.npy", b"not an array")]), "the archive is damaged"),
        (lambda p: _grow_central_sizes(_zip(p, [HEADER, ("a.npy", _npy(np.zeros(3)))]), "a.npy", 10**6),
         "'a.npy' runs past the end of the file"),
        (lambda p: _rename_local(_zip(p, [HEADER, ("a.npy", _npy(np.zeros(3)))]), b"a.npy", b"b.npy"),
         "its local header 'b.npy'"),
    ],
    ids=["trailing bytes", "a name twice", "short data", "not npy", "past the end", "local name differs"],
)
def test_members_that_do_not_add_up_are_refused(tmp_path, make, match):
    from scratchgen.io import read_archive

    path = make(tmp_path / "bad.npz")
    with pytest.raises(ModelFileError, match=match) as info:
        read_archive(path)
    assert "bad.npz" in str(info.value)


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
