"""The grammar generator behind the shared protocol: :class:`GrammarModel`.

Its distribution is the PCFG's (eq. (3) of :mod:`scratchgen.grammar.rules`): P(x + </s>) = P_G(x), the
inside probability computed exactly by :class:`~scratchgen.grammar.chart.ChartParser`. A sentence the
grammar cannot generate (or with a token outside its terminals, scored as ``<unk>``) has probability 0,
so its log-probability is -inf and so is a corpus cross-entropy that includes it.

**Learning** (``fit``). From plain sentences x^(1..S), expectation-maximisation (inside-outside)::

    p_new(A -> alpha) = sum_s E[count(A -> alpha) | x^(s)] / sum_s E[count(A) | x^(s)]        (1)

with the expected counts of eq. (5) of :mod:`~scratchgen.grammar.outside`; each iteration cannot lower
the training log-likelihood sum_s log P(x^(s)) (Baum's inequality). From trees, eq. (1) with observed
counts: the maximum-likelihood estimate. ``smoothing`` adds a pseudo-count k to every rule, and
``prior_weight`` w spreads w pseudo-counts over each nonterminal's rules in proportion to the grammar's own
weights p_0 (the grammar as written is the prior guess, a Dirichlet prior with mean p_0):

    p_new(A -> alpha) = (E[count(A -> alpha)] + k + w p_0(A -> alpha)) / (E[count(A)] + k n_A + w)        (1')

with n_A the number of rules of A; k = w = 0 is eq. (1). A rule the data never uses keeps a share of w.

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
**Labels** (``fit(corpus, labels=...)``, :mod:`~scratchgen.grammar.labelled`). A label c names a start
symbol: the nonterminal called c. Each label has its own rule weights, learned by eq. (1) on its own
sentences with c as the start symbol, and so its own compiled grammar and chart:

    P(x | c) = P_{G_c}(c =>* x),     p_c(A -> alpha) by eq. (1) on the sentences labelled c          (3)

EM for label c starts from the grammar's weights (the shared initialisation), so a nonterminal that
label c's sentences never use keeps the grammar's weights, and a label with few sentences moves only the
weights its sentences bear on. With ``prior_weight`` w > 0 (eq. (1')) a rule that label c's sentences
never use keeps a share of the grammar's weight instead of 0, so a sentence of label c that uses a word
its training sentences lacked still has P(x | c) > 0: the label borrows from the grammar as written
until its own data outweighs w. ``smoothing`` adds its flat pseudo-count per label as it does unlabelled.
Scoring, stepping and sampling of a labelled model dispatch each sentence to its label's unlabelled
model (``label_models_``): eq. (3) is the unlabelled model of that label, exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import CorpusError, GrammarError, LabelError, ModelFileError
from ..labels import LabelSet, check_label_name
from ..model import Corpus, LanguageModel, register_model
from ..progress import Progress
from ..schema import ArraySpec
from ..text import UNK, Tokenizer, Vocabulary
from .analysis import analyze
from .builtin import resolve_grammar
from .chart import DEFAULT_MAX_LENGTH, ChartParser
from .compile import compile_grammar
from .earley import EarleyParser
from .labelled import label_grammar
from .outside import expected_counts_batch
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
    prior_weight : float
        Pseudo-counts a nonterminal's rules share in proportion to the grammar's own weights in ``fit``
        (eq. (1'); 0: none). Keeps the rules a label's sentences never use possible.
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
    A labelled model (``fit(corpus, labels=...)`` or ``from_grammar(grammar, labels=...)``) also has
    ``labels_`` and ``label_models_``: one unlabelled GrammarModel a label, whose start symbol is the
    label (eq. (3)); its ``grammar_`` is the grammar as given, and its ``log_likelihoods_`` add up the labels'.

    >>> m = GrammarModel.from_grammar("S -> 'a' S [0.25] | 'a' [0.75]")
    >>> round(math.exp(m.logprob(["a", "a"])), 12)       # 0.25 * 0.75
    0.1875
    >>> m.fit([["a"], ["a", "a"]]).grammar_.rules[0].prob    # EM on an unambiguous grammar: 1 / 3
    0.3333333333333333
    """

    #: One unlabelled model a label (eq. (3)), in the order of ``labels_.names``; None when unlabelled.
    label_models_: list[GrammarModel] | None = None

    def __init__(
        self,
        *,
        grammar: str | Grammar = "builtin:english",
        iterations: int = 20,
        tol: float = 1e-8,
        smoothing: float = 0.0,
        prior_weight: float = 0.0,
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
        self.prior_weight = prior_weight
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
        for name in ("tol", "smoothing", "prior_weight"):
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
        """The grammar is saved as text in the header. Unlabelled: no arrays, so any array is refused.
        Labelled: ``label_probs`` (C, rules), the rule probabilities of each label (checked per
        left-hand side when loaded)."""
        if self.labels_ is None:
            return {}
        return {"label_probs": ArraySpec((len(self.labels_), None), low=0.0, high=1.0)}

    @classmethod
    def from_grammar(cls, grammar: str | Grammar = "builtin:english", labels=None, **params) -> GrammarModel:
        """A fitted model that uses the grammar's own weights (no data needed).

        ``labels``: a labelled model whose label c starts at the nonterminal c with the grammar's weights
        (eq. (3)): a sequence of label names (a uniform prior) or a mapping ``{label: count}`` (the prior
        P(c) proportional to the counts). For a labelled grammar,
        :func:`~scratchgen.grammar.labelled.start_labels` and
        :func:`~scratchgen.grammar.labelled.prior_counts` give its own labels and prior.

        >>> GrammarModel.from_grammar("S -> 'a' [1]").logprob(["a"])
        0.0
        >>> m = GrammarModel.from_grammar("S -> a | b\\na -> 'x' [0.5] | '' [0.5]\\nb -> 'x'", labels={"a": 1, "b": 3})
        >>> round(math.exp(m.logprob(["x"], label="a")), 12), round(math.exp(m.logprob(["x"])), 12)   # .25*.5+.75*1
        (0.5, 0.875)
        """
        model = cls(grammar=resolve_grammar(grammar), **params)  # saved as its text, never as a file name
        model._check_params()
        grammar = model._checked_grammar()
        model.log_likelihoods_ = []
        if labels is None:
            model.labels_ = None
            model._set_grammar(grammar)
            return model
        if isinstance(labels, str):
            raise LabelError("labels= takes label names (a list) or {label: count}, not one str")
        counts = labels if isinstance(labels, dict) else dict.fromkeys(labels, 1)
        names = sorted(check_label_name(c) for c in counts)
        model.labels_ = LabelSet(tuple(names), tuple(counts[c] for c in names))
        model._set_labelled(grammar, [model._label_model(label_grammar(grammar, c)) for c in names])
        return model

    def _label_model(self, grammar: Grammar) -> GrammarModel:
        """An unlabelled model with this model's settings whose weights are those of ``grammar``."""
        return GrammarModel.from_grammar(grammar, **self._shared_params())

    def _checked_grammar(self) -> Grammar:
        grammar = resolve_grammar(self.grammar)
        analyze(grammar).raise_errors()  # also refuses the terminals <s> and </s> (``<unk>`` is allowed)
        return grammar

    def fit(self, corpus: Corpus, labels=None, verbose: bool = False) -> GrammarModel:
        """Estimate the rule probabilities: eq. (1) by EM from sentences, by counting from Trees.

        With ``iterations=0`` the grammar's weights are kept (the corpus is only checked); to use them
        without any data, see :meth:`from_grammar`. ``verbose``: show EM's progress on stderr
        (:class:`scratchgen.progress.Progress`). ``labels`` (one a sentence): each label names a
        start symbol and gets its own weights, eq. (3), fitted on its own sentences (or trees rooted at it).
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
        ids = self._fit_labels(labels, len(items))
        if ids is not None:
            return self._fit_labelled(grammar, items, ids, verbose)
        self.log_likelihoods_: list[float] = []
        trees = [x for x in items if isinstance(x, Tree)]
        if len(trees) == len(items):
            grammar = self._count_trees(grammar, trees)
        else:
            grammar = self._em(grammar, self.tokenize_corpus(items), verbose)
        self._set_grammar(grammar)
        return self

    def _fit_labelled(self, grammar: Grammar, items: list, ids: np.ndarray, verbose: bool) -> GrammarModel:
        """Eq. (3): one unlabelled model a label, fitted on that label's sentences from start symbol c."""
        assert self.labels_ is not None
        grammars = [label_grammar(grammar, c) for c in self.labels_.names]  # LabelError for a label no rule has
        models = []
        for c, g in enumerate(grammars):
            model = GrammarModel(grammar=g, **self._shared_params())
            models.append(model.fit([x for x, k in zip(items, ids) if k == c], verbose=verbose))
        self._set_labelled(grammar, models)
        passes = max(len(m.log_likelihoods_) for m in models)
        # A label that converged early contributes its last value to the later passes.
        self.log_likelihoods_ = [
            float(sum(m.log_likelihoods_[min(i, len(m.log_likelihoods_) - 1)] for m in models if m.log_likelihoods_))
            for i in range(passes)
        ]
        return self

    def _shared_params(self) -> dict[str, Any]:
        """The constructor's arguments but the grammar: what each label's model shares with this one."""
        return {k: v for k, v in self.get_params().items() if k != "grammar"} | {"tokenizer": self.tokenizer}

    def _set_labelled(self, grammar: Grammar, models: list[GrammarModel]) -> None:
        self.grammar_ = grammar
        self.vocab_ = Vocabulary(t for t in grammar.terminals if t != UNK)  # the same in every label's model
        self.label_models_ = models

    def _set_grammar(self, grammar: Grammar) -> None:
        self.grammar_ = grammar
        self.vocab_ = Vocabulary(t for t in grammar.terminals if t != UNK)  # a terminal '<unk>' is id 0
        self.label_models_ = None
        self._compile(grammar)

    def _compile(self, grammar: Grammar) -> None:
        """The chart parser and the maps between vocabulary ids and the parser's terminal ids."""
        self.parser_ = ChartParser(grammar, max_length=self.max_length)
        self._earley: EarleyParser | None = None  # the stepping parser, made by prefix_parser on first use
        self._terminal_of_id = np.full(len(self.vocab_), -1, dtype=np.int64)  # (V,) -1: no terminal
        self._id_of_terminal = np.array(
            [self.vocab_.index(t) if t != UNK else Vocabulary.unk_id for t in grammar.terminals], dtype=np.int64
        )  # (T,)
        self._terminal_of_id[self._id_of_terminal] = np.arange(len(grammar.terminals))

    def _normalise(self, grammar: Grammar, counts: np.ndarray, prior: np.ndarray) -> Grammar:
        """Eq. (1') from the (expected) counts; ``prior`` holds p_0, the weights fit started from."""
        counts = counts + self.smoothing + self.prior_weight * prior
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
        return self._normalise(grammar, counts, np.array([r.prob for r in grammar.rules]))

    def _em(self, grammar: Grammar, sentences: list[list[str]], verbose: bool = False) -> Grammar:
        """Inside-outside: each pass one batched E step over the corpus (eq. (6) of outside.py), then the M step."""
        prior = np.array([r.prob for r in grammar.rules])  # p_0 of eq. (1'): the weights EM starts from
        previous = -math.inf
        with Progress(
            total=(self.iterations + 1) * len(sentences), desc="EM", unit="sentences", quiet=not verbose
        ) as progress:
            for it in range(self.iterations + 1):
                compiled = compile_grammar(grammar)
                counts, logprobs = expected_counts_batch(compiled, sentences, self.max_length, progress)
                if not np.isfinite(logprobs).all():
                    k = int(np.flatnonzero(~np.isfinite(logprobs))[0])
                    raise CorpusError(
                        f"sentence {k + 1} ({' '.join(sentences[k])[:60]!r}) cannot be generated by "
                        "the grammar, so EM cannot use it (remove it or extend the grammar)"
                    )
                total = float(logprobs.sum())
                self.log_likelihoods_.append(total)
                progress.write(f"EM pass {it + 1}: training log-likelihood {total:.4f}")
                if it == self.iterations or total - previous <= self.tol * abs(total):
                    break
                previous = total
                grammar = self._normalise(grammar, counts, prior)
        return grammar

    # --- scoring -------------------------------------------------------------------------------------

    def _parser(self) -> ChartParser:
        self.fitted_vocab()
        if self.label_models_ is not None:
            raise LabelError("a labelled GrammarModel has one chart parser a label (label_models_[c].parser_)")
        return self.parser_

    def _chart_logprobs(self, sequences: list[list[str]], labels: np.ndarray | None = None) -> np.ndarray:
        """log P(x) of each token sequence by the chart, shape (S,).

        Labelled: log P(x | c) of eq. (3) with c the label id of each sequence (``labels``, shape (S,)),
        or without labels the marginal log sum_c P(c) P(x | c) (eq. (2) of :mod:`scratchgen.labels`).
        """
        models = self.label_models_
        if models is None:
            return self._parser().logprobs(sequences)
        assert self.labels_ is not None
        if labels is None:
            per_label = np.stack([m._chart_logprobs(sequences) for m in models], axis=1)  # (S, C)
            return np.logaddexp.reduce(per_label + self.labels_.log_prior, axis=1)  # (S,)
        out = np.empty(len(sequences))  # (S,)
        for c, model in enumerate(models):
            rows = np.flatnonzero(labels == c)
            if len(rows):
                out[rows] = model._chart_logprobs([sequences[r] for r in rows])
        return out

    # --- the stepping interface (incremental prefix probabilities, earley.py) ----------------------------

    def prefix_parser(self) -> EarleyParser:
        """The incremental prefix parser of the compiled grammar (made on first use, then kept).

        Its terminal ids are the grammar's (``grammar_.terminals``), not the vocabulary's: map token ids
        with :meth:`terminal_ids` first.
        """
        compiled = self._parser().compiled
        if self._earley is None or self._earley.cg is not compiled:
            self._earley = EarleyParser(compiled)
        return self._earley

    def initial_state(self, batch_size: int = 1, labels: np.ndarray | None = None) -> np.ndarray | _LabelledState:
        self.fitted_vocab()
        if self.label_models_ is not None:
            return self._labelled_initial_state(batch_size, labels)
        return self.prefix_parser().start(batch_size)  # (B,) objects: Earley frames, shared and immutable

    def advance(self, state, ids: np.ndarray):
        if isinstance(state, _LabelledState):
            return state.map(self.label_models_, lambda m, part, rows: m.advance(part, np.asarray(ids)[rows]))
        return self.prefix_parser().advance(state, self.terminal_ids(ids))

    def terminal_ids(self, ids) -> np.ndarray:
        """The prefix parser's terminal id of each vocabulary id (same shape); -1 where no rule produces it."""
        return self._terminal_of_id[np.asarray(ids, dtype=np.int64)]

    def next_logprobs(self, state) -> np.ndarray:
        """log P(next | prefix) = log Pre(prefix + a) - log Pre(prefix): eq. (2) of this module."""
        if isinstance(state, _LabelledState):
            return self._labelled_next_logprobs(state)
        probs = self.prefix_parser().next_probs(state)  # (B, T+1): terminals, then the end
        out = np.full((len(state), len(self.vocab_)), -np.inf)  # (B, V)
        with np.errstate(divide="ignore"):
            out[:, self._id_of_terminal] = np.log(probs[:, :-1])
            out[:, Vocabulary.eos_id] = np.log(probs[:, -1])
        return out

    def take_state(self, state, rows: np.ndarray):
        if isinstance(state, _LabelledState):
            return state.take(self.label_models_, np.asarray(rows, dtype=np.int64))
        return super().take_state(state, rows)

    # A labelled state is a thin dispatch over the unlabelled one: the rows of label c are stepped
    # together by label c's model, whatever its state is (eq. (3)).

    def _labelled_initial_state(self, batch_size: int, labels: np.ndarray | None) -> _LabelledState:
        assert self.labels_ is not None and self.label_models_ is not None
        if labels is None:
            raise LabelError(
                f"this labelled GrammarModel needs a label for each sequence (it knows {', '.join(self.labels_.names)})"
            )
        ids = np.asarray(labels, dtype=np.int64).reshape(-1)  # (B,)
        if len(ids) != batch_size or (ids.size and (ids.min() < 0 or ids.max() >= len(self.labels_))):
            raise LabelError(f"initial_state needs {batch_size} label ids from 0 to {len(self.labels_) - 1}")
        counts = np.bincount(ids, minlength=len(self.label_models_))  # (C,) rows of each label
        parts = tuple(m.initial_state(int(k)) if k else None for m, k in zip(self.label_models_, counts))
        return _LabelledState(ids, parts)

    def _labelled_next_logprobs(self, state: _LabelledState) -> np.ndarray:
        assert self.label_models_ is not None
        out = np.empty((len(state.labels), len(self.vocab_)))  # (B, V)
        for c, (model, part) in enumerate(zip(self.label_models_, state.parts)):
            if part is not None:
                out[state.rows(c)] = model.next_logprobs(part)  # (B_c, V) the same vocabulary in every label
        return out

    def _token_logprobs(self, sequences: Sequence[np.ndarray], labels=None) -> list[np.ndarray]:
        """log P(x_t | x_<t) from prefix probabilities, eq. (2); their sum is log P(x) of the chart.

        The stepping interface run over batches of sequences of similar length (the protocol's default).
        Labelled: the sequences of label c are scored by label c's model (eq. (3)).
        """
        sequences = [self._check_ids(s) for s in sequences]
        if labels is None or self.label_models_ is None:
            return super()._token_logprobs(sequences, labels)
        out: list[np.ndarray] = [np.empty(0)] * len(sequences)
        for c, model in enumerate(self.label_models_):
            rows = np.flatnonzero(labels == c)
            for r, lp in zip(rows, model._token_logprobs([sequences[r] for r in rows])):
                out[r] = lp
        return out

    def logprob(self, sequence: str | Sequence[str], label: str | None = None) -> float:
        """log P(sentence) by the chart (eqs. (1)-(4) of inside.py): equal to the sum of :meth:`token_logprobs`
        up to rounding, and faster. -inf for a sentence the grammar cannot generate. Labelled: log P(x | label)
        of eq. (3), or the marginal over the labels without one."""
        tokens = self.tokenize(sequence)
        ids = self._label_ids(None if label is None else [label], 1)
        return float(self._chart_logprobs([tokens], ids)[0])

    def score(self, corpus: Corpus, labels=None):
        """Cross-entropy and perplexity of a corpus (see :class:`scratchgen.metrics.Score`) from batched charts.

        ``labels`` (a labelled model): one label, or one a sentence; without them, the marginal."""
        return self.score_details(corpus, labels)[0]

    def score_details(self, corpus: Corpus, labels=None):
        """(:meth:`score`, the log-probability of each sentence): both from one chart a sentence."""
        from ..metrics import Score

        sequences = self.tokenize_corpus(corpus)
        if not sequences:
            raise CorpusError("cannot score an empty corpus")
        vocab = self.fitted_vocab()
        oov = sum(vocab.count_oov(s) for s in sequences)
        logprobs = self._chart_logprobs(sequences, self._label_ids(labels, len(sequences)))  # (S,)
        score = Score.from_totals(
            logprob=float(logprobs.sum()),
            sequences=len(sequences),
            tokens=sum(len(s) + 1 for s in sequences),
            oov_tokens=oov,
        )
        return score, [float(x) for x in logprobs]

    def sentence_logprobs(self, corpus: Corpus, labels=None) -> list[float]:
        """log P(sentence) for each sentence of a corpus (-inf for one the grammar cannot generate)."""
        sequences = self.tokenize_corpus(corpus)
        return [float(x) for x in self._chart_logprobs(sequences, self._label_ids(labels, len(sequences)))]

    def _label_logprobs(self, ids: list[np.ndarray]) -> np.ndarray:
        """log P(x | c) of each id sequence under each label, (n, C), by the charts (for ``classify``)."""
        assert self.label_models_ is not None
        sequences = [self.vocab_.decode(self._check_ids(s)) for s in ids]  # an OOV id reads back as <unk>
        return np.stack([m._chart_logprobs(sequences) for m in self.label_models_], axis=1)

    def parse(self, sentence: str | Sequence[str], label: str | None = None) -> tuple[float, Tree | None]:
        """The most probable derivation: (its log-probability, its Tree); (-inf, None) if there is none.

        Labelled: the derivation from the label's start symbol, or without a label the most probable
        (label, derivation) pair, scored log P(c) + log P(tree | c)."""
        if self.label_models_ is None:
            self._label_ids(None if label is None else [label], 1)  # a label here is an error
            return self._parser().viterbi(self.tokenize(sentence))
        assert self.labels_ is not None
        if label is not None:
            return self.label_models_[self.labels_.id(label)].parse(sentence)
        best: tuple[float, Tree | None] = (-math.inf, None)
        for model, log_prior in zip(self.label_models_, self.labels_.log_prior):
            lp, tree = model.parse(sentence)
            if tree is not None and lp + log_prior > best[0]:
                best = (float(lp + log_prior), tree)
        return best

    def _explain(self, ids: np.ndarray, label: int | None = None):
        """The prefix probability after each token and the Viterbi parse: see :mod:`.explain`."""
        from .explain import explain_tokens

        return explain_tokens(self, self._check_ids(ids), label)

    # --- sampling ------------------------------------------------------------------------------------

    def sample(
        self, n: int = 1, seed=None, trees: bool = False, truncate: int | None = None, label: str | None = None
    ) -> list:
        """``n`` sentences drawn top-down from the grammar (token lists, or (tokens, Tree) pairs).

        A derivation past a limit raises :class:`GrammarError`; :meth:`sampler` streams and skips
        them instead. ``truncate``: cut each sentence after this many tokens (no limit error then).
        Labelled: from the label's start symbol, or without a label each sentence's label drawn
        from the prior first.
        """
        models = self.label_models_
        if models is None or label is not None:
            return self.sampler(label).sample(n, seed=seed, trees=trees, truncate=truncate)
        assert self.labels_ is not None
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        drawn = rng.choice(len(models), size=n, p=np.exp(self.labels_.log_prior))  # (n,) c ~ P(c)
        out: list = [None] * n
        for c, model in enumerate(models):
            rows = np.flatnonzero(drawn == c)
            for r, x in zip(rows, model.sample(len(rows), seed=rng, trees=trees, truncate=truncate)):
                out[r] = x
        return out

    def sampler(self, label: str | None = None) -> Sampler:
        """The grammar compiled for top-down sampling, with this model's limits (a labelled model: the label's)."""
        self.fitted_vocab()
        if self.label_models_ is not None:
            assert self.labels_ is not None
            if label is None:
                raise LabelError(f"a labelled GrammarModel's sampler is a label's: give one of {self.labels_.names}")
            return self.label_models_[self.labels_.id(label)].sampler()
        self._label_ids(None if label is None else [label], 1)  # a label on an unlabelled model is an error
        return Sampler(
            self.grammar_, max_depth=self.max_depth, max_expansions=self.max_expansions, max_tokens=self.max_tokens
        )

    # --- files ---------------------------------------------------------------------------------------

    def _save_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        extra = {"grammar": self.grammar_.to_text(), "log_likelihoods": list(self.log_likelihoods_)}
        if self.label_models_ is None:
            return extra, {}
        probs = np.array([[r.prob for r in m.grammar_.rules] for m in self.label_models_])  # (C, rules)
        return extra, {"label_probs": probs}

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
        if self.labels_ is not None:
            self._set_labelled(grammar, self._load_label_models(grammar, arrays["label_probs"]))
            return
        self.grammar_ = grammar
        self._compile(grammar)

    def _load_label_models(self, grammar: Grammar, probs: np.ndarray) -> list[GrammarModel]:
        """Each label's model from its row of rule probabilities (C, rules), checked against eq. (1) of rules.py."""
        assert self.labels_ is not None
        if probs.shape[1] != len(grammar.rules):
            raise ModelFileError(f"label_probs has {probs.shape[1]} columns for {len(grammar.rules)} rules")
        models = []
        for name, row in zip(self.labels_.names, probs):
            for lhs, idx in grammar.by_lhs.items():
                if abs(row[idx].sum() - 1.0) > 1e-6:
                    raise ModelFileError(f"the rule probabilities of {lhs!r} for label {name!r} do not sum to 1")
            try:
                labelled = label_grammar(grammar, name).with_probs(row)
            except LabelError as e:
                raise ModelFileError(str(e)) from None
            models.append(self._label_model(labelled))
        return models


class _LabelledState:
    """The stepping state of a labelled GrammarModel: each row's label id, and for each label c the
    unlabelled state of its rows (those with ``labels == c``, in order), as label c's model steps them;
    ``None`` for a label no row has (so a label's model never steps an empty batch)."""

    def __init__(self, labels: np.ndarray, parts: tuple):
        self.labels = labels  # (B,) label ids
        self.parts = parts  # (C,) parts[c]: label c's model's state of rows(c)

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, c: int) -> np.ndarray:
        """The rows of label c, in order."""
        return np.flatnonzero(self.labels == c)

    def map(self, models, step) -> _LabelledState:
        """A new state: ``step(model_c, parts[c], rows(c))`` for every label."""
        parts = tuple(
            None if part is None else step(m, part, self.rows(c)) for c, (m, part) in enumerate(zip(models, self.parts))
        )
        return _LabelledState(self.labels, parts)

    def take(self, models, rows: np.ndarray) -> _LabelledState:
        """The state of the given rows (they may repeat or change order): each label's part takes its own."""
        position = np.zeros(len(self.labels), dtype=np.int64)  # (B,) a row's place among its label's rows
        for c in range(len(models)):
            r = self.rows(c)
            position[r] = np.arange(len(r))
        labels = self.labels[rows]  # (B',)
        chosen = [rows[labels == c] for c in range(len(models))]  # the new rows of each label
        parts = tuple(
            m.take_state(part, position[r]) if len(r) else None for m, part, r in zip(models, self.parts, chosen)
        )
        return _LabelledState(labels, parts)
