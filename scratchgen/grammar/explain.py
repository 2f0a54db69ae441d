"""Why a grammar gave each token its probability: the prefix probability as the sentence grows, and its parse.

A PCFG's next-token probability is a ratio of prefix probabilities (Jelinek and Lafferty 1991; Stolcke 1995)::

    P(x_t | x_<t) = Pre(x_1..x_t) / Pre(x_1..x_{t-1}),   Pre(u) = sum of P(x) over the sentences x = u..   (1)

so the story of a sentence is how Pre fell as each token arrived: ``prefix_logprob`` = log Pre(x_1..x_t),
read from the incremental parser's state (:meth:`~scratchgen.grammar.earley.EarleyParser.log_prefix`), and
for ``</s>`` log P(x) itself, the sum over all the sentence's derivations. The sentence's most probable
derivation (the Viterbi parse, :meth:`~scratchgen.grammar.GrammarModel.parse`) is given whole: ``parse``
as nested lists ``[label, child, ...]`` (a terminal child is its token), and ``parse_logprob``, its log
probability (below log P(x) when the sentence is ambiguous). :func:`ascii_tree` draws it.

A labelled model with a label explains with that label's grammar (eq. (3) of :mod:`.model`); without one,
Pre is the mixture sum_c P(c) Pre_c, and the parse is the best (label, derivation) pair.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..text import Vocabulary
from .rules import Tree

__all__ = ["ascii_tree", "explain_tokens", "nested"]


def _prefix_logs(model, ids: np.ndarray) -> np.ndarray:
    """log Pre(x_1..x_t) for t = 1..T, then log P(x) (the prefix followed by </s>): (T + 1,)."""
    state = model.initial_state(1)
    stepper = model.prefix_parser()
    out = np.empty(len(ids) + 1)  # (T + 1,)
    for t in range(len(ids)):
        state = model.advance(state, ids[t : t + 1])
        out[t] = stepper.log_prefix(state)[0]  # eq. (1): the sum of the log z of the steps so far
    before = stepper.log_prefix(state)[0]
    out[-1] = before + model.next_logprobs(state)[0, Vocabulary.eos_id]  # log P(x) = log Pre(x) P(</s> | x)
    return out


def nested(tree: Tree | None) -> list | None:
    """A tree as nested lists ``[label, child, ...]`` (terminals as str), built without recursion."""
    if tree is None:
        return None
    root: list = [tree.label]
    stack = [(tree, root)]
    while stack:
        node, out = stack.pop()
        for child in node.children:
            if isinstance(child, Tree):
                item: list = [child.label]
                out.append(item)
                stack.append((child, item))
            else:
                out.append(child)
    return root


def ascii_tree(tree: list | None) -> str:
    """Draw nested lists ``[label, child, ...]`` as an indented ASCII tree, one node a line.

    >>> print(ascii_tree(["S", ["NP", ["Det", "the"], ["N", "cat"]], ["VP", "sat"]]))
    S
    +-- NP
    |   +-- Det 'the'
    |   `-- N 'cat'
    `-- VP 'sat'
    """
    if tree is None:
        return "(no parse: the grammar cannot generate this sentence)"
    lines: list[str] = []
    stack: list = [(tree, "", "", True)]  # (node, indent, branch, is the root)
    while stack:
        node, indent, branch, root = stack.pop()
        if isinstance(node, str):
            lines.append(f"{indent}{branch}{node!r}")
            continue
        label, children = node[0], node[1:]
        if len(children) == 1 and isinstance(children[0], str):  # a pre-terminal on one line
            lines.append(f"{indent}{branch}{label} {children[0]!r}")
            continue
        lines.append(f"{indent}{branch}{label}")
        inner = "" if root else indent + ("    " if branch.startswith("`") else "|   ")
        for i in range(len(children) - 1, -1, -1):  # pushed in reverse: drawn left to right
            stack.append((children[i], inner, "`-- " if i == len(children) - 1 else "+-- ", False))
    return "\n".join(lines)


def explain_tokens(model, ids: np.ndarray, label: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``prefix_logprob`` and a ``why`` line for each token and ``</s>``; ``parse`` and ``parse_logprob``."""
    tokens = model.vocab_.decode(ids)  # an OOV token reads back as <unk>, which no rule produces
    models = model.label_models_
    if models is None:
        prefix = _prefix_logs(model, ids)
        logprob, tree = model.parse(tokens)
    elif label is not None:
        prefix = _prefix_logs(models[label], ids)
        logprob, tree = models[label].parse(tokens)
    else:  # the marginal: Pre = sum_c P(c) Pre_c
        per_label = np.stack([_prefix_logs(m, ids) for m in models])  # (C, T + 1)
        prefix = np.logaddexp.reduce(per_label + model.labels_.log_prior[:, None], axis=0)  # (T + 1,)
        logprob, tree = model.parse(tokens)
    out = []
    for t, value in enumerate(prefix.tolist()):
        what = "P(sentence)" if t == len(ids) else f"Pre(first {t + 1})"
        out.append({"prefix_logprob": value, "why": f"{what} = {math.exp(value):.4g}"})
    return out, {"parse": nested(tree), "parse_logprob": float(logprob)}
