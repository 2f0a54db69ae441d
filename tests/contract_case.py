"""What a model family gives the contract suite (tests/test_contract.py).

Each family lists its cases in ``tests/cases_<family>.py`` as ``CASES: list[Case]``. A case makes a
fitted model; ``exempt`` names the laws the model knowingly breaks, each with the reason, and the
suite then checks that the law really does fail (an exemption that is not needed is an error too).

Laws (names used in ``exempt``): ``normalised`` (every next-token row sums to 1; a model exempt from
it says so with ``normalized = False``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

# A tiny corpus with English and Chinese, at character level, and text the models have never seen.
TRAIN_TEXTS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "我爱北京天安门",
    "猫坐在垫子上",
    "",
    "the end",
]
UNSEEN_TEXTS = ["a bird sat on the cat", "北京的猫", "zebra 🦓 é"]


@dataclasses.dataclass
class Case:
    id: str
    make: Callable[[], object]  # returns a fitted model
    exempt: dict = dataclasses.field(default_factory=dict)  # law -> reason it is broken on purpose
    unseen: list = dataclasses.field(default_factory=lambda: list(UNSEEN_TEXTS))  # texts to score


def rel_tol(model) -> float:
    """How closely two ways of computing one log-probability must agree for ``model``.

    1e-9 for float64 weights. A float32 model's weights are float32: the vectorised and the stepped
    paths multiply them in other shapes (a matrix product against a vector product), which BLAS rounds
    differently from one CPU to another (seen: 2e-9 relative on an AMD EPYC), so 1e-6 there.
    """
    return 1e-6 if str(getattr(model, "dtype", "float64")) == "float32" else 1e-9
