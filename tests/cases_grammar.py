"""The grammar models in the contract suite.

The grammar models have the full stepping interface (prefix probabilities). The shared TRAIN_TEXTS
are character-level mixed text that no small grammar generates, so the grammar cases bring their own
grammars (word level) and their own unseen texts: sentences the grammar can generate, one it cannot
(probability 0, log-probability -inf) and one with out-of-vocabulary tokens.
"""

from contract_case import Case

TOY = """
S  -> NP VP [1.0]
NP -> Det N [0.8] | NP 'and' NP [0.2]
Det -> 'the' [0.7] | 'a' [0.3]
N  -> 'cat' [0.4] | 'dog' [0.3] | 'mat' [0.2] | 'log' [0.1]
VP -> 'sat' [0.5] | 'sat' 'on' NP [0.5]
"""

def _toy():
    from scratchgen.grammar import GrammarModel, sample
    from scratchgen.grammar.rules import parse_grammar

    corpus = sample(parse_grammar(TOY), 40, seed=0)
    return GrammarModel(grammar=TOY, iterations=5).fit(corpus)


def _chinese():
    from scratchgen.grammar import GrammarModel

    return GrammarModel.from_grammar("builtin:chinese")


CASES = [
    Case("grammar-toy-em", _toy,
         unseen=["a cat sat on the dog", "the dog and the cat sat", "the cat", "zebra 🦓 é"]),
    Case("grammar-chinese", _chinese,
         unseen=["我喜欢猫。", "这只狗很累。", "猫猫", "zebra 🦓 é"]),
]
