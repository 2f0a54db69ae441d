"""What an n-gram model accepts: the names of the smoothings, the limits, and the rules on their settings.

Nothing here imports NumPy when the module is imported, so the command line builds its parser (``--smoothing``
choices, ``--order``'s range) without importing the family; the modules that use these values import them from
here. The rules (:func:`check_settings`) are here too, not beside the strategies in :mod:`.smoothing`: loading
a model file checks its settings, and scoring needs none of the strategies.
"""

from __future__ import annotations

import math

from ..errors import ScratchgenError

__all__ = [
    "DEFAULT_ALPHA",
    "LABELLED_SMOOTHINGS",
    "MAX_ORDER",
    "SMOOTHINGS",
    "check_alpha",
    "check_discount",
    "check_k",
    "check_settings",
    "legacy_alpha",
]

#: Every smoothing by the name ``NGramModel(smoothing=...)`` and ``--smoothing`` take (:mod:`.smoothing`).
SMOOTHINGS = ("mle", "add-k", "absolute", "witten-bell", "kneser-ney", "modified-kneser-ney", "stupid-backoff")
#: The smoothings whose chain ends in the uniform distribution: the ones a label can extend (:mod:`.labelled`).
LABELLED_SMOOTHINGS = ("absolute", "witten-bell", "kneser-ney", "modified-kneser-ney")
DEFAULT_ALPHA = 0.4  # stupid backoff's factor, Brants et al.'s value
#: The longest order accepted (a model file's header is checked against it before its arrays are listed).
MAX_ORDER = 1000


# --- the settings, checked without building anything ----------------------------------------------------------


def _number(x) -> bool:
    """A finite number: a Python or NumPy integer or float, never a bool."""
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return True
    if isinstance(x, float):  # NumPy's float64 too
        return math.isfinite(x)
    if type(x).__module__ == "numpy":  # NumPy's other scalars (NumPy is imported when one exists)
        import numpy as np

        return isinstance(x, (np.integer, np.floating)) and bool(np.isfinite(x))
    return False


def check_k(k) -> None:
    """k of add-k (and of stupid backoff's unigrams): a finite number > 0."""
    if not _number(k) or not k > 0:
        raise ScratchgenError(f"k must be a finite number > 0, got {k!r}")


def check_alpha(alpha) -> None:
    """Stupid backoff's factor alpha: a number in (0, 1]."""
    if not _number(alpha) or not 0 < alpha <= 1:
        raise ScratchgenError(f"the stupid-backoff factor alpha must be in (0, 1], got {alpha!r}")


def check_discount(name: str, discount) -> None:
    """The ``discount`` of smoothing ``name``: None (estimated), D in (0, 1) for absolute discounting and
    Kneser-Ney, three numbers 0 <= D_j <= j for modified Kneser-Ney. Maximum likelihood, add-k and Witten-Bell
    have none and ignore it; for stupid backoff it is the old name of alpha (:func:`legacy_alpha`)."""
    if discount is None:
        return
    if name in ("absolute", "kneser-ney"):
        if not (_number(discount) and 0 < discount < 1):
            what = "absolute discount" if name == "absolute" else "Kneser-Ney discount"
            raise ScratchgenError(f"the {what} must be a number in (0, 1), got {discount!r}")
    elif name == "modified-kneser-ney":
        try:
            ok = len(discount) == 3 and all(_number(d) and 0 <= d <= j for j, d in zip((1, 2, 3), discount))
        except TypeError:
            ok = False
        if not ok:
            raise ScratchgenError(f"modified Kneser-Ney discounts are three numbers 0 <= D_j <= j, got {discount!r}")
    elif name == "stupid-backoff":
        check_alpha(discount)


def legacy_alpha(name: str, discount, alpha):
    """Stupid backoff's alpha when ``discount`` may carry it: files written before ``alpha`` was a setting of
    its own stored stupid backoff's factor as ``discount``, and that spelling still means alpha (deprecated).
    Both given and different is refused."""
    if name != "stupid-backoff" or discount is None:
        return alpha
    if alpha != DEFAULT_ALPHA and alpha != discount:
        raise ScratchgenError(
            f"stupid backoff's factor is alpha (got {alpha!r}); discount={discount!r} is its old name: give alpha alone"
        )
    return discount


def check_settings(name: str, k=1.0, discount=None, alpha=DEFAULT_ALPHA) -> None:
    """Every rule on a smoothing's settings, one per setting; builds nothing, changes nothing."""
    if name not in SMOOTHINGS:
        raise ScratchgenError(f"smoothing must be one of {SMOOTHINGS}, got {name!r}")
    check_k(k)
    check_alpha(alpha)
    check_discount(name, discount)
    legacy_alpha(name, discount, alpha)
