"""What a model file's arrays must be: one validator for every class (:class:`ArraySpec`, :func:`validate_arrays`).

Each model class declares the schema of its arrays in ``_array_schema()``: for every name, an
:class:`ArraySpec` giving the shape (as a function of the header: V, H, L, N ...), the dtype kind,
finiteness and bounds. :func:`scratchgen.io.load` checks every array against it before the model sees
any, and ``save`` checks before writing, so a model with NaN or inf weights is never written and an edited
file is refused with a message that names the array and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import ModelFileError

__all__ = ["ArraySpec", "check_array", "validate_arrays"]


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """What one array of a model file must be.

    Parameters
    ----------
    shape : tuple of int or None
        The exact shape; ``None`` in a place means any length there.
    kind : {"f", "i", "b"}
        Floating point (float32 or float64), integer (signed or unsigned), or bool.
    finite : bool
        For floats: no NaN and no inf (but see ``allow_neg_inf``).
    allow_neg_inf : bool
        For floats: -inf is allowed (log-probability of an impossible event), NaN and +inf are not.
    low, high : float, optional
        Inclusive bounds on the (finite) values: ``high=0`` for log-probabilities.
    increasing : bool
        Strictly increasing (sorted keys without duplicates); 1-d only.
    """

    shape: tuple[int | None, ...]
    kind: str = "f"
    finite: bool = True
    allow_neg_inf: bool = False
    low: float | None = None
    high: float | None = None
    increasing: bool = False


_KINDS = {"f": ("f",), "i": ("i", "u"), "b": ("b",)}
_KIND_NAMES = {"f": "floating-point", "i": "integer", "b": "boolean"}


def _shape_text(shape: Sequence[int | None]) -> str:
    inner = ", ".join("any" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _num(value) -> str:
    """A number for a message: integers exactly, floats to 6 significant digits."""
    value = value.item() if isinstance(value, np.generic) else value
    return str(value) if isinstance(value, int) else f"{value:.6g}"


#: Values are checked this many at a time, so that a memory-mapped array is never copied whole.
_BLOCK = 1 << 20


def check_array(name: str, a: np.ndarray, spec: ArraySpec) -> str | None:
    """What is wrong with the array ``a`` named ``name``, as a phrase for a message, or None if it meets ``spec``.

    The dtype and shape first, then the values, read ``_BLOCK`` at a time (with one value of overlap), so a
    memory-mapped array is never copied whole. :func:`validate_arrays` raises with the phrase; a writer that
    checks an array block by block as it writes it (:func:`scratchgen.io.write_model`) calls this on each block.

    >>> check_array("keys", np.array([1, 3, 2]), ArraySpec((None,), kind="i", increasing=True))
    'keys is not strictly increasing'
    >>> check_array("W", np.ones((2, 2)), ArraySpec((2, 2))) is None
    True
    """
    if a.dtype.kind not in _KINDS[spec.kind] or (spec.kind == "f" and a.dtype.itemsize not in (4, 8)):
        return f"{name} has dtype {a.dtype}, expected {_KIND_NAMES[spec.kind]}"
    if a.ndim != len(spec.shape) or any(e is not None and d != e for d, e in zip(a.shape, spec.shape)):
        return f"{name} has shape {a.shape}, expected {_shape_text(spec.shape)}"
    flat = a.reshape(-1, order="A")  # a view for C- and Fortran-ordered arrays alike
    for start in range(0, flat.size, _BLOCK):
        block = flat[max(start - 1, 0) : start + _BLOCK]  # one value of overlap: "increasing" spans blocks
        problem = _check_values(name, np.asarray(block), spec)
        if problem:
            return problem
    return None


def _check_values(name: str, a: np.ndarray, spec: ArraySpec) -> str | None:
    if spec.kind == "f" and a.size:
        if np.isnan(a).any():
            return f"{name} holds NaN"
        if spec.finite and np.isposinf(a).any():
            return f"{name} holds +inf"
        if spec.finite and not spec.allow_neg_inf and np.isneginf(a).any():
            return f"{name} holds -inf"
    if a.size and (spec.low is not None or spec.high is not None):
        finite = a[np.isfinite(a)] if spec.kind == "f" else a
        if spec.low is not None and finite.size and finite.min() < spec.low:
            return f"{name} holds {_num(finite.min())}, below the least allowed value {_num(spec.low)}"
        if spec.high is not None and finite.size and finite.max() > spec.high:
            return f"{name} holds {_num(finite.max())}, above the largest allowed value {_num(spec.high)}"
    if spec.increasing and a.size > 1 and not (a[1:] > a[:-1]).all():  # np.diff would wrap around for uint
        return f"{name} is not strictly increasing"
    return None


def validate_arrays(
    class_name: str, arrays: Mapping[str, np.ndarray], schema: Mapping[str, ArraySpec], saving: bool = False
) -> None:
    """Check every array against the schema before any use; raise :class:`ModelFileError` on the first fault.

    The message reads "not a valid scratchgen CLASS file: W_hh.0 has shape (16, 15), expected (16, 16)"
    (or "cannot save this CLASS: W_hh.0 holds NaN" when ``saving``).

    >>> spec = {"W": ArraySpec((2, 2))}
    >>> validate_arrays("M", {"W": np.zeros((2, 3))}, spec)
    Traceback (most recent call last):
    ...
    scratchgen.errors.ModelFileError: not a valid scratchgen M file: W has shape (2, 3), expected (2, 2)
    """

    def fail(problem: str) -> ModelFileError:
        if saving:
            return ModelFileError(f"cannot save this {class_name}: {problem}")
        return ModelFileError(f"not a valid scratchgen {class_name} file: {problem}")

    for name, spec in schema.items():
        if name not in arrays:
            raise fail(f"the array {name} is missing")
        problem = check_array(name, np.asarray(arrays[name]), spec)
        if problem:
            raise fail(problem)
    extra = sorted(set(arrays) - set(schema))
    if extra:
        raise fail(f"unexpected array {extra[0]}")
