"""The grammar generator behind the shared protocol: :class:`GrammarModel`.

Its distribution is the PCFG's (eq. (3) of :mod:`scratchgen.grammar.rules`): P(x + </s>) = P_G(x), the
inside probability computed exactly by :class:`~scratchgen.grammar.chart.ChartParser`. A sentence the
grammar cannot generate (or with a token outside its terminals, scored as ``<unk>``) has probability 0,
so its log-probability is -inf and so is a corpus cross-entropy that includes it.

**Learning** (``fit``). From plain sentences x^(1..S), expectation-maximisation (inside-outside)::

    p_new(A -> alpha) = sum_s E[count(A -> alpha) | x^(s)] / sum_s E[count(A) | x^(s)]        (1)

with the expected counts of eq. (5) of :mod:`~scratchgen.grammar.outside`; each iteration cannot lower
the training log-likelihood sum_s log P(x^(s)) (Baum's inequality). From trees, eq. (1) with observed
counts: the maximum-likelihood estimate. ``smoothing`` adds a pseudo-count to every rule.

**Stepping** (left to right, as every model): with Pre(x_1..x_t) the prefix probability, the total
probability of the sentences that start with x_1..x_t,

    P(x_t = a | x_<t) = Pre(x_<t a) / Pre(x_<t),      P(</s> | x_<t) = P(x_<t) / Pre(x_<t)          (2)

so the product over a sentence telescopes to P(x) (Pre of the empty prefix is 1), and the decoder's
every control works on the grammar. The state is an incremental Earley parse
(:class:`~scratchgen.grammar.earley.EarleyParser`, Stolcke 1995 with Leo's tail calls): an object array
(B,) of immutable :class:`~scratchgen.grammar.earley.Frame`, which ``take_state`` indexes (rows share
frames; advancing one row never changes another). A step costs the same at any prefix length for the
built-in grammars and for right-recursive ones; its numbers are those of the prefix chart
(eqs. (7)-(8) of :mod:`~scratchgen.grammar.prefix`), which the tests use as the oracle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CorpusError, GrammarError, ModelFileError
from ..model import Corpus, LanguageModel, register_model
from ..progress import Progress
from ..text import UNK, Tokenizer, Vocabulary
from .analysis import analyze
from .builtin import resolve_grammar
from .chart import DEFAULT_MAX_LENGTH, ChartParser
from .compile import compile_grammar
from .earley import EarleyParser
from .outside import expected_counts
from .rules import Grammar, Tree, parse_grammar
from .sampling import DEFAULT_LIMITS, Sampler

__all__ = ["GrammarModel"]


@register_model
class GrammarModel(LanguageModel):
    """A PCFG as a language model: exact scoring, Viterbi parsing, sampling, EM or counting.

    Parameters
    ----------
    grammar : str or Grammar
        Grammar text (see :mod:`scratchgen.grammar.rules`), or a built-in name such as
        ``"builtin:english"``; a Grammar object is stored as its text.
    iterations : int
        Maximum EM iterations in ``fit`` on sentences (0 keeps the grammar's weights).
    tol : float
        EM stops when the log-likelihood gains less than ``tol`` times its magnitude.
    smoothing : float
        Pseudo-count added to every rule's (expected) count in ``fit`` (0: maximum likelihood).
    max_depth, max_expansions, max_tokens : int
        Limits of one sampled derivation (see :mod:`scratchgen.grammar.sampling`).
    max_length : int
        The longest sentence a chart is built for (scoring, parsing, EM; stepping has no limit); a longer one is
        refused with the memory its chart would need (see :class:`~scratchgen.grammar.chart.ChartParser`).
    tokenizer : Tokenizer or None
        Default: word level (terminals are word tokens, each CJK character a token).

    ``GrammarModel.from_grammar(grammar)`` gives a fitted model with the grammar's own weights (no data);
    ``fit`` learns them from sentences (EM) or trees (counting). Learned state: ``grammar_`` (the
    weighted grammar), ``vocab_`` (its terminals), ``parser_`` (its compiled chart parser) and
    ``log_likelihoods_`` (the training log-likelihood before each EM update, and after the last).

    >>> m = GrammarModel.from_grammar("S -> 'a' S [0.25] | 'a' [0.75]")
    >>> round(math.exp(m.logprob(["a", "a"])), 12)       # 0.25 * 0.75
    0.1875
    >>> m.fit([["a"], ["a", "a"]]).grammar_.rules[0].prob    # EM on an unambiguous grammar: 1 / 3
    0.3333333333333333
    """

    def __init__(
        self,
        *,
        grammar: str | Grammar = "builtin:english",
        iterations: int = 20,
        tol: float = 1e-8,
        smoothing: float = 0.0,
        max_depth: int = DEFAULT_LIMITS["max_depth"],
        max_expansions: int = DEFAULT_LIMITS["max_expansions"],
        max_tokens: int = DEFAULT_LIMITS["max_tokens"],
        max_length: int = DEFAULT_MAX_LENGTH,
        tokenizer: Tokenizer | None = None,
    ):
        super().__init__(tokenizer=tokenizer)
        self.grammar = grammar
        self.iterations = iterations
        self.tol = tol
        self.smoothing = smoothing
        self.max_depth = max_depth
        self.max_expansions = max_expansions
        self.max_tokens = max_tokens
        self.max_length = max_length

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        if isinstance(params["grammar"], Grammar):
            params["grammar"] = params["grammar"].to_text()
        return params

    @property
    def tokenizer_(self) -> Tokenizer:
        return self.tokenizer or Tokenizer(level="word")

    # --- learning ------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if (
            isinstance(self.iterations, bool)
            or not isinstance(self.iterations, (int, np.integer))
            or self.iterations < 0
        ):
            raise GrammarError(f"iterations must be an int >= 0, got {self.iterations!r}")
        for name in ("tol", "smoothing"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise GrammarError(f"{name} must be a finite number >= 0, got {v!r}")
        for name in ("max_depth", "max_expansions", "max_tokens", "max_length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise GrammarError(f"{name} must be an int >= 1, got {v!r}")
        if not isinstance(self.grammar, (str, Grammar)):
            raise GrammarError(
                f"grammar must be grammar text, a file, a built-in name or a Grammar, got {type(self.grammar).__name__}"
            )

    def _array_schema(self) -> dict:
        """No arrays: the grammar is saved as text in the header, so any array in the file is refused."""
        return {}

    @classmethod
    def from_grammar(cls, grammar: str | Grammar = "builtin:english", **params) -> GrammarModel:
        """A fitted model that uses the grammar's own weights (no data needed).

        >>> GrammarModel.from_grammar("S -> 'a' [1]").logprob(["a"])
        0.0
        """
        model = cls(grammar=resolve_grammar(grammar), **params)  # saved as its text, never as a file name
        model._check_params()
        model._set_grammar(model._checked_grammar())
        model.log_likelihoods_ = []
        return model

    def _checked_grammar(self) -> Grammar:
        grammar = resolve_grammar(self.grammar)
        analyze(grammar).raise_errors()  # also refuses the terminals <s> and </s> (``<unk>`` is allowed)
        return grammar

    def fit(self, corpus: Corpus, verbose: bool = False) -> GrammarModel:
        """Estimate the rule probabilities: eq. (1) by EM from sentences, by counting from Trees.

        With ``iterations=0`` the grammar's weights are kept (the corpus is only checked); to use them
        without any data, see :meth:`from_grammar`. ``verbose``: show EM's progress on stderr
        (:class:`scratchgen.progress.Progress`).
        """
        self._check_params()
        grammar = self._checked_grammar()
        if isinstance(corpus, str):
            self.tokenize_corpus(corpus)  # raises the shared CorpusError for a bare str
        items = list(corpus)
        if not items:
            raise CorpusError(
                "cannot fit on an empty corpus (GrammarModel.from_grammar uses the grammar's own weights without data)"
            )
        self.log_likelihoods_: list[float] = []
        trees = [x for x in items if isinstance(x, Tree)]
        if len(trees) == len(items):
            grammar = self._count_trees(grammar, trees)
        else:
            grammar = self._em(grammar, self.tokenize_corpus(items), verbose)
        self._set_grammar(grammar)
        return self

    def _set_grammar(self, grammar: Grammar) -> None:
        self.grammar_ = grammar
        self.vocab_ = Vocabulary(t for t in grammar.terminals if t != UNK)  # a terminal '<unk>' is id 0
        self._compile(grammar)

    def _compile(self, grammar: Grammar) -> None:
        """The chart parser and the maps between vocabulary ids and the parser's terminal ids."""
        self.parser_ = ChartParser(grammar, max_length=self.max_length)
        self._earley: EarleyParser | None = None  # the stepping parser, made by _stepper on first use
        self._terminal_of_id = np.full(len(self.vocab_), -1, dtype=np.int64)  # (V,) -1: no terminal
        self._id_of_terminal = np.array(
            [self.vocab_.index(t) if t != UNK else Vocabulary.unk_id for t in grammar.terminals], dtype=np.int64
        )  # (T,)
        self._terminal_of_id[self._id_of_terminal] = np.arange(len(grammar.terminals))

    def _normalise(self, grammar: Grammar, counts: np.ndarray) -> Grammar:
        counts = counts + self.smoothing
        probs = np.array([r.prob for r in grammar.rules])
        for idx in grammar.by_lhs.values():
            total = counts[idx].sum()
            if total > 0:  # a nonterminal never used keeps its weights
                probs[idx] = counts[idx] / total  # eq. (1)
        return grammar.with_probs(probs)

    def _count_trees(self, grammar: Grammar, trees: Sequence[Tree]) -> Grammar:
        index = {(r.lhs, r.rhs): i for i, r in enumerate(grammar.rules)}
        counts = np.zeros(len(grammar.rules))
        for k, tree in enumerate(trees):
            if tree.label != grammar.start:
                raise CorpusError(f"tree {k} has root {tree.label!r}, not the start symbol {grammar.start!r}")
            for lhs, rhs in tree.rules():
                i = index.get((lhs, rhs))
                if i is None:
                    rhs_text = " ".join(repr(str(s)) if type(s) is not str else s for s in rhs) or "''"
                    raise CorpusError(f"tree {k} uses the rule {lhs} -> {rhs_text}, which the grammar does not have")
                counts[i] += 1
        return self._normalise(grammar, counts)

    def _em(self, grammar: Grammar, sentences: list[list[str]], verbose: bool = False) -> Grammar:
        previous = -math.inf
        with Progress(
            total=(self.iterations + 1) * len(sentences), desc="EM", unit="sentences", quiet=not verbose
        ) as progress:
            for it in range(self.iterations + 1):
                compiled = compile_grammar(grammar)
                counts = np.zeros(len(grammar.rules))
                total = 0.0
                for k, sentence in enumerate(sentences):
                    c, lp = expected_counts(compiled, sentence, self.max_length)  # eq. (5) of outside.py
                    if lp == -math.inf:
                        raise CorpusError(
                            f"sentence {k + 1} ({' '.join(sentence)[:60]!r}) cannot be generated by "
                            "the grammar, so EM cannot use it (remove it or extend the grammar)"
                        )
                    counts += c
                    total += lp
                    progress.update(1, **({"pass": it + 1} if k == 0 else {}))
                self.log_likelihoods_.append(total)
                progress.write(f"EM pass {it + 1}: training log-likelihood {total:.4f}")
                if it == self.iterations or total - previous <= self.tol * abs(total):
                    break
                previous = total
                grammar = self._normalise(grammar, counts)
        return grammar

    # --- scoring -------------------------------------------------------------------------------------

    def _parser(self) -> ChartParser:
        self.fitted_vocab()
        return self.parser_

    # --- the stepping interface (incremental prefix probabilities, earley.py) ----------------------------

    def _stepper(self) -> EarleyParser:
        """The incremental prefix parser of the compiled grammar (made on first use, then kept)."""
        compiled = self._parser().compiled
        if self._earley is None or self._earley.cg is not compiled:
            self._earley = EarleyParser(compiled)
        return self._earley

    def initial_state(self, batch_size: int = 1, labels: np.ndarray | None = None) -> np.ndarray:
        return self._stepper().start(batch_size)  # (B,) objects: Earley frames, shared and immutable

    def advance(self, state: np.ndarray, ids: np.ndarray) -> np.ndarray:
        w = self._terminal_of_id[np.asarray(ids, dtype=np.int64)]  # (B,) terminal ids; -1: no rule produces it
        return self._stepper().advance(state, w)

    def next_logprobs(self, state: np.ndarray) -> np.ndarray:
        """log P(next | prefix) = log Pre(prefix + a) - log Pre(prefix): eq. (2) of this module."""
        probs = self._stepper().next_probs(state)  # (B, T+1): terminals, then the end
        out = np.full((len(state), len(self.vocab_)), -np.inf)  # (B, V)
        with np.errstate(divide="ignore"):
            out[:, self._id_of_terminal] = np.log(probs[:, :-1])
            out[:, Vocabulary.eos_id] = np.log(probs[:, -1])
        return out

    def _token_logprobs(self, sequences: Sequence[np.ndarray], labels=None) -> list[np.ndarray]:
        """log P(x_t | x_<t) from prefix probabilities, eq. (2); their sum is log P(x) of the chart.

        The stepping interface run over batches of sequences of similar length (the protocol's default).
        """
        return super()._token_logprobs([self._check_ids(s) for s in sequences], labels)

    def logprob(self, sequence: str | Sequence[str], label: str | None = None) -> float:
        """log P(sentence) by the chart (eqs. (1)-(4) of inside.py): equal to the sum of :meth:`token_logprobs`
        up to rounding, and faster. -inf for a sentence the grammar cannot generate."""
        if label is not None or self.labels_ is not None:
            return super().logprob(sequence, label=label)
        tokens = self.tokenize(sequence)
        return float(self._parser().logprobs([tokens])[0])

    def score(self, corpus: Corpus, labels=None):
        """Cross-entropy and perplexity of a corpus (see :class:`scratchgen.metrics.Score`) from batched charts."""
        if labels is not None or self.labels_ is not None:
            return super().score(corpus, labels=labels)
        return self.score_details(corpus)[0]

    def score_details(self, corpus: Corpus):
        """(:meth:`score`, the log-probability of each sentence): both from one chart a sentence."""
        from ..metrics import Score

        sequences = self.tokenize_corpus(corpus)
        if not sequences:
            raise CorpusError("cannot score an empty corpus")
        vocab = self.fitted_vocab()
        oov = sum(vocab.count_oov(s) for s in sequences)
        logprobs = self._parser().logprobs(sequences)  # (S,)
        score = Score.from_totals(
            logprob=float(logprobs.sum()),
            sequences=len(sequences),
            tokens=sum(len(s) + 1 for s in sequences),
            oov_tokens=oov,
        )
        return score, [float(x) for x in logprobs]

    def sentence_logprobs(self, corpus: Corpus) -> list[float]:
        """log P(sentence) for each sentence of a corpus (-inf for one the grammar cannot generate)."""
        return [float(x) for x in self._parser().logprobs(self.tokenize_corpus(corpus))]

    def parse(self, sentence: str | Sequence[str]) -> tuple[float, Tree | None]:
        """The most probable derivation: (its log-probability, its Tree); (-inf, None) if there is none."""
        return self._parser().viterbi(self.tokenize(sentence))

    # --- sampling ------------------------------------------------------------------------------------

    def sample(self, n: int = 1, seed=None, trees: bool = False, truncate: int | None = None) -> list:
        """``n`` sentences drawn top-down from the grammar (token lists, or (tokens, Tree) pairs).

        A derivation past a limit raises :class:`GrammarError`; :meth:`sampler` streams and skips
        them instead. ``truncate``: cut each sentence after this many tokens (no limit error then).
        """
        return self.sampler().sample(n, seed=seed, trees=trees, truncate=truncate)

    def sampler(self) -> Sampler:
        """The grammar compiled for top-down sampling, with this model's limits."""
        self.fitted_vocab()
        return Sampler(
            self.grammar_, max_depth=self.max_depth, max_expansions=self.max_expansions, max_tokens=self.max_tokens
        )

    # --- files ---------------------------------------------------------------------------------------

    def _save_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"grammar": self.grammar_.to_text(), "log_likelihoods": list(self.log_likelihoods_)}, {}

    def _load_state(self, extra: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        text = extra.get("grammar")
        if not isinstance(text, str):
            raise ModelFileError("its header holds no grammar text")
        try:
            grammar = parse_grammar(text)
            analyze(grammar).raise_errors()
        except GrammarError as e:
            raise ModelFileError(f"its stored grammar is not valid: {e}") from None
        if sorted(t for t in grammar.terminals if t != UNK) != sorted(self.vocab_.to_list()):
            raise ModelFileError("the stored grammar's terminals differ from the stored vocabulary")
        lls = extra.get("log_likelihoods", [])
        if not isinstance(lls, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x <= 1e-9 for x in lls
        ):
            raise ModelFileError("its log_likelihoods are not a list of numbers <= 0")
        self.log_likelihoods_ = [float(x) for x in lls]
        self.grammar_ = grammar
        self._compile(grammar)
