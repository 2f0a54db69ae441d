"""One BLAS thread for small matrix products: the recurrence of the RNN, the grammar's charts.

A product of small matrices split over several threads costs more in synchronisation than it gains,
and far more on a busy machine: measured, the RNN's training step was 38 times slower, and the grammar's
inside-outside pass 10 times slower, on a loaded 2-core machine with the default threads. The code that
multiplies many small blocks in a row runs inside :func:`one_blas_thread`; ``threadpoolctl`` is a
runtime dependency.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

__all__ = ["one_blas_thread"]

_CONTROLLER: Any = None  # a threadpoolctl.ThreadpoolController, made on first use (importing it costs ~10 ms)
_ONE_THREAD = False
_MODULES_SEEN = 0  # len(sys.modules) when the controller was made


def one_blas_thread():
    """A context in which the BLAS uses one thread (see the module docstring); nested uses cost nothing."""
    global _CONTROLLER, _MODULES_SEEN
    if _ONE_THREAD:  # already inside: nothing to do (and it is cheap)
        return contextlib.nullcontext()
    # Inspecting the loaded libraries takes a few ms, so the controller is kept; but a BLAS that arrives
    # later (SciPy brings its own) comes with new modules, and then it is inspected afresh.
    if _CONTROLLER is None or _MODULES_SEEN != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _CONTROLLER, _MODULES_SEEN = ThreadpoolController(), len(sys.modules)
    return _one_thread(_CONTROLLER)


@contextlib.contextmanager
def _one_thread(controller):
    global _ONE_THREAD
    with controller.limit(limits=1, user_api="blas"):
        _ONE_THREAD = True
        try:
            yield
        finally:
            _ONE_THREAD = False
