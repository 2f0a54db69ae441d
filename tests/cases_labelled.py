"""Labelled models for the label laws (tests/test_labels.py): a function a family, one table.

A :class:`LabelledCase` fits a model of P(x | c) on a labelled corpus it is given (texts at character
level, one label a text). ``corpus`` is the corpus its laws use (the shared :data:`LABELLED_TRAIN` by
default; a family whose model cannot fit any text, e.g. a grammar, gives its own), and ``disjoint`` a
corpus whose labels use disjoint alphabets (for the law that ``generate(label=c)`` draws from label c's
distribution only). ``exempt`` names the laws the model knowingly breaks, each with the reason; the
suite then checks that the law really does fail, as tests/contract_case.py does. Laws that may be
exempted: ``label_only`` (samples of label c use c's alphabet when the labels' alphabets are disjoint)
and ``corpus_order`` (the model fitted on the corpus shuffled scores the same: a counting model does,
one trained by SGD in corpus order may not).

Each family adds one function returning its cases, and :data:`LABELLED_CASES` joins them. The n-gram,
RNN and grammar families' functions arrive with their labels (branches labngram, labrnn, labgrammar).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

# Two labels at character level: English and Chinese sentences, and a third label with one example only.
LABELLED_TRAIN = [
    ("en", "the cat sat on the mat"),
    ("en", "the dog sat on the log"),
    ("en", "a cat and a dog"),
    ("zh", "我爱北京天安门"),
    ("zh", "猫坐在垫子上"),
    ("zh", "北京的猫"),
    ("x", "the end"),
]
# Texts the laws score: seen, unseen, mixed, and one character no label has seen.
LABELLED_SCORED = ["the cat", "北京", "a 猫 sat", "zebra é", ""]

# Labels with disjoint alphabets ("a" uses a, b, c; "z" uses x, y, z), repeated so counts dominate smoothing.
DISJOINT_TRAIN = [("a", "abcab"), ("a", "cabba"), ("a", "bca"), ("z", "xyzzy"), ("z", "zyx"), ("z", "yxxz")] * 10
DISJOINT_ALPHABETS = {"a": set("abc"), "z": set("xyz")}


@dataclasses.dataclass
class LabelledCase:
    id: str
    fit: Callable[[list[str], list[str]], object]  # (texts, labels) -> a fitted labelled model
    exempt: dict = dataclasses.field(default_factory=dict)  # law -> reason it is broken on purpose
    corpus: list = dataclasses.field(default_factory=lambda: list(LABELLED_TRAIN))  # (label, text) pairs
    scored: list = dataclasses.field(default_factory=lambda: list(LABELLED_SCORED))
    disjoint: list = dataclasses.field(default_factory=lambda: list(DISJOINT_TRAIN))
    alphabets: dict = dataclasses.field(default_factory=lambda: dict(DISJOINT_ALPHABETS))

    def make(self, corpus=None):
        """The model fitted on ``corpus`` (default: the case's own), as (label, text) pairs."""
        pairs = self.corpus if corpus is None else corpus
        return self.fit([text for _, text in pairs], [label for label, _ in pairs])


def random_cases() -> list[LabelledCase]:
    """The random family (scratchgen.baseline): one uniform or unigram row a label."""
    from scratchgen import UniformModel, UnigramModel

    return [
        LabelledCase(
            "uniform",
            lambda texts, labels: UniformModel().fit(texts, labels=labels),
            exempt={"label_only": "the uniform row is the same for every label: it cannot tell labels apart"},
        ),
        LabelledCase("unigram", lambda texts, labels: UnigramModel(k=0.5).fit(texts, labels=labels)),
    ]


# A grammar with two labels, each a start symbol, over disjoint words (English and French), and a corpus
# it covers: a grammar cannot fit text outside its language.
TWO_LANGUAGES = """
%start S
S -> en [0.6] | fr [0.4]
en -> 'the' N_EN V_EN [0.7] | 'a' N_EN V_EN [0.3]
N_EN -> 'cat' [0.5] | 'dog' [0.5]
V_EN -> 'runs' [0.4] | 'sleeps' [0.4] | 'runs' 'and' V_EN [0.2]
fr -> 'le' N_FR V_FR [0.6] | 'un' N_FR V_FR [0.4]
N_FR -> 'chat' [0.5] | 'chien' [0.5]
V_FR -> 'court' [0.4] | 'dort' [0.4] | 'court' 'et' V_FR [0.2]
"""
TWO_LANGUAGES_TRAIN = [
    ("en", "the cat runs"),
    ("en", "a dog sleeps"),
    ("en", "the dog runs and sleeps"),
    ("fr", "le chat dort"),
    ("fr", "un chien court et dort"),
]
TWO_LANGUAGES_WORDS = {
    "en": {"the", "a", "cat", "dog", "runs", "sleeps", "and"},
    "fr": {"le", "un", "chat", "chien", "court", "dort", "et"},
}


def grammar_cases() -> list[LabelledCase]:
    """The grammar family: a label names a start symbol, each label's weights learned by EM."""
    from scratchgen import GrammarModel

    return [
        LabelledCase(
            "grammar",
            lambda texts, labels: GrammarModel(grammar=TWO_LANGUAGES, iterations=3).fit(texts, labels=labels),
            corpus=list(TWO_LANGUAGES_TRAIN),
            scored=["the cat runs", "le chien court et dort", "a dog runs and runs and sleeps", "le cat"],
            disjoint=list(TWO_LANGUAGES_TRAIN) * 2,
            alphabets=dict(TWO_LANGUAGES_WORDS),
        )
    ]


def ngram_cases() -> list[LabelledCase]:
    """The n-gram family: label-extended histories backing off to the label-free model (ngram/labelled.py)."""
    from scratchgen.ngram import NGramModel

    return [
        LabelledCase("ngram-mkn-3", lambda texts, labels: NGramModel(order=3).fit(texts, labels=labels)),
        LabelledCase(
            "ngram-wb-2", lambda texts, labels: NGramModel(order=2, smoothing="witten-bell").fit(texts, labels=labels)
        ),
    ]


def nn_cases() -> list[LabelledCase]:
    """The deep family: a label vector added to every input and a label start state (nn/conditioning.py)."""
    from scratchgen import RNNModel

    def fit(texts, labels):
        model = RNNModel(hidden=16, embedding=8, batch_size=4, seq_len=16, lr=2e-2, epochs=60, valid_fraction=0, seed=0)
        return model.fit(texts, labels=labels)

    def fit_cell(cell):
        def fit_gated(texts, labels):
            model = RNNModel(cell=cell, hidden=16, embedding=8, batch_size=4, seq_len=16, lr=2e-2, epochs=60,
                             valid_fraction=0, seed=0)
            return model.fit(texts, labels=labels)

        return fit_gated

    order = {"corpus_order": "trained by SGD in corpus order: a shuffled corpus gives other batches"}
    return [LabelledCase("rnn", fit, exempt=order)] + [
        LabelledCase(cell, fit_cell(cell), exempt=order) for cell in ("gru", "lstm")
    ]


def mlp_cases() -> list[LabelledCase]:
    """Bengio's MLP: the label read as one more slot of the window (nn/mlp.py, eq. 3)."""
    from scratchgen import MLPModel

    def fit(texts, labels):
        model = MLPModel(context=3, embedding=8, hidden=16, batch_size=4, seq_len=16, lr=2e-2, epochs=60,
                         valid_fraction=0, seed=0)
        return model.fit(texts, labels=labels)

    return [
        LabelledCase(
            "mlp",
            fit,
            exempt={"corpus_order": "trained by SGD in corpus order: a shuffled corpus gives other batches"},
        )
    ]


def transformer_cases() -> list[LabelledCase]:
    """The Transformer: a label vector added to the token embeddings at every position (nn/transformer.py, T1)."""
    from scratchgen import TransformerModel

    def fit(texts, labels):
        model = TransformerModel(layers=1, heads=2, embedding=8, context=16, batch_size=4, lr=1e-2, epochs=60,
                                 valid_fraction=0, seed=0)
        return model.fit(texts, labels=labels)

    return [
        LabelledCase(
            "transformer",
            fit,
            exempt={"corpus_order": "trained by SGD in corpus order: a shuffled corpus gives other batches"},
        )
    ]


LABELLED_CASES: list[LabelledCase] = (
    random_cases() + ngram_cases() + grammar_cases() + nn_cases() + mlp_cases() + transformer_cases()
)
