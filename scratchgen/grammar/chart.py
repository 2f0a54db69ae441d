"""Exact scoring of sentences: :class:`ChartParser`, one grammar's entry to every chart algorithm.

A reading order, each module the size of one idea:

1. :mod:`~scratchgen.grammar.reference`: inside, Viterbi and prefix probabilities as a textbook writes
   them (plain loops, dicts, one sentence). The numbers below equal its numbers.
2. :mod:`~scratchgen.grammar.compile`: the :class:`~scratchgen.grammar.compile.CompiledGrammar`, made once
   per grammar: binary rules, E = P(A =>* '') (eq. (1)), the unit matrix U (eq. (2)) and (I - U)^-1, the
   left-corner closure (eq. (6)).
3. :mod:`~scratchgen.grammar.inside`: the inside chart, eqs. (3)-(4), batched and rescaled; P(x) = beta[0, n, S].
4. :mod:`~scratchgen.grammar.prefix`: prefix probabilities and the next-token distribution, eqs. (7)-(8).
5. :mod:`~scratchgen.grammar.outside`: expected rule counts by inside-outside, eq. (5) (EM's E step).
6. :mod:`~scratchgen.grammar.viterbi`: the best tree, eqs. (1)-(4) in the (max, +) semiring.

(Left to right, one token at a time, the stepping interface uses :mod:`~scratchgen.grammar.earley`
instead of eq. (8): the same numbers without a chart.)

Each of those is a function of the compiled grammar; :class:`ChartParser` holds one compiled grammar and
its ``max_length``, and orders the work: guards first, then a chart.

**Guards.** A chart holds (n+1)^2 (N + 2R) numbers, so memory grows as the square of a sentence's length.
Before any chart is built, :func:`~scratchgen.grammar.prefix.viable` rules out a sentence with a token no
rule produces, a first token no sentence starts with, or (for a long sentence) a prefix of 64, 128, ...
tokens whose prefix probability is 0: each costs a chart of the prefix's length only, and the sentence
scores -inf. A sentence that passes and is longer than ``max_length`` (``--max-length``) is refused with
the memory its chart would need (:func:`~scratchgen.grammar.inside.check_length`,
:func:`scratchgen.resources.check_memory`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from ..errors import GrammarError
from . import inside, outside, prefix, viterbi
from .compile import CompiledGrammar, compile_grammar
from .inside import DEFAULT_MAX_LENGTH
from .prefix import PREFIX_CHECK
from .rules import Grammar, Tree

__all__ = ["DEFAULT_MAX_LENGTH", "PREFIX_CHECK", "ChartParser"]


class ChartParser:
    """A grammar compiled for exact scoring, Viterbi parsing and inside-outside counts.

    >>> g = Grammar.fromstring("S -> S S [0.4] | 'a' [0.6]")
    >>> p = ChartParser(g)
    >>> round(math.exp(p.logprob(["a", "a"])), 12)   # one tree: 0.4 * 0.6 * 0.6
    0.144
    >>> round(math.exp(p.logprob(["a", "a", "a"])), 12)   # two trees: 2 * 0.4^2 * 0.6^3
    0.06912
    """

    def __init__(self, grammar: Grammar, max_length: int = DEFAULT_MAX_LENGTH):
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
            raise GrammarError(f"max_length must be an int >= 1, got {max_length!r}")
        self.grammar = grammar
        self.max_length = int(max_length)
        self.compiled: CompiledGrammar = compile_grammar(grammar)

    @cached_property
    def viterbi_tables(self) -> viterbi.ViterbiTables:
        """The (max, +) tables of :mod:`~scratchgen.grammar.viterbi`, made on the first parse."""
        return viterbi.viterbi_tables(self.compiled)

    @property
    def labels(self) -> tuple:
        """Names of the compiled symbols (the grammar's nonterminals first)."""
        return self.compiled.labels

    @property
    def start(self) -> int:
        """The start symbol's index among :attr:`labels`."""
        return self.compiled.start

    def terminal_ids(self, tokens: Sequence[str]) -> np.ndarray:
        """Indices of tokens among the grammar's terminals (-1 for a token the grammar never produces)."""
        return self.compiled.terminal_ids(tokens)

    # --- guards ----------------------------------------------------------------------------------------

    def viable(self, w: np.ndarray) -> bool:
        """False when some prefix of ``w`` (terminal ids) surely has probability 0 (see prefix.viable)."""
        return prefix.viable(self.compiled, w, self.max_length)

    def check_length(self, n: int, batch: int = 1, which: str = "a sentence") -> None:
        """Refuse a chart for a sentence longer than ``max_length`` or larger than the memory allowed."""
        inside.check_length(self.compiled, n, self.max_length, batch, which)

    def batch_size(self, n: int, limit: int = 64, budget_bytes: float = 2e8) -> int:
        """How many sentences of length n share one chart (see inside.batch_size)."""
        return inside.batch_size(self.compiled, n, limit, budget_bytes)

    # --- inside: eqs. (1)-(4) --------------------------------------------------------------------------

    def _empty_logprob(self) -> float:
        e = self.compiled.E[self.compiled.start]  # eq. (1): P(S =>* '')
        return math.log(e) if e > 0 else -math.inf

    def logprob(self, tokens: Sequence[str]) -> float:
        """log P(tokens) by eqs. (1)-(4): the sum over every derivation; -inf if none exists."""
        cg = self.compiled
        w = cg.terminal_ids(tokens)
        n = len(w)
        if n == 0:
            return self._empty_logprob()
        if not prefix.viable(cg, w, self.max_length):  # a prefix surely has probability 0: no chart built
            return -math.inf
        C, log_s = inside.chart_batch(cg, w[None, :], np.array([n]), self.max_length)
        z = C[n, 0, 0, cg.start]
        return math.log(z) - n * float(log_s[0]) if z > 0 else -math.inf

    def logprobs(self, sentences: Sequence[Sequence[str]], batch: int = 64) -> np.ndarray:
        """log P of many sentences: sentences of similar length share one batched chart. Shape (S,).

        A sentence ruled out by :meth:`viable` gets -inf without a chart; one longer than ``max_length``
        is refused (:meth:`check_length`).
        """
        cg = self.compiled
        ids = [cg.terminal_ids(s) for s in sentences]
        out = np.full(len(ids), -np.inf)
        alive = [k for k, x in enumerate(ids) if self.viable(x)]
        for k in alive:
            self.check_length(len(ids[k]), which=f"sentence {k + 1}" if len(ids) > 1 else "the sentence")
        order = np.array(alive, dtype=np.int64)[np.argsort([len(ids[k]) for k in alive], kind="stable")]
        k = 0
        while k < len(order):
            longest = len(ids[order[min(k + batch, len(order)) - 1]])  # sorted: the last is the longest
            rows = order[k : k + self.batch_size(longest, batch)]
            k += len(rows)
            out[rows] = self._batch_logprobs([ids[r] for r in rows])
        return out

    def _batch_logprobs(self, ids: list[np.ndarray]) -> np.ndarray:
        """log P of a few viable sentences (terminal ids) from one padded chart: (B,)."""
        cg = self.compiled
        lengths = np.array([len(x) for x in ids])
        n = int(lengths.max())
        if n == 0:
            return np.full(len(ids), self._empty_logprob())
        w = np.full((len(ids), n), -1, dtype=np.int64)  # (B, n) padded with -1
        for b, x in enumerate(ids):
            w[b, : lengths[b]] = x
        C, log_s = inside.chart_batch(cg, w, lengths, self.max_length)
        z = C[lengths, np.arange(len(ids)), 0, cg.start]  # (B,)
        with np.errstate(divide="ignore"):
            lp = np.where(z > 0, np.log(np.where(z > 0, z, 1.0)) - lengths * log_s, -np.inf)
        lp[lengths == 0] = self._empty_logprob()
        return lp

    # --- the other algorithms --------------------------------------------------------------------------

    def next_token_probs(self, w: np.ndarray) -> np.ndarray:
        """P(next = a | prefix) for every terminal a, then P(end | prefix): (B, T+1) from prefixes (B, t)."""
        return prefix.next_token_probs(self.compiled, w, self.max_length)

    def expected_counts(self, tokens: Sequence[str]) -> tuple[np.ndarray, float]:
        """Expected uses of each original rule in a derivation of ``tokens``, and log P(tokens) (eq. (5))."""
        return outside.expected_counts(self.compiled, tokens, self.max_length)

    def viterbi(self, tokens: Sequence[str]) -> tuple[float, Tree | None]:
        """The most probable derivation of ``tokens``: (log-probability, Tree); (-inf, None) if none."""
        return viterbi.viterbi(self.compiled, self.viterbi_tables, tokens, self.max_length)
