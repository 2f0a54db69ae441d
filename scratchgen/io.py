"""Saving and loading models: one ``.npz`` file, no pickle, written atomically.

A model file is a NumPy ``.npz`` archive holding

- ``__header__``: a uint8 array of UTF-8 JSON: ``{"format": "scratchgen-model", "version": 1,
  "class": ..., "params": ..., "tokenizer": ..., "vocab": [...], "state": ...}``;
- the model's arrays, under the names its ``_save_state`` chose.

It is read with ``allow_pickle=False``, so loading a file never runs code. It is written to a
temporary file in the same directory and renamed over the target (``os.replace`` is atomic), so an
interrupted save leaves the old file or the new one, never half of one. Anything that is not a
whole, current scratchgen model raises :class:`~scratchgen.errors.ModelFileError` naming the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Callable

import numpy as np

from .errors import ModelFileError, ScratchgenError
from .text import Tokenizer, Vocabulary

__all__ = ["save_model", "load", "atomic_write", "FORMAT", "VERSION"]

FORMAT = "scratchgen-model"
VERSION = 1
HEADER_KEY = "__header__"


def atomic_write(path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it to ``path``.

    On any error the temporary file is removed and ``path`` is untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ModelFileError(f"cannot write {path!r}: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a model header")


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` (one ``.npz`` file); see the module docstring for the layout."""
    vocab = model._fitted_vocab()
    extra, arrays = model._save_state()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "class": type(model).__name__,
        "params": model.get_params(),
        "tokenizer": model.tokenizer.to_dict() if model.tokenizer is not None else None,
        "vocab": vocab.to_list(),
        "state": extra,
    }
    blob = json.dumps(header, default=_json_default, ensure_ascii=False, allow_nan=True).encode("utf-8")
    for name in arrays:
        if name == HEADER_KEY:
            raise ScratchgenError(f"array name {HEADER_KEY!r} is reserved")
    payload = {HEADER_KEY: np.frombuffer(blob, dtype=np.uint8), **arrays}
    atomic_write(path, lambda f: np.savez(f, **payload))


def load(path):
    """Load a model written by :meth:`LanguageModel.save`.

    Raises
    ------
    ModelFileError
        The file is missing, truncated, corrupted, of another format version or not a scratchgen model.
    """
    from .model import MODEL_REGISTRY, model_class

    name = os.fspath(path)

    def bad(problem: str) -> ModelFileError:
        return ModelFileError(f"cannot load model {name!r}: {problem}")

    try:
        archive = np.load(name, allow_pickle=False)
    except FileNotFoundError:
        raise bad("no such file") from None
    except IsADirectoryError:
        raise bad("it is a directory") from None
    except Exception as e:  # zipfile alone raises BadZipFile, NotImplementedError, RuntimeError, ...
        raise bad(f"not a scratchgen model file ({type(e).__name__}: {e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise bad("not a scratchgen model file (a single .npy array, not an .npz archive)")
    with archive:
        try:
            arrays = {key: archive[key] for key in archive.files}  # reads and CRC-checks every array
        except Exception as e:  # zlib, zipfile, format and pickle errors of a damaged archive
            raise bad(f"the archive is damaged ({type(e).__name__}: {e})") from None
    raw = arrays.pop(HEADER_KEY, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise bad("it has no scratchgen header (is it a scratchgen model?)")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"its header is not valid JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise bad("its header does not say it is a scratchgen model")
    if header.get("version") != VERSION:
        raise bad(f"format version {header.get('version')!r} is not supported (this scratchgen reads {VERSION})")
    try:
        cls = model_class(str(header["class"]))
        params = header["params"]
        if not isinstance(params, dict):
            raise TypeError("params is not an object")
        model = cls(**params)
        if header.get("tokenizer") is not None:
            model.tokenizer = Tokenizer.from_dict(header["tokenizer"])
        model.vocab_ = Vocabulary(header["vocab"])
        model._load_state(header.get("state") or {}, arrays)
    except ModelFileError:
        raise
    except (ScratchgenError, KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise bad(f"its contents are inconsistent ({type(e).__name__}: {e})") from None
    assert cls.__name__ in MODEL_REGISTRY
    return model
