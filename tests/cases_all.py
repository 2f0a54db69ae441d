"""One small, unfitted model of every registered class, for tests that run a law over all of them."""

from __future__ import annotations

from scratchgen.registry import MODEL_REGISTRY


def unfitted(name: str):
    """A fresh instance of the registered class ``name`` that fits on tiny character corpora."""
    from scratchgen import (
        GrammarModel,
        MLPModel,
        NGramModel,
        RNNModel,
        TransformerModel,
        UniformModel,
        UnigramModel,
    )

    makers = {
        "UniformModel": lambda: UniformModel(),
        "UnigramModel": lambda: UnigramModel(),
        "NGramModel": lambda: NGramModel(order=2),
        "RNNModel": lambda: RNNModel(hidden=4, max_steps=2, batch_size=2, seq_len=4, valid_fraction=0.0),
        "MLPModel": lambda: MLPModel(context=2, embedding=3, hidden=4, max_steps=2, batch_size=2, seq_len=4,
                                     valid_fraction=0.0),
        "TransformerModel": lambda: TransformerModel(layers=1, heads=1, embedding=4, context=4, max_steps=2,
                                                     batch_size=2, valid_fraction=0.0),
        # one rule over the letters a and b, at character level; one EM iteration
        "GrammarModel": lambda: GrammarModel(grammar="S -> 'a' S [0.3] | 'b' S [0.3] | 'a' [0.2] | 'b' [0.2]",
                                             iterations=1),
    }
    missing = set(MODEL_REGISTRY) - set(makers)
    assert not missing, f"add a case for {sorted(missing)} to tests/cases_all.py"
    return makers[name]()
