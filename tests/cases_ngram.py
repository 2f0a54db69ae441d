"""The ngram models in the contract suite (filled by its issue)."""

CASES: list = []
