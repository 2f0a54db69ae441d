"""Refuse before allocating: memory estimates checked against the machine.

A request that would need more memory than the machine has (a hidden size of 100,000, an ARPA header
promising 10^11 n-grams, a chart for a sentence of a million tokens) is refused *before* NumPy tries,
with the estimate and the option that controls it, instead of a ``MemoryError`` traceback or a machine
that swaps for an hour::

    >>> check_memory(2**20, "a small table")          # 1 MiB: fine
    >>> check_memory(10**15, "hidden 10000000", "lower --hidden", limit=2**30)
    Traceback (most recent call last):
    ...
    scratchgen.errors.ResourceError: hidden 10000000 needs about 909.5 TiB of memory, more than the 1.0 GiB allowed;
    lower --hidden

The limit is the machine's physical memory, or ``SCRATCHGEN_MEMORY_LIMIT`` (bytes, or with a suffix
K, M, G, T) when that is set.
"""

from __future__ import annotations

import os

from .errors import ResourceError

__all__ = ["check_memory", "memory_limit", "format_bytes"]


def format_bytes(n: float) -> str:
    """A byte count in binary units, e.g. ``format_bytes(80 * 2**30) == '80.0 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in "KMGT" else text
    try:
        value = float(number) * scale
    except ValueError:
        raise ResourceError(f"SCRATCHGEN_MEMORY_LIMIT must be a size such as 4G or 512M, got {text!r}") from None
    if not value > 0:
        raise ResourceError(f"SCRATCHGEN_MEMORY_LIMIT must be positive, got {text!r}")
    return int(value)


def memory_limit() -> int:
    """Bytes a single request may need: ``SCRATCHGEN_MEMORY_LIMIT`` or the machine's physical memory."""
    env = os.environ.get("SCRATCHGEN_MEMORY_LIMIT")
    if env:
        return _parse_size(env)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a generous machine
        return 64 * 2**30


def check_memory(nbytes: float, what: str, hint: str = "", *, limit: int | None = None) -> None:
    """Raise :class:`ResourceError` when ``what`` would need more than ``limit`` bytes.

    Parameters
    ----------
    nbytes : float
        The estimate, in bytes.
    what : str
        What needs it, in the user's words ("hidden 100000 with vocabulary 65").
    hint : str
        What to change ("lower --hidden").
    limit : int, optional
        Default :func:`memory_limit`.
    """
    limit = memory_limit() if limit is None else limit
    if nbytes > limit:
        raise ResourceError(
            f"{what} needs about {format_bytes(nbytes)} of memory, more than the {format_bytes(limit)} allowed"
            + (f"; {hint}" if hint else "")
        )
