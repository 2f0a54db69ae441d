"""One BLAS thread for the commands that multiply no matrices, asked for before NumPy is imported.

OpenBLAS starts its thread pool when NumPy is first imported, whether or not a matrix is ever multiplied, and
that start costs CPU time of its own (on the 2-core machine of ``benchmarks/RESULTS.md``, section ngram: see its
notes for the figure). The n-gram model's commands (``train ngram``; ``score``, ``generate``, ``classify`` and
``explain`` of an n-gram model) make no BLAS product: they count, sort, look up and add. For them
:func:`one_blas_thread_if_unused` sets ``OPENBLAS_NUM_THREADS=1`` before NumPy is imported, so no pool is
started. It changes no result, only the threads OpenBLAS starts.

It does nothing when the user has set the BLAS threads (any of :data:`THREAD_VARIABLES`), when NumPy is already
imported (the command run from Python, as the tests do), or for any other model family (the networks multiply
matrices). The family of a model file is read from the first bytes of its header (:func:`model_class_name`,
no NumPy needed); a file it cannot read is left to the command, which names the problem. The variable is set in
this process's environment, so the processes a command starts inherit it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import MutableMapping

__all__ = ["THREAD_VARIABLES", "one_blas_thread_if_unused", "makes_no_blas_products", "model_class_name"]

#: The variables through which a user chooses the BLAS threads; when any is set, it is left as it is.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
#: The model classes whose commands make no BLAS product.
NO_BLAS_CLASSES = frozenset({"NGramModel"})


def model_class_name(path: str) -> str | None:
    """The class a scratchgen model file names in its header (``io.write_archive``: JSON under
    ``__header__``, ``"class"`` among its first keys), read from the first 4 KiB of that entry without NumPy;
    None when the file is not such an archive or the name is not there."""
    import re
    import zipfile  # here, not at the top: ``scratchgen --help`` needs neither

    try:
        with zipfile.ZipFile(path) as archive, archive.open("__header__.npy") as f:
            head = f.read(4096)
    except Exception:  # missing, a directory, not a zip, damaged: the command itself says what is wrong
        return None
    found = re.search(rb'"class":\s*"(\w+)"', head)
    return found.group(1).decode("ascii") if found else None


def makes_no_blas_products(args: argparse.Namespace) -> bool:
    """Whether the parsed command is one of the n-gram model's (module docstring)."""
    if getattr(args, "command", None) == "train":
        return getattr(args, "family", None) == "ngram"
    paths = [p for p in (getattr(args, "model", None), getattr(args, "model2", None)) if isinstance(p, str)]
    return bool(paths) and all(model_class_name(p) in NO_BLAS_CLASSES for p in paths)


def one_blas_thread_if_unused(
    args: argparse.Namespace, environ: MutableMapping[str, str] | None = None, numpy_imported: bool | None = None
) -> bool:
    """Set ``OPENBLAS_NUM_THREADS=1`` in ``environ`` (default ``os.environ``) for a command that makes no BLAS
    product, unless the user has set the BLAS threads or NumPy is already imported; whether it was set."""
    environ = os.environ if environ is None else environ
    if numpy_imported is None:
        numpy_imported = "numpy" in sys.modules
    if numpy_imported or any(name in environ for name in THREAD_VARIABLES):
        return False
    if not makes_no_blas_products(args):
        return False
    environ["OPENBLAS_NUM_THREADS"] = "1"
    return True
