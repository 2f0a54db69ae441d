"""Saving and loading models: one ``.npz`` file, no pickle, written atomically.

A model file is a NumPy ``.npz`` archive holding

- ``__header__``: a uint8 array of UTF-8 JSON: ``{"format": "scratchgen-model", "version": 1,
  "class": ..., "params": ..., "tokenizer": ..., "vocab": [...], "state": ...}``;
- the model's arrays, under the names its ``_save_state`` chose.

:func:`write_archive` and :func:`read_archive` are the one writer and reader of this ``.npz`` +
JSON-header layout, for model files and training checkpoints alike. It is read without pickle (each member's
``.npy`` header parsed once, an array of Python objects refused, the data read straight into its array and
CRC-checked), so loading a file never runs code. It is written to a temporary file in the same
directory and renamed over the target (``os.replace`` is atomic), so an interrupted save leaves the old file or
the new one, never half of one. Anything that is not a whole, current scratchgen model raises
:class:`~scratchgen.errors.ModelFileError` naming the file; every array is checked against its class's
schema (:mod:`scratchgen.schema`) before use. The output guard (:func:`check_output`,
:func:`protected_inputs`) stands in front of every writer.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Callable, Protocol

import numpy as np

from .errors import ModelFileError, OutputError, ScratchgenError
from .registry import model_class
from .schema import ArraySpec, check_array, validate_arrays
from .text import Tokenizer, Vocabulary

__all__ = [
    "Column",
    "save_model",
    "write_model",
    "load",
    "write_archive",
    "read_archive",
    "atomic_write",
    "check_output",
    "protected_inputs",
    "ArraySpec",
    "validate_arrays",
    "FORMAT",
    "VERSION",
]

FORMAT = "scratchgen-model"
VERSION = 1
HEADER_KEY = "__header__"


# --- the output guard: every writer goes through atomic_write ------------------------------------------

#: Files this process must not replace (the inputs of the running command), as (device, inode).
_PROTECTED: contextvars.ContextVar[tuple[tuple[str, tuple[int, int]], ...]] = contextvars.ContextVar(
    "scratchgen_protected_inputs", default=()
)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


@contextlib.contextmanager
def protected_inputs(paths: Iterable[str | os.PathLike | None]) -> Iterator[None]:
    """Within this block no writer may replace any of ``paths`` (the inputs of a command).

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); corpus = os.path.join(d, "corpus.txt")
    >>> _ = open(corpus, "w").write("abc")
    >>> with protected_inputs([corpus]):
    ...     atomic_write(corpus, lambda f: f.write(b"model"))
    Traceback (most recent call last):
    ...
    scratchgen.errors.OutputError: refusing to write ...corpus.txt': it is also an input of this command ...
    """
    entries = []
    for p in paths:
        if p is None or p == "-":
            continue
        ident = _identity(os.fspath(p))
        if ident is not None:
            entries.append((os.fspath(p), ident))
    token = _PROTECTED.set(_PROTECTED.get() + tuple(entries))
    try:
        yield
    finally:
        _PROTECTED.reset(token)


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = ()) -> str:
    """Refuse an output that would lose something; return the path as a str.

    Refused: a path that is the same file as one of ``inputs`` or of the :func:`protected_inputs`
    (compared with ``os.path.samefile``, so links and ``./x`` count), a directory, a read-only file
    (no write bit set: root could replace it, but a read-only file says "keep me"), and a path
    whose folder does not exist.
    """
    name = os.fspath(path)
    if name == "":
        raise OutputError("the output path is empty")
    ident = _identity(name)
    if ident is not None:
        for other in list(inputs) + [p for p, _ in _PROTECTED.get()]:
            if other is not None and _identity(os.fspath(other)) == ident:
                raise OutputError(
                    f"refusing to write {name!r}: it is also an input of this command "
                    f"({os.fspath(other)!r}); choose another output path"
                )
        st = os.stat(name)
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot write {name!r}: it is a directory")
        if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise OutputError(f"refusing to replace {name!r}: the file is read-only")
    directory = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(directory):
        raise OutputError(f"cannot write {name!r}: the folder {directory!r} does not exist")
    return name


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def atomic_write(path, write: Callable[[Any], None], mode: str = "wb", inputs: Iterable[Any] = ()) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it to ``path``.

    The output guard (:func:`check_output`) runs first; the new file gets the mode the umask gives
    (0644 under umask 022), as ``open`` would. On any error the temporary file is removed and
    ``path`` is untouched.
    """
    name = check_output(path, inputs)
    directory = os.path.dirname(os.path.abspath(name))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(name), dir=directory)
    except OSError as e:
        raise OutputError(
            f"cannot write {name!r}: {(e.strerror or str(e)).lower()} (in the folder {directory!r})"
        ) from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, ScratchgenError):
            raise OutputError(f"cannot write {name!r}: {(e.strerror or str(e)).lower()}") from None
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a model header")


class Column(Protocol):
    """An array too big to hold, read a slice at a time: what :func:`write_archive` takes besides arrays (e.g.
    the column files of :mod:`scratchgen.ngram.external`)."""

    dtype: np.dtype
    length: int

    def read(self, start: int, stop: int) -> np.ndarray: ...


def _is_column(value: Any) -> bool:
    return not isinstance(value, np.ndarray) and hasattr(value, "read") and hasattr(value, "length")


def _write_npz(f, payload: Mapping[str, Any], block: int, check: Callable[[str, np.ndarray], None] | None) -> None:
    """The archive ``np.savez`` writes, byte for byte (an uncompressed zip with Zip64 forced, members in order,
    each a ``.npy``), with :class:`Column` members written a block of ``block`` values at a time: the header
    of shape (length,), then the data as it is read. ``check(name, values)`` sees each block (with the last
    value of the one before, so that an order can be checked across blocks) before it is written."""
    import zipfile

    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in payload.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as member:
                if not _is_column(value):
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
                    continue
                dtype = np.dtype(value.dtype)
                descr = np.lib.format.dtype_to_descr(dtype)
                header = {"descr": descr, "fortran_order": False, "shape": (value.length,)}
                np.lib.format.write_array_header_1_0(member, header)  # the version write_array picks for 1-d
                last = np.zeros(0, dtype)
                for start in range(0, value.length, block):
                    values = np.ascontiguousarray(value.read(start, start + block), dtype=dtype)
                    if check is not None:
                        check(key, np.concatenate([last, values]))
                    member.write(values.view(np.uint8).data)  # the bytes, not a copy
                    last = values[-1:]


def write_archive(
    path,
    header: dict,
    arrays: Mapping[str, Any],
    block: int = 1 << 20,
    check: Callable[[str, np.ndarray], None] | None = None,
) -> None:
    """Write one ``.npz``: ``header`` as UTF-8 JSON under ``__header__``, then ``arrays``; atomically.

    The one writer of model files and checkpoints alike (:func:`atomic_write`: a temporary file,
    then a rename, so a crash leaves the old file or the new one). Nothing is pickled. The file is the one
    ``np.savez`` writes. A value may be a :class:`Column` instead of an array: it is read and written
    ``block`` values at a time (so a model bigger than memory is written from files), and ``check`` (see
    :func:`_write_npz`) may refuse a block, which leaves no file behind.
    """
    if HEADER_KEY in arrays:
        raise ScratchgenError(f"array name {HEADER_KEY!r} is reserved")
    blob = json.dumps(header, default=_json_default, ensure_ascii=False, allow_nan=True).encode("utf-8")
    # Any: NumPy's stubs let a ** mapping fill savez's keyword allow_pickle (a bool); these keys name arrays
    payload: dict[str, Any] = {HEADER_KEY: np.frombuffer(blob, dtype=np.uint8), **arrays}
    if any(_is_column(value) for value in arrays.values()):
        atomic_write(path, lambda f: _write_npz(f, payload, max(int(block), 1), check))
    else:
        atomic_write(path, lambda f: np.savez(f, **payload))


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` (one ``.npz`` file); see the module docstring for the layout.

    The arrays are checked against the class's schema first, so a model with NaN or inf weights is
    never written: it raises :class:`ModelFileError` and any old file at ``path`` stays.
    """
    extra, arrays = model._save_state()
    write_model(model, path, extra, arrays)


def write_model(model, path, extra: dict, arrays: Mapping[str, Any], block: int = 1 << 20) -> None:
    """:func:`save_model` with the state given: ``extra`` (JSON-able) and ``arrays`` by name, in the order
    of the file, each an array or a :class:`Column` too big to hold (written ``block`` values at a time).

    Whole arrays are checked against the class's schema before anything is written; a column's blocks as
    they are written, and a fault then removes the unfinished file: either way nothing is left at ``path``
    but its old file. The file is byte for byte the one :func:`save_model` writes from the same arrays in
    memory.
    """
    vocab = model.fitted_vocab()
    schema = model._array_schema()
    check = None
    if schema is not None:
        columns = [name for name, value in arrays.items() if _is_column(value)]
        whole = {name: value for name, value in arrays.items() if name not in columns}
        validate_arrays(type(model).__name__, whole, {k: v for k, v in schema.items() if k not in columns}, saving=True)
        unexpected = sorted(set(columns) - set(schema))
        if unexpected:
            raise ModelFileError(f"cannot save this {type(model).__name__}: unexpected array {unexpected[0]}")

        def check(name: str, values: np.ndarray) -> None:
            problem = check_array(name, values, schema[name])
            if problem:
                raise ModelFileError(f"cannot save this {type(model).__name__}: {problem}")

    header = {
        "format": FORMAT,
        "version": VERSION,
        "class": type(model).__name__,
        "params": model.get_params(),
        "tokenizer": model.tokenizer.to_dict() if model.tokenizer is not None else None,
        "vocab": vocab.to_list(),
        "labels": model.labels_.to_dict() if getattr(model, "labels_", None) is not None else None,
        "state": extra,
    }
    write_archive(path, header, arrays, block, check)


def _read_arrays(
    f, zf, bad: Callable[[str], ModelFileError], what: str = "model", mmap: bool = False
) -> dict[str, np.ndarray]:
    """Every array of the archive (the open file ``f`` and its parsed directory ``zf``), each checked first.

    An ``.npy`` member states its shape and dtype in a small header; an array of that size is allocated
    before its data is read. A member whose header promises more bytes than the member holds, or a member
    that runs past the end of the file, is refused first, so a crafted file cannot ask for terabytes.
    Object arrays need pickle, which is never used: such a file is simply not a scratchgen model. With
    ``mmap``, large arrays are mapped, not read (:func:`_read_member`).
    """
    size = os.fstat(f.fileno()).st_size
    arrays: dict[str, np.ndarray] = {}
    for info in zf.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if key in arrays:
            raise bad(f"the archive is damaged (two arrays named {key!r})")
        if info.header_offset + info.compress_size > size:
            raise bad(f"the archive is damaged ({info.filename!r} runs past the end of the file)")
        try:
            arrays[key] = _read_member(f, zf, info, key, bad, what, mmap and key != HEADER_KEY)
        except ModelFileError:
            raise
        except Exception as e:  # zlib, zipfile and .npy format errors of a damaged archive
            raise bad(f"the archive is damaged ({type(e).__name__}: {e})") from None
    return arrays


#: With ``mmap=True``, arrays of at least this many bytes are memory-mapped; smaller ones are read.
MMAP_MIN_BYTES = 1 << 16

#: Zip flag bits (APPNOTE 4.4.4) that only :mod:`zipfile` itself handles (and refuses): encryption (bit 0),
#: compressed patched data (bit 5), strong encryption (bit 6).
_ZIP_FLAGS_FOR_ZIPFILE = 0x61


#: The longest ``.npy`` header read: NumPy's own default limit (``max_header_size`` of its readers); an array's
#: header (descr, fortran_order, shape) takes about a hundred bytes.
NPY_HEADER_MAX = 10_000


#: The ``descr`` of a plain array as NumPy writes it: byte order, kind and size (a datetime's unit, an object
#: array's '|O'); NumPy's deprecated aliases ('a'), structured dtypes and anything else are not ours.
_PLAIN_DESCR = re.compile(r"[<>|=][biufcSUVOmM]\d*(\[\w+\])?")


def _npy_header(stream, name: str, bad: Callable[[str], ModelFileError]) -> tuple:
    """(shape, fortran order, dtype) of the ``.npy`` header at the stream's position, which it leaves at the data.

    The header is a Python dict literal, ``{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }``. It is
    read and checked here rather than by NumPy's reader, which warns before it refuses some damaged ones: an
    invalid escape made Python warn (a SyntaxWarning, shown by default from Python 3.12), a header that is no
    Python literal is retried as Python 2 wrote headers (a ``3L`` in the shape) with a UserWarning, and a
    descr spelt with a deprecated alias ('|a5') gives a DeprecationWarning. Here such a header is refused, as
    is anything but a plain array's three keys; a length past :data:`NPY_HEADER_MAX` is refused before
    anything of it is read, as NumPy's readers do.
    """
    import ast

    version = np.lib.format.read_magic(stream)
    width = 2 if version == (1, 0) else 4  # the header's length: uint16 in version 1.0, uint32 after
    raw = stream.read(width)
    length = int.from_bytes(raw, "little")
    if len(raw) == width and length > NPY_HEADER_MAX:  # refused before a buffer of that length is made
        raise bad(f"the archive is damaged (the .npy header of {name!r} claims {length} bytes)")
    header = stream.read(length) if len(raw) == width else b""
    if len(raw) != width or len(header) != length:
        raise bad(f"the archive is damaged (the .npy header of {name!r} is cut short)")
    not_plain = bad(f"the archive is damaged (the .npy header of {name!r} is not one of a plain array)")
    if b"\\" in header:  # an escape: the header of a plain array never holds one
        raise not_plain
    try:
        fields = ast.literal_eval(header.decode("utf-8" if version >= (3, 0) else "latin1"))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        raise not_plain from None
    if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
        raise not_plain
    descr, fortran, shape = fields["descr"], fields["fortran_order"], fields["shape"]
    if not (isinstance(descr, str) and _PLAIN_DESCR.fullmatch(descr)) or type(fortran) is not bool:
        raise not_plain
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise not_plain
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError):  # a kind and size NumPy has no type for ('<f9')
        raise not_plain from None
    return shape, fortran, dtype


def _read_member(f, zf, info, key: str, bad: Callable[[str], ModelFileError], what: str, mmap: bool) -> np.ndarray:
    """One ``.npy`` member: its header parsed once, its data read once into the array, its CRC-32 checked.

    ``np.savez`` stores members without compression, so a member is a contiguous run of the file: the
    zip's local header (30 bytes, the name, an extra field), then the ``.npy`` header, then the data.
    Such a member is read straight from the file into the array (one copy) and its CRC-32 computed over
    the same bytes. Any other member (compressed, encrypted) goes through :mod:`zipfile`, which
    decompresses, refuses what it cannot read and checks the CRC at the end of the member.

    With ``mmap``, an array of ``MMAP_MIN_BYTES`` or more is a read-only memory map of the file: the pages
    are read when touched and can be dropped by the system at any time, so a multi-GB model scores and
    generates without being read whole. (Its CRC is not checked: that would read the whole array; the
    schema's checks still run over every value.)
    """
    import zipfile
    import zlib

    stored = info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & _ZIP_FLAGS_FOR_ZIPFILE
    if stored:
        if info.compress_size != info.file_size:
            raise bad(f"the archive is damaged ({info.filename!r} is stored but its two sizes differ)")
        start = _data_start(f, info, bad)
        f.seek(start)
        stream = f
    else:
        start, stream = 0, zf.open(info)
    with contextlib.nullcontext() if stored else stream:
        shape, fortran, dtype = _npy_header(stream, info.filename, bad)
        head = stream.tell() - start  # bytes of the .npy header
        if dtype.hasobject:
            raise bad(f"not a scratchgen {what} file (the array {key!r} holds Python objects)")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > info.file_size:
            raise bad(f"the array {key!r} claims shape {shape} but the file holds only {info.file_size} bytes of it")
        if head + nbytes != info.file_size:
            raise bad(f"the archive is damaged ({info.filename!r} is not one whole .npy array)")
        if mmap and nbytes >= MMAP_MIN_BYTES:
            if not stored:
                raise bad(f"the array {info.filename!r} is compressed and cannot be memory-mapped (load without mmap)")
            offset = start + head
            return np.memmap(f.name, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
        values = np.empty(count, dtype=dtype)
        data = values.view(np.uint8) if nbytes else np.empty(0, np.uint8)
        if stored:
            f.seek(start)
            crc = zlib.crc32(f.read(head))  # then f is at the data again
        if stream.readinto(data) != nbytes:
            raise bad(f"the archive is damaged ({info.filename!r} is cut short)")
        if stored and zlib.crc32(data.data, crc) != info.CRC:
            raise bad(f"the archive is damaged (bad CRC-32 for {info.filename!r})")
        if not stored and stream.read(1):  # at the end of the member zipfile checks its CRC
            raise bad(f"the archive is damaged ({info.filename!r} is not one whole .npy array)")
    return values.reshape(shape[::-1]).T if fortran else values.reshape(shape)


def _data_start(f, info, bad: Callable[[str], ModelFileError]) -> int:
    """The offset in the file of a stored member's data, after checking its local header (as zipfile does)."""
    f.seek(info.header_offset)
    local = f.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise bad(f"the archive is damaged (no local header for {info.filename!r})")
    flags = int.from_bytes(local[6:8], "little")
    name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
    name = f.read(name_len).decode("utf-8" if flags & 0x800 else "cp437")
    if name != info.orig_filename:
        raise bad(f"the archive is damaged (its directory names {info.orig_filename!r}, its local header {name!r})")
    return info.header_offset + 30 + name_len + extra_len


def read_archive(
    path, what: str = "model", verb: str = "load", legacy_keys: Sequence[str] = (), mmap: bool = False
) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a file of :func:`write_archive`: ``(header, arrays)``, every array checked before it is read.

    ``what`` and ``verb`` word the errors: "cannot load model 'm.npz': no such file", "cannot resume
    from checkpoint 'ck.npz': not a scratchgen checkpoint file (...)". ``legacy_keys`` are older names
    of the header array (read when ``__header__`` is absent). The format and version inside the
    header are the caller's to check.

    Raises
    ------
    ModelFileError
        Missing, a directory, unreadable, not an ``.npz``, damaged, without a JSON-object header.
    """
    name = os.fspath(path)

    def bad(problem: str) -> ModelFileError:
        return ModelFileError(f"cannot {verb} {what} {name!r}: {problem}")

    try:
        with open(name, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise bad("no such file") from None
    except IsADirectoryError:
        raise bad("it is a directory") from None
    except PermissionError:
        raise bad("permission denied") from None
    except OSError as e:
        raise bad((e.strerror or str(e)).lower()) from None
    if magic == b"\x93NUM":
        raise bad(f"not a scratchgen {what} file (a single .npy array, not an .npz archive)")
    if magic != b"PK\x03\x04":  # not a zip archive: NumPy would offer to unpickle it, which we never do
        raise bad(f"not a scratchgen {what} file (a {what} file is an .npz archive; this is not one)")
    import zipfile

    with open(name, "rb") as f:
        try:
            zf = zipfile.ZipFile(f)  # parses the central directory, once
        except Exception as e:  # zipfile alone raises BadZipFile, NotImplementedError, RuntimeError, ...
            raise bad(f"not a scratchgen {what} file (a damaged archive: {type(e).__name__})") from None
        with zf:
            arrays = _read_arrays(f, zf, bad, what, mmap)
    key = next((k for k in (HEADER_KEY, *legacy_keys) if k in arrays), HEADER_KEY)
    raw = arrays.pop(key, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise bad(f"it has no scratchgen header (is it a scratchgen {what}?)")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise bad(f"its header is not valid JSON ({type(e).__name__})") from None
    if not isinstance(header, dict):
        raise bad(f"its header does not say it is a scratchgen {what}")
    return header, arrays


#: ``load(path)`` memory-maps the arrays of a model file at least this large (``mmap="auto"``).
MMAP_AUTO_BYTES = 256 * 2**20


def load(path, mmap: bool | str = "auto"):
    """Load a model written by :meth:`LanguageModel.save`.

    The class named in the header is found by :func:`scratchgen.registry.model_class`, which imports
    that family's module only now, so ``scratchgen.io.load`` needs no other import first.
    Every check runs before the model is used: the archive, the header, the constructor parameters
    (the class's own ``_check_params``) and every array against the class's schema
    (:func:`validate_arrays`).

    With ``mmap=True`` the arrays of 64 KiB or more are memory-mapped read-only instead of read
    (:func:`_read_member`): a model of several GB scores and generates while the system reads only the pages
    it touches. The checks still see every value, a block at a time, so memory stays small. The default,
    ``"auto"``, maps the arrays of a file of 256 MiB or more (so ``scratchgen score`` and ``generate``
    do too) and reads smaller ones; ``False`` always reads.

    Raises
    ------
    ModelFileError
        The file is missing, truncated, corrupted, of another format version, not a scratchgen model,
        or not a valid file of its class.
    """
    name = os.fspath(path)

    def bad(problem: str) -> ModelFileError:
        return ModelFileError(f"cannot load model {name!r}: {problem}")

    if mmap == "auto":
        try:
            mmap = os.path.getsize(name) >= MMAP_AUTO_BYTES
        except OSError:
            mmap = False  # read_archive names the problem
    elif not isinstance(mmap, bool):
        raise ScratchgenError(f"mmap must be True, False or 'auto', got {mmap!r}")
    header, arrays = read_archive(name, "model", mmap=mmap)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise bad("its header does not say it is a scratchgen model")
    if header.get("version") != VERSION:
        raise bad(f"format version {header.get('version')!r} is not supported (this scratchgen reads {VERSION})")
    try:
        cls = model_class(str(header.get("class")))
    except ScratchgenError as e:
        raise bad(str(e)) from None
    invalid = f"not a valid scratchgen {cls.__name__} file"
    try:
        params, vocab, tokenizer = header.get("params"), header.get("vocab"), header.get("tokenizer")
        if not isinstance(params, dict):
            raise ModelFileError("its params are not a JSON object")
        if not isinstance(vocab, list):
            raise ModelFileError("its vocabulary is not a list")
        if tokenizer is not None and not isinstance(tokenizer, dict):
            raise ModelFileError("its tokenizer is not a JSON object")
        state = header.get("state") or {}
        if not isinstance(state, dict):
            raise ModelFileError("its state is not a JSON object")
        upgrade = getattr(cls, "_params_from_header", None)  # a class whose params changed maps its old layout
        if upgrade is not None:
            params = upgrade(params)
        model = cls(**params)
        model._check_params()
        if tokenizer is not None:
            model.tokenizer = Tokenizer.from_dict(tokenizer)
        model.vocab_ = Vocabulary(vocab)
        if header.get("labels") is not None:  # a conditional model: its labels and their counts
            from .labels import LabelSet

            model.labels_ = LabelSet.from_dict(header["labels"])
        schema = model._array_schema()
        if schema is not None:
            validate_arrays(cls.__name__, arrays, schema)
        model._load_state(state, arrays)
    except ModelFileError as e:
        message = str(e)
        raise bad(message if message.startswith("not a") else f"{invalid}: {message}") from None
    except (ScratchgenError, KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
        raise bad(f"{invalid}: {e if isinstance(e, ScratchgenError) else type(e).__name__ + ': ' + str(e)}") from None
    return model
