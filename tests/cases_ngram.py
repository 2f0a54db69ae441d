"""The n-gram models in the contract suite: every smoothing, orders 2 and 3, characters and words."""

from contract_case import TRAIN_TEXTS, Case

from scratchgen import Tokenizer
from scratchgen.ngram import NGramModel

WORDS = Tokenizer("word")


def _case(smoothing, order, tokenizer=None, **kw):
    level = "word" if tokenizer else "char"
    exempt = {}
    if smoothing == "stupid-backoff":
        exempt["normalised"] = ("stupid backoff scores are relative frequencies times 0.4 per backoff, "
                                "not probabilities (Brants et al. 2007): rows do not sum to 1")
    return Case(f"ngram-{smoothing}-{order}-{level}",
                lambda: NGramModel(order=order, smoothing=smoothing, tokenizer=tokenizer, **kw).fit(TRAIN_TEXTS),
                exempt=exempt)


CASES = [
    _case("mle", 2),
    _case("add-k", 3, k=0.5),
    _case("absolute", 3),
    _case("witten-bell", 2, WORDS),
    _case("kneser-ney", 3),
    _case("modified-kneser-ney", 3),
    _case("modified-kneser-ney", 2, WORDS),
    _case("stupid-backoff", 3),
    Case("ngram-mkn-cutoffs-3", lambda: NGramModel(order=3, cutoffs=[1, 2, 2]).fit(TRAIN_TEXTS)),
]
