"""Labelled grammars: a label is a start symbol.

A grammar models P(x | c) for a label c by starting its derivations at the nonterminal named c:

    P(x | c) = P_G(c =>* x)             the inside probability of c over the whole sentence        (1)

so :class:`~scratchgen.grammar.model.GrammarModel` learns one set of rule weights per label (EM on that
label's sentences, eq. (1) of :mod:`~scratchgen.grammar.model`) and scores with the chart of each.

A grammar whose start symbol S rewrites only to single nonterminals, ``S -> c_1 [p_1] | ... | c_C [p_C]``,
is a *labelled grammar*: the c_k are its labels and its start rules their prior. Sampling S gives a
sentence together with its label, the first rule of its derivation, and

    P(c) = p(S -> c),      P(x) = sum_c P(c) P(x | c)      (the grammar's own P_G(S =>* x))         (2)

The Bayes-optimal classifier of such a corpus is known exactly: argmax_c log P(x | c) + log P(c), with
both terms from the grammar (:func:`scratchgen.datasets.bayes_optimal`). The built-in grammar
``builtin:labelled`` (three topics: animals, farm, royalty) is one, and
:func:`scratchgen.datasets.labelled_corpus` samples the corpus that scratchgen ships from it.
"""

from __future__ import annotations

from fractions import Fraction
from math import lcm

import numpy as np

from ..errors import GrammarError, LabelError
from .rules import Grammar, Terminal
from .sampling import Sampler

__all__ = ["label_grammar", "prior_counts", "sample_labelled", "start_labels"]


def start_labels(grammar: Grammar) -> dict[str, float]:
    """The labels of a labelled grammar and their prior, eq. (2): ``{c: p(S -> c)}`` in rule order.

    A :class:`GrammarError` unless every rule of the start symbol is ``S -> c`` with one nonterminal c.

    >>> start_labels(Grammar.fromstring("S -> a [0.3] | b [0.7]\\na -> 'x'\\nb -> 'y'"))
    {'a': 0.3, 'b': 0.7}
    """
    out: dict[str, float] = {}
    for i in grammar.by_lhs[grammar.start]:
        rule = grammar.rules[i]
        if len(rule.rhs) != 1 or isinstance(rule.rhs[0], Terminal) or rule.rhs[0] == grammar.start:
            raise GrammarError(
                f"this grammar is not labelled: its start symbol {grammar.start!r} has the rule {rule}, and a "
                "labelled grammar's start rules are each one other nonterminal (S -> label [P(label)])"
            )
        out[rule.rhs[0]] = rule.prob
    return out


def label_grammar(grammar: Grammar, label: str) -> Grammar:
    """The grammar with start symbol ``label`` (same rules and weights): P(x | label) of eq. (1).

    A :class:`LabelError` that lists the start symbols available when no nonterminal is named ``label``.
    """
    if label not in grammar.by_lhs:
        try:
            known = list(start_labels(grammar))
            what = "the grammar's labels are"
        except GrammarError:
            known = grammar.nonterminals
            what = "its nonterminals are"
        listed = ", ".join(repr(k) for k in known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
        raise LabelError(
            f"label {label!r} names no nonterminal of the grammar (a label is a start symbol): {what} {listed}"
        )
    return Grammar(grammar.rules, label)


def prior_counts(prior: dict[str, float], max_denominator: int = 10_000) -> dict[str, int]:
    """Integer counts proportional to a prior (a :class:`~scratchgen.labels.LabelSet` keeps counts).

    Each probability is read as the nearest fraction with a denominator of at most ``max_denominator``.

    >>> prior_counts({"animals": 0.4, "farm": 0.35, "royalty": 0.25})
    {'animals': 8, 'farm': 7, 'royalty': 5}
    """
    fractions = {c: Fraction(p).limit_denominator(max_denominator) for c, p in prior.items()}
    if any(f <= 0 for f in fractions.values()):
        raise LabelError(f"every label needs a prior > 0, got {prior}")
    common = lcm(*(f.denominator for f in fractions.values()))
    counts = {c: int(f * common) for c, f in fractions.items()}
    g = np.gcd.reduce(list(counts.values()))
    return {c: int(n // g) for c, n in counts.items()}


def sample_labelled(grammar: Grammar, n: int, seed=None, **limits) -> tuple[list[str], list[list[str]]]:
    """``n`` (label, sentence) pairs drawn from a labelled grammar: eq. (2), the label first.

    The derivation starts at S, so the label of a sentence is the first rule its derivation uses and
    the labels follow the prior p(S -> c). ``limits``: those of :class:`~scratchgen.grammar.Sampler`; a
    derivation past one raises :class:`GrammarError`. Same seed, same pairs.

    >>> g = Grammar.fromstring("S -> a [0.5] | b [0.5]\\na -> 'x'\\nb -> 'y' 'y'")
    >>> labels, sentences = sample_labelled(g, 4, seed=0)
    >>> all((c, x) in (("a", ["x"]), ("b", ["y", "y"])) for c, x in zip(labels, sentences))
    True
    """
    start_labels(grammar)  # refuses a grammar that is not labelled
    labels, sentences = [], []
    for tokens, tree in Sampler(grammar, **limits).sample(n, seed=seed, trees=True):
        labels.append(tree.children[0].label)  # the root's only child: S -> c
        sentences.append(tokens)
    return labels, sentences
