"""Which prefix probabilities are positive: the Earley step of :mod:`~scratchgen.grammar.earley` on zeros only.

A grammar constraint (:mod:`scratchgen.constraint`) asks of each prefix only *whether* Pre(x_<=j a) > 0 and
whether P(x_<=j) > 0, never how large they are. Every quantity of the float step (eqs. (1)-(7) of
:mod:`~scratchgen.grammar.earley`) is a sum of products of non-negative numbers, so it is positive exactly
when one of its terms has all its factors positive. Replacing each number by "is it > 0", each product by
"and" and each sum by "or" gives the same recursion on yes/no values; the closures Ustar and P* enter only
through their zero patterns, which :mod:`~scratchgen.grammar.compile` makes exact (its ``_chains``: an entry is
non-zero iff a chain of rules joins the two symbols). Writing [X] for "X > 0", for a frame j::

    seeds_j                              the symbols C with sigma_j[C] > 0                              (1b)
    pred_j = U_{Y in seeds_j} P*[Y]      [pred_j[X]] = or_Y [P*[Y, X]]                                 (2b)
    targets_j = {r : A(r) in pred_j, p_r > 0}                                                          (3b)
    allowed_j(a) = [some X in pred_j has lex[a, X] > 0],   end_j = [in_j[_|_]]                         (4b)
    Q_k[X] = U_{Y in seeds_k, [Ustar[Y, X]]} Ret_k[Y]  U  {(k, r) : r in targets_k, [Ustar[B(r), X]]}   (5b)
    in_{j+1} = {(j, r) : r in targets_j, [v[B(r)]]}  U  U_{Y in seeds_j, [v[Y]]} Ret_j[Y]              (6b)
    seeds_{j+1} = {C(r) : (k, r) in in_{j+1}},   Ret_{j+1}[C] = U_{(k, r) in in_{j+1}, C(r) = C} Q_k[A(r)] (7b)

with v = Ustar lex[x_{j+1}] (eq. (5) of earley), and sets of targets in place of return vectors: Ret_j[Y] is
the set of targets (k, r) of earlier frames with a non-zero entry. The float step divides by z > 0 (no zero
changes) and calls the frame dead when z = 0: here, when no terminal is allowed and the prefix is no
sentence. In exact arithmetic the two parsers agree on every zero, so the mask of (4b) is the float
parser's (tests/grammar/test_support.py checks it on random grammars; only an underflow to 0 of the float
numbers could part them).

**Why it is cheaper.** A set of symbols, rules or targets is a Python int used as a bitset (bit r for rule
r): a union is one ``|``, and the rows of P*, Ustar and the lexicon become precomputed bitsets, so a step
on the built-in English grammar (56 symbols, a few targets) touches a few dozen small ints and no array.

**Nodes are shared.** Two frames with the same seeds, end and return sets that name the same earlier
frames have the same future zeros. :meth:`Node.key` is that content (earlier frames named by identity),
and the constraint keeps one node a key (hash-consing), so the earlier frames named are themselves
shared, and sentences of one parse so far ("the dog sees the cat", "a cat chases a bird") meet in one node.
"""

from __future__ import annotations

import numpy as np

from .earley import EarleyParser

__all__ = ["Node", "SupportParser"]


def _bits(row: np.ndarray) -> int:
    """The bitset of a boolean vector: bit i set iff row[i]."""
    return int.from_bytes(np.packbits(np.asarray(row, dtype=bool), bitorder="little").tobytes(), "little")


def _members(bits: int):
    """The indices of the set bits of ``bits``, in increasing order."""
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low


class Node:
    """The zeros of one Earley frame (eqs. (1b)-(4b), (7b)), immutable once made. Attributes:

    - ``seeds``: the seed symbols, increasing (a tuple of ints);
    - ``ret``: the return sets, ``((frame, (bits of seeds[0], bits of seeds[1], ...)), ...)``: for each
      earlier node named, the bitset of its targets (rule ids; bit 0 for the bottom's one target, the
      sentence) that each seed returns to; blocks with no bit are left out, sorted by the node's ``id``;
    - ``end``: whether the prefix is a sentence; ``targets``: bitset of rule ids, eq. (3b);
      ``terminals``: bitset of the allowed terminal ids, eq. (4b);
    - ``q``: Q_k[X] of eq. (5b) for the symbols X asked so far (a cache: a pure function of the node);
    - ``after`` and ``mask``: left to the user of the node (the constraint's step cache and its mask).
    """

    __slots__ = ("seeds", "ret", "end", "targets", "terminals", "q", "after", "mask")

    def __init__(self, seeds: tuple, ret: tuple, end: bool, targets: int, terminals: int):
        self.seeds, self.ret, self.end, self.targets, self.terminals = seeds, ret, end, targets, terminals
        self.q: dict[int, tuple] = {}
        self.after: dict = {}
        self.mask: np.ndarray | None = None

    def key(self) -> tuple:
        """The node's content, earlier nodes by identity: equal keys, equal futures of zeros."""
        return (self.seeds, self.end, tuple((id(g), bits) for g, bits in self.ret))

    @property
    def dead(self) -> bool:
        """No sentence starts with the prefix (the float parser's dead frame: only the end follows)."""
        return self.end and self.terminals == -1


class SupportParser:
    """The yes/no Earley step (module docstring) on the tables of one float :class:`EarleyParser`.

    ``start()`` is the empty prefix's node and ``step(node, a)`` the node after terminal id a (-1: a
    token no rule produces), a new object each time (the caller shares equal ones by :meth:`Node.key`).

    >>> from scratchgen.grammar.compile import compile_grammar
    >>> from scratchgen.grammar.rules import Grammar
    >>> cg = compile_grammar(Grammar.fromstring("S -> 'a' S [0.9] | 'b' [0.1]"))
    >>> p = SupportParser(EarleyParser(cg))
    >>> node = p.step(p.start(), cg.terminal_index["a"])
    >>> p.allowed(node).tolist(), node.end        # after 'a': 'a' or 'b', not yet a sentence
    ([True, True], False)
    >>> p.step(node, cg.terminal_index["b"]).end  # 'a b' is a sentence
    True
    """

    def __init__(self, parser: EarleyParser):
        cg = parser.cg
        self.T = cg.lex.shape[0]
        self.bA, self.bB, self.bC = cg.bA.tolist(), cg.bB.tolist(), cg.bC.tolist()
        pstar = parser.Pstar > 0  # (N, N)
        ustar = cg.UstarT.T > 0  # (N, N) [Ustar[Y, X]]
        lex = cg.lex > 0  # (T, N)
        alive = cg.bp > 0  # (R,) a rule of probability 0 is never a target
        # Rule bit r + 1: bit 0 is the bottom frame's one target (the sentence).
        A_of = np.zeros((cg.N, cg.R + 1), dtype=bool)  # [A(r) = X] for the live rules, column r + 1
        A_of[cg.bA[alive], np.flatnonzero(alive) + 1] = True
        #: eq. (3b) for one seed Y: the targets of pred = P*[Y]
        self.targets_of = [_bits(row) for row in pstar.astype(np.float64) @ A_of > 0]
        #: eq. (4b) for one seed Y: the terminals a with P*[Y] . lex[a] > 0
        self.terminals_of = [_bits(row) for row in pstar.astype(np.float64) @ lex.T.astype(np.float64) > 0]
        #: eq. (5b): the seeds Y whose completion completes X, and the rules whose B(r)'s does
        self.unit_to = [_bits(col) for col in ustar.T]
        B_reaches = ustar[cg.bB]  # (R, N) [Ustar[B(r), X]]
        self.rules_to = [_bits(np.concatenate([[False], B_reaches[:, X]])) for X in range(cg.N)]
        #: eq. (6b): for terminal a, the symbols of v = Ustar lex[a] and the rules whose B(r) is one of them
        v = parser.v_of_terminal > 0  # (T, N)
        self.v = [_bits(v[a]) for a in range(self.T)]
        self.rules_in = [_bits(np.concatenate([[False], v[a][cg.bB]])) for a in range(self.T)]
        self.bottom = Node((), (), False, 1, 0)  # its one target, bit 0: the sentence
        self.dead = Node((), (), True, 0, -1)  # terminals -1: the marker of the dead node
        self.initial = self._node({cg.start: {id(self.bottom): [self.bottom, 1]}}, bool(cg.E[cg.start] > 0))

    def start(self) -> Node:
        """The node of the empty prefix: seed S returning to the sentence, eq. (8) of earley."""
        return self.initial

    def allowed(self, node: Node) -> np.ndarray:
        """(T,) bool: the terminals a with Pre(prefix a) > 0, eq. (4b)."""
        if node.dead:
            return np.zeros(self.T, dtype=bool)
        packed = np.frombuffer(node.terminals.to_bytes(self.T // 8 + 1, "little"), dtype=np.uint8)
        return np.unpackbits(packed, bitorder="little")[: self.T].astype(bool)

    def step(self, node: Node, a: int) -> Node:
        """The node after terminal a: eqs. (6b)-(7b), then (2b)-(4b)."""
        if node.dead or a < 0:
            return self.dead
        v = self.v[a]
        completed = []  # (earlier or own node, bitset of its targets completed), eq. (6b)
        own = node.targets & self.rules_in[a]
        if own:
            completed.append((node, own))
        end = False
        for g, bits in node.ret:
            x = 0
            for Y, b in zip(node.seeds, bits):
                if (v >> Y) & 1:
                    x |= b
            if g is self.bottom:
                end = x != 0
            elif x:
                completed.append((g, x))
        # eq. (7b): ret[C][id(h)] = [h, bitset of h's targets]
        ret: dict[int, dict[int, list]] = {}
        bA, bC = self.bA, self.bC
        for g, x in completed:
            for r1 in _members(x):
                r = r1 - 1
                into = ret.setdefault(bC[r], {})
                q = g.q.get(bA[r])
                if q is None:
                    q = g.q[bA[r]] = self._q(g, bA[r])
                for h, bits in q:
                    if id(h) in into:
                        into[id(h)][1] |= bits
                    else:
                        into[id(h)] = [h, bits]
        return self._node(ret, end)

    def _q(self, g: Node, X: int) -> tuple:
        """Q_g[X] of eq. (5b): ((node, bitset of its targets), ...), the targets "X completes" completes."""
        out: dict[int, list] = {}
        own = g.targets & self.rules_to[X]
        if own:
            out[id(g)] = [g, own]
        unit = self.unit_to[X]
        for i, Y in enumerate(g.seeds):
            if (unit >> Y) & 1:
                for h, bits in g.ret:
                    if bits[i]:
                        if id(h) in out:
                            out[id(h)][1] |= bits[i]
                        else:
                            out[id(h)] = [h, bits[i]]
        return tuple((h, b) for h, b in out.values())

    def _node(self, ret: dict[int, dict[int, list]], end: bool) -> Node:
        """A node from its return sets by seed (eq. (7b)) and its end: eqs. (2b)-(4b), or the dead node."""
        seeds = tuple(sorted(ret))
        targets = terminals = 0
        for Y in seeds:
            targets |= self.targets_of[Y]
            terminals |= self.terminals_of[Y]
        if not terminals and not end:
            return self.dead  # z = 0 in the float parser
        named: dict[int, Node] = {}
        for Y in seeds:
            for key, (h, _) in ret[Y].items():
                named[key] = h
        blocks = tuple(
            (named[key], tuple(ret[Y][key][1] if key in ret[Y] else 0 for Y in seeds)) for key in sorted(named)
        )
        return Node(seeds, blocks, end, targets, terminals)
