"""Any model held to a grammar: the token mask of a PCFG's prefix parser, stepping beside the model.

A grammar G restricts a model to its language L(G). Decoding left to right, the prefix x_<t may be
extended by a token a only when some sentence of L(G) starts with x_<t a, and may end only when x_<t is
itself a sentence. With Pre_G the grammar's prefix probability (the total probability of its sentences
that start with a prefix, eq. (7) of :mod:`scratchgen.grammar.prefix`) and P_G its sentence probability::

    allowed_t(a)    = [ Pre_G(x_<t a) > 0 ]           for an ordinary token a                      (1)
    allowed_t(</s>) = [ P_G(x_<t) > 0 ]                x_<t is a complete sentence

Both are read from the grammar's incremental Earley state (:mod:`scratchgen.grammar.earley`): a token
is allowed exactly when the grammar's next-token log-probability of it is > -inf (eq. (2) of
:mod:`scratchgen.grammar.model`). Only the weights' support matters: any positive rule probabilities give
the same mask.

The model and the grammar have vocabularies of their own, so a map joins them: each model token id
goes to the grammar's id of the same token, or to nothing (the grammar never uses it: always masked).
A grammar terminal the model does not have is an error that names it: the model could never say it,
so the constrained distribution would silently lose every sentence that needs it.

Masked decoding then draws from the model's distribution with every token outside the mask removed::

    q(a | x_<t) = P(a | x_<t) allowed_t(a) / sum_b P(b | x_<t) allowed_t(b)                      (2)

which is *not* P(x | x in L(G)): see :mod:`scratchgen.smc` for the exact conditional.

:class:`GrammarConstraint` is the mask and its state; :class:`ConstrainedModel` wraps a model and a
constraint into one object that speaks the stepping protocol, with log-probabilities outside the mask
set to -inf and left unnormalised (so the decoder's controls, which all work on unnormalised
log-probabilities, apply unchanged, and beam search ranks by the model's own log P(x)).

**A mask needs only zeros, so the parser steps yes/no values, and its nodes are cached.** Eq. (1) reads
which prefix probabilities are positive, never their values, and the Earley step computes them by sums of
products of non-negative numbers. So the constraint runs the same step on yes/no values
(:mod:`scratchgen.grammar.support`: bitsets instead of arrays, "or" for a sum and "and" for a product),
whose zeros are exactly the float parser's (tests/grammar/test_support.py). Its *nodes* hold no numbers:
two with the same seeds, end and return sets (naming the same earlier nodes) have the same future, so the
constraint keeps one node of each content it has met (:meth:`~scratchgen.grammar.support.Node.key`), with
its mask (computed once, and shared by the nodes that allow the same tokens) and the node each token class
leads to (stepped once). The tokens a step treats alike, those with the same zeros in v = Ustar lex[a]
(eq. (5) of :mod:`~scratchgen.grammar.earley`: the nouns of a grammar whose nouns all follow the same
rules), form a *token class* (:meth:`~scratchgen.grammar.earley.EarleyParser.terminal_classes`).
Sentences that differ in their words but not in their parse so far ("the dog sees the cat" and "a cat
chases a bird") share a node, and a right-recursive grammar meets finitely many. Decoding a token then
costs a dictionary look-up a row, and the yes/no step runs only for a (node, token class) pair not met
before. The nodes met are forgotten when they hold more than about ``MAX_BYTES`` (the live rows keep
theirs), so memory stays bounded.

A labelled grammar (one grammar a label) is not a constraint: a :class:`LabelError` asks for one label's.

Letters: B batch, V the model's vocabulary, V_G the grammar's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DecodingError, LabelError, VocabularyError
from .labels import start_state
from .text import Vocabulary

if TYPE_CHECKING:
    from .grammar.support import Node

__all__ = ["GrammarConstraint", "ConstrainedModel", "ConstrainedState"]


#: The constraint forgets the nodes it has met when their frames and masks hold more bytes than this.
MAX_BYTES = 64 * 2**20


class GrammarConstraint:
    """The mask of eq. (1) for one grammar and one model vocabulary, batched over prefixes.

    Parameters
    ----------
    grammar : str, Grammar or GrammarModel
        A grammar file, Tracery JSON, grammar text or ``builtin:NAME`` (resolved by
        :func:`scratchgen.grammar.builtin.resolve_grammar`), or a fitted :class:`GrammarModel`.
    vocab : Vocabulary
        The model's vocabulary. Every grammar terminal must be in it (a :class:`VocabularyError`
        names the first that is not).

    Attributes
    ----------
    grammar_model : GrammarModel
        The grammar; its compiled tables give the yes/no parser ``parser`` whose nodes give eq. (1).
    grammar_id : int array of shape (V,)
        The grammar's id of each model token; ``V_G`` (one past the grammar's last id, a column that is
        always -inf) for a token the grammar never uses, and for ``<s>``.

    >>> from scratchgen.text import Vocabulary
    >>> c = GrammarConstraint("S -> 'a' 'b' [0.5] | 'b' [0.5]", Vocabulary(["a", "b", "c"]))
    >>> s = c.initial_state(1)
    >>> c.allowed(s)[0].tolist()          # <unk> <s> </s> a b c: a sentence starts with a or b
    [False, False, False, True, True, False]
    >>> c.allowed(c.advance(s, [4]))[0].tolist()   # "b" is a sentence: only </s> may follow
    [False, False, True, False, False, False]
    """

    def __init__(self, grammar: Any, vocab: Vocabulary):
        from .grammar import GrammarModel
        from .grammar.support import SupportParser

        model = grammar if isinstance(grammar, GrammarModel) else GrammarModel.from_grammar(grammar)
        self.grammar_model = model
        grammar_vocab = model.fitted_vocab()
        terminals = grammar_vocab.to_list()
        missing = [t for t in terminals if t not in vocab]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise VocabularyError(
                f"grammar terminal {missing[0]!r}{more} is not in the model's vocabulary: the model can never "
                "say it (train the model on text of the same tokens, e.g. a word-level model)"
            )
        pad = len(grammar_vocab)  # the always -inf column
        self.grammar_id = np.full(len(vocab), pad, dtype=np.int64)  # (V,)
        for token in terminals + [Vocabulary.SPECIALS[Vocabulary.eos_id]]:
            self.grammar_id[vocab.index(token)] = grammar_vocab.index(token)
        if Vocabulary.SPECIALS[Vocabulary.unk_id] in model.grammar_.terminals:  # a grammar that says '<unk>'
            self.grammar_id[Vocabulary.unk_id] = Vocabulary.unk_id
        self.vocab = vocab
        if model.label_models_ is not None:
            raise LabelError(
                "a labelled grammar cannot constrain a model: it has one grammar a label (constrain by one "
                "label's grammar)"
            )
        self.parser = SupportParser(model.prefix_parser())  # the yes/no Earley step (module docstring)
        # (V,) the parser's terminal id of each model token; -1: none (the end, or a token no rule produces)
        self._terminal = np.full(len(vocab), -1, dtype=np.int64)
        used = self.grammar_id < len(grammar_vocab)
        self._terminal[used] = model.terminal_ids(self.grammar_id[used])
        self._nodes: dict[tuple, Node] = {}  # Node.key() -> the one node of that content (module docstring)
        self._bytes = 0  # an estimate of the bytes the nodes hold
        self._masks: dict[tuple[int, bool], np.ndarray] = {}  # (terminals, end) -> (V,) mask
        self.token_class = self._token_classes()
        # a terminal of each class, to step the parser with (-1: the class of tokens no rule produces)
        classes, first = np.unique(self.token_class, return_index=True)
        self._class_terminal = dict(zip(classes.tolist(), self._terminal[first].tolist()))

    def _token_classes(self) -> np.ndarray:
        """(V,) a class of each model token: tokens of one class step a node to one node (module docstring).

        The classes of :meth:`~scratchgen.grammar.earley.EarleyParser.terminal_classes`, and one more
        class for every token no rule produces (it leads to the dead node).
        """
        classes = self.grammar_model.prefix_parser().terminal_classes()  # (T,)
        terminal = self._terminal
        return np.where(terminal >= 0, classes[terminal], classes.max(initial=-1) + 1)

    @classmethod
    def for_model(cls, grammar: Any, model) -> GrammarConstraint:
        """The constraint of ``grammar`` on a fitted ``model`` (a constraint is returned as it is)."""
        if isinstance(grammar, GrammarConstraint):
            if grammar.vocab != model.fitted_vocab():
                raise VocabularyError("this GrammarConstraint was made for another model's vocabulary")
            return grammar
        return cls(grammar, model.fitted_vocab())

    # --- the state: an object array (B,) of nodes, one per distinct content of the yes/no Earley frame ---

    def initial_state(self, batch_size: int) -> np.ndarray:
        """The grammar state of ``batch_size`` empty prefixes: (B,) nodes, all the same."""
        state = np.empty(batch_size, dtype=object)  # (B,)
        state[:] = [self._node(self.parser.start())] * batch_size
        return state

    def advance(self, state: np.ndarray, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The state after appending model token ``ids`` (shape (B,)); each must be allowed (eq. (1)).

        A (node, token class) pair met before is looked up; a new one steps the yes/no parser once.
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)  # (B,)
        out = np.empty(len(ids), dtype=object)  # (B,)
        step, node_of, terminal = self.parser.step, self._node, self._class_terminal
        for b, (node, c) in enumerate(zip(state, self.token_class[ids].tolist())):
            after = node.after.get(c)
            if after is None:
                after = node.after[c] = node_of(step(node, terminal[c]))
            out[b] = after
        return out

    def take_state(self, state: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return state[np.asarray(rows, dtype=np.int64)]

    def _node(self, node: Node) -> Node:
        """The node of ``node``'s content: the one met before, or ``node`` itself, kept from now on."""
        key = node.key()
        kept = self._nodes.get(key)
        if kept is None:
            size = 200 + 8 * len(key[0]) * (1 + len(key[2]))  # roughly: the object, its seeds and return sets
            if self._bytes + size > MAX_BYTES:
                self._nodes, self._bytes = {}, 0  # forget: the nodes of live rows stay alive through the rows
            kept = self._nodes[key] = node
            self._bytes += size
        return kept

    # --- the mask ---------------------------------------------------------------------------------------

    def allowed(self, state: np.ndarray, stop: np.ndarray | None = None) -> np.ndarray:
        """The (B, V) boolean mask of eq. (1): a token is allowed iff the grammar gives it a log-prob > -inf.

        ``stop``: model ids of stop tokens (they end a sequence and stay at its end). A stop token is
        allowed only where the prefix it ends is a complete sentence: Pre_G(x_<t s) > 0 and
        P_G(x_<t s) > 0, one more grammar step for the rows where eq. (1) allows it.
        """
        for node in state:
            if node.mask is None:
                node.mask = self._mask(node)
        mask = np.array([node.mask for node in state], dtype=bool).reshape(len(state), len(self.vocab))  # (B, V)
        for s in () if stop is None else np.unique(stop):
            rows = np.flatnonzero(mask[:, s])
            if rows.size and s != Vocabulary.eos_id:
                after = self.advance(self.take_state(state, rows), np.full(rows.size, s))
                mask[rows, s] = self.allowed(after)[:, Vocabulary.eos_id]
        return mask

    def _mask(self, node: Node) -> np.ndarray:
        """(V,) eq. (1) for one node, read-only: its allowed terminals and, when it is a sentence, ``</s>``
        (shared by the nodes with the same allowed terminals and end)."""
        key = (node.terminals, node.end)
        mask = self._masks.get(key)
        if mask is None:
            allowed = np.append(self.parser.allowed(node), False)  # (T + 1,) the last: no terminal
            mask = allowed[self._terminal]  # (V,)
            mask[Vocabulary.eos_id] = node.end
            mask.setflags(write=False)
            mask = self._masks[key] = mask
        return mask

    def check_prompt(self, prompt: np.ndarray) -> None:
        """A :class:`DecodingError` when no sentence of the grammar starts with the prompt (model ids)."""
        state = self.initial_state(1)
        for t, token in enumerate(np.asarray(prompt, dtype=np.int64)):
            if not self.allowed(state)[0, token]:
                shown = " ".join(self.vocab.decode(prompt[: t + 1]))
                raise DecodingError(
                    f"the grammar cannot continue the prompt {shown!r}: no sentence of its language starts with it"
                )
            state = self.advance(state, [token])


@dataclass(frozen=True)
class ConstrainedState:
    """The state of a batch under :class:`ConstrainedModel`: the model's state of each row, and the grammar's
    state of each *distinct* node (a support of the Earley frame, :class:`GrammarConstraint`), which rows
    share.

    Rows with the same node have the same mask, so the mask is gathered once for them all: the B rows of a
    batch start from one node, and most prefixes soon share a node with others.
    """

    model: Any  # the model's state, B rows
    grammar: np.ndarray  # (U,) the grammar's state: distinct nodes
    slot: np.ndarray  # (B,) the grammar row of each row's node


class ConstrainedModel:
    """A model and a :class:`GrammarConstraint` stepping together, behind the stepping protocol.

    ``next_logprobs`` gives the model's log P(a | x_<t) where eq. (1) allows a and -inf elsewhere, not
    renormalised: the rows do not sum to 1 (the decoder's draw normalises; beam search adds the
    model's own log-probabilities). The state is a :class:`ConstrainedState`. ``stop``: the stop tokens'
    ids, allowed only where they complete a sentence (:meth:`GrammarConstraint.allowed`). Everything
    else (vocabulary, tokenizer, labels) is the model's.
    """

    def __init__(self, model, constraint: GrammarConstraint, stop: np.ndarray | None = None):
        self.model = model
        self.constraint = constraint
        self.stop = stop

    @property
    def labels_(self):
        return getattr(self.model, "labels_", None)

    def fitted_vocab(self) -> Vocabulary:
        return self.model.fitted_vocab()

    def tokenize(self, sequence):
        return self.model.tokenize(sequence)

    def initial_state(self, batch_size: int = 1, labels: np.ndarray | None = None) -> ConstrainedState:
        model = start_state(self.model, batch_size, labels)
        return ConstrainedState(model, self.constraint.initial_state(1), np.zeros(batch_size, dtype=np.int64))

    def advance(self, state: ConstrainedState, ids: np.ndarray) -> ConstrainedState:
        """Every row advances its model state; each distinct (node, token class) pair advances the grammar once."""
        ids = np.asarray(ids, dtype=np.int64)  # (B,)
        classes = self.constraint.token_class  # (V,) tokens of one class lead to one node
        keys = state.slot * (int(classes.max()) + 1) + classes[ids]  # (B,) the same key, the same new node
        _, first, pair = np.unique(keys, return_index=True, return_inverse=True)
        parents = self.constraint.take_state(state.grammar, state.slot[first])
        nodes = self.constraint.advance(parents, ids[first])  # (P,) one a distinct pair
        # different pairs may lead to one node: keep each node once
        _, kept, of_pair = np.unique(np.array([id(node) for node in nodes]), return_index=True, return_inverse=True)
        grammar = nodes[kept]
        slot = of_pair.reshape(-1)[pair.reshape(-1)]
        return ConstrainedState(self.model.advance(state.model, ids), grammar, slot)

    def take_state(self, state: ConstrainedState, rows: np.ndarray) -> ConstrainedState:
        rows = np.asarray(rows, dtype=np.int64)
        kept, slot = np.unique(state.slot[rows], return_inverse=True)  # only the prefixes still in use
        grammar = self.constraint.take_state(state.grammar, kept)
        return ConstrainedState(self.model.take_state(state.model, rows), grammar, slot.reshape(-1))

    def next_logprobs(self, state: ConstrainedState) -> np.ndarray:
        """log P_model(a | x_<t) where a is allowed (eq. (1)), -inf elsewhere: shape (B, V)."""
        logp = self.model.next_logprobs(state.model)  # (B, V)
        allowed = self.constraint.allowed(state.grammar, self.stop)  # (U, V) once a distinct prefix
        return np.where(allowed[state.slot], logp, -np.inf)


#: A constrained sample cut at ``max_tokens`` is redrawn at most this many times a sample on average.
MAX_DRAWS_PER_SAMPLE = 100


def constrain(model, grammar: Any, prompt: np.ndarray, stop: np.ndarray) -> ConstrainedModel:
    """``model`` held to ``grammar`` (eq. (1)), the prompt checked against the grammar first."""
    constraint = GrammarConstraint.for_model(grammar, model)
    constraint.check_prompt(prompt)
    return ConstrainedModel(model, constraint, stop)


def complete(ids: list[int], max_tokens: int, stop: np.ndarray) -> bool:
    """Whether a generated id list (prompt excluded, ``</s>`` dropped) ended a sentence rather than being
    cut at ``max_tokens``: it is shorter than max_tokens (``</s>`` came first) or ends in a stop token."""
    return len(ids) < max_tokens or (len(ids) > 0 and ids[-1] in stop)


def sample_complete(n: int, draw, max_tokens: int, stop: np.ndarray):
    """``n`` masked samples that end a sentence of the grammar: a sample cut at ``max_tokens`` is dropped
    and redrawn (so the samples follow eq. (2) given that the sentence ends within max_tokens).

    ``draw(k)`` draws k samples: ``(id lists, log-probabilities)``. After ``MAX_DRAWS_PER_SAMPLE * n``
    draws without n complete ones, a :class:`DecodingError` asks for a larger ``max_tokens``.
    """
    kept: list[list[int]] = []
    logps: list[float] = []
    drawn = 0
    while len(kept) < n:
        if drawn >= MAX_DRAWS_PER_SAMPLE * n:
            raise DecodingError(
                f"only {len(kept)} of {drawn} grammar-constrained samples ended a sentence within max_tokens="
                f"{max_tokens}: raise max_tokens (--max-tokens)"
            )
        k = n - len(kept)
        ids, logp = draw(k)
        drawn += k
        for row, lp in zip(ids, logp):
            if complete(row, max_tokens, stop):
                kept.append(row)
                logps.append(float(lp))
    return kept, np.array(logps)
