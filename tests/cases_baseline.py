"""The random generators in the contract suite."""

from contract_case import TRAIN_TEXTS, Case

from scratchgen import UniformModel, UnigramModel

CASES = [
    Case("uniform", lambda: UniformModel().fit(TRAIN_TEXTS)),
    Case("unigram", lambda: UnigramModel(k=0.5).fit(TRAIN_TEXTS)),
]
