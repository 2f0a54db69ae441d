"""Incremental prefix probabilities: an Earley state that advances one token at a time, in constant time.

Read :mod:`scratchgen.grammar.reference_earley` first: Stolcke's probabilistic Earley parser on the
grammar's own rules, one prefix, dicts. This module computes the same next-token distribution on the
:class:`~scratchgen.grammar.compile.CompiledGrammar` (binary rules ``A -> B C``, lexical rules, the unit
closure Ustar = (I - U)^-1 and the left-corner closure P* = (I - U_pre)^-1 of its eqs. (2) and (6)),
and keeps its state from one token to the next instead of recomputing a chart
(:func:`scratchgen.grammar.prefix.next_token_probs`, the oracle of the tests, costs O(t^3) at length t).

Stolcke (1995), "An efficient probabilistic context-free parsing algorithm that computes prefix
probabilities", Computational Linguistics 21(2): forward and inner probabilities, prediction closed by
R_L (here P*, whose left corners may follow children that derive ''), completion closed by R_U (here
Ustar, which also holds the null completions). Leo (1991),
"A general context-free parsing algorithm running in linear time on every LR(k) grammar without using
lookahead", Theoretical Computer Science 82: a right child is in tail position, so its completion is
its parent's; resolving that once, when the child is predicted, makes right recursion cost O(1) a token.

Letters: x_1..x_j the prefix; N compiled symbols; r = A(r) -> B(r) C(r) [p_r] the R binary rules;
lex[a, X] = P(X -> a); beta(k, j, X) = P(X =>* x_{k+1}..x_j), the inside probability; e_t the unit
vector of a target t.

**Frames.** Position j has a frame with

- its *seeds*: the symbols that start at j as the right child C(r) of a rule whose left child is not
  empty (at j = 0 the start symbol), with their forward probabilities sigma_j (Stolcke's alpha);
- its *targets*: the items t = (j, r) "A(r) -> . B(r) C(r)" that wait for a non-empty left child B(r)
  to start at j, with forward probabilities alpha(t); kept when alpha(t) > 0;
- the *return vector* Ret_j[Y] of each seed Y: a vector over the targets of earlier frames (and the
  bottom target, the sentence, written _|_). When Y completes over (j, j'] with inside beta, target
  t's left child completes over (k, j'] with the contribution beta Ret_j[Y][t].

The equations of a step, with Q_k[X], the return vector of "X completes over (k, j']"::

    pred_j = sigma_j P*                                 (Stolcke's prediction, closed by R_L)          (1)
    alpha(j, r) = pred_j[A(r)] p_r                      (the targets of frame j)                       (2)
    Pre(x_<=j a) = pred_j . lex[a],   P(x_<=j) = in_j[_|_]                                             (3)
    Q_k[X] = sum_{Y seed at k} Ustar[Y, X] Ret_k[Y] + sum_{t = (k, r)} Ustar[B(r), X] e_t              (4)
    in_{j+1} = sum_X lex[x_{j+1}, X] Q_j[X]:   in_{j+1}[t] = beta(k, j+1, B(r)) for t = (k, r)         (5)
    sigma_{j+1}[C] = sum_{t = (k, r): C(r) = C} alpha(t) in_{j+1}[t]       (completion, Stolcke)        (6)
    Ret_{j+1}[C] = sum_{t = (k, r): C(r) = C} in_{j+1}[t] p_r Q_k[A(r)]   (tail position, Leo)         (7)
    Ret_0[S] = e__|_,   sigma_0 = e_S                                                                  (8)

(4) is the completion of Stolcke with R_U: X completing over (k, j'] also completes every symbol whose
unit chain (unit rules, and binary rules whose other child derives '' with probability E) reaches X,
up to a seed of frame k (which passes the completion on through its own return vector) or the left
child of a target of frame k. In (5) the sum over X is one vector, v = Ustar lex[x_{j+1}] =
beta(j, j+1, .). (7) is the tail call: C(r) completing completes A(r) over (k, j'], so C's return
vector is A's, found once now rather than once per completion; (6) and (3) are eqs. (7)-(8) of
:mod:`~scratchgen.grammar.prefix` read forwards.

**Why a step costs O(1) for right recursion.** A step reads frame j and the frames its return vectors
name. With ``S -> 'a' S``, the seed S at j+1 has Ret_{j+1}[S] = 0.9 Ret_j[S] = c e__|_ by (7): no
earlier frame is named and a step touches two frames however long the prefix. A frame that no return
vector names can never receive a completion again; it is freed (Python's reference counting: a frame
holds its return vectors, which hold the frames they name). Only genuinely pending left children
(a centre-embedded clause, a left-recursive rule) keep frames alive.

**Rescaling.** sigma shrinks geometrically with j. Each step divides sigma_{j+1}, Ret_{j+1} and
in_{j+1}[_|_] by z = sum_a Pre(x_<=j+1 a) + P(x_<=j+1) (in the scale of step j), which is
P(x_{j+1} | x_<=j) for a consistent grammar, and adds log z to the frame's ``log_pre``. A return
vector then holds beta times Pre(x_<=k) / Pre(x_<=j) for a target of frame k, so every stored number is
of order one, and (3) gives the next-token distribution directly::

    P(a | x_<=j) = pred_j . lex[a],   P(</s> | x_<=j) = in_j[_|_]   (both already divided by z)      (9)
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import GrammarError
from .compile import CompiledGrammar

__all__ = ["EarleyParser", "Frame"]


class Frame:
    """The Earley state after a prefix: one position's seeds and targets, and its return vectors.

    Immutable (its arrays are read-only), so rows of a batch may share a frame: advancing one row makes
    a new frame and never changes another row's. Attributes:

    - ``pos``: the prefix's length j;
    - ``seeds`` (S,): symbol ids; ``targets`` (K,): binary rule ids (indices into ``cg.bA``);
      ``alpha`` (K,): their forward probabilities, eq. (2);
    - ``ret``: the return vectors, eq. (7), as blocks ``((frame, matrix of shape (S, K_frame)), ...)``, one
      per earlier frame named (the bottom frame ``_|_`` has one target);
    - ``pred`` (N,): eq. (1), divided by z; ``end``: P(</s> | prefix), eq. (9);
    - ``log_pre``: log Pre(prefix), the sum of the log z of the steps so far;
    - ``M_seed`` (K, S) = Ustar[seeds, A(targets)]^T and ``M_target`` (K, K) = Ustar[B(targets), A(targets)]^T:
      the two parts of Q_k[A(r)] in eq. (4), for each target r of this frame (read when one completes).
    """

    __slots__ = ("pos", "seeds", "targets", "alpha", "ret", "pred", "end", "log_pre", "M_seed", "M_target")

    def __init__(self, pos, seeds, targets, alpha, ret, pred, end, log_pre, M_seed, M_target):
        self.pos, self.seeds, self.targets, self.alpha, self.ret = pos, seeds, targets, alpha, ret
        self.pred, self.end, self.log_pre, self.M_seed, self.M_target = pred, end, log_pre, M_seed, M_target
        for a in (seeds, targets, alpha, pred, M_seed, M_target, *(m for _, m in ret)):
            a.setflags(write=False)

    @property
    def dead(self) -> bool:
        """True when the prefix is impossible: only the end follows (as in prefix.next_token_probs)."""
        return self.log_pre == -math.inf

    @property
    def nbytes(self) -> int:
        """The bytes of this frame's own arrays (not of the frames it names)."""
        arrays = (self.seeds, self.targets, self.alpha, self.pred, self.M_seed, self.M_target)
        return sum(a.nbytes for a in arrays) + sum(M.nbytes for _, M in self.ret)

    def support(self) -> tuple:
        """Which numbers of this frame are non-zero, as a hashable key: equal keys, equal futures of zeros.

        Every quantity of a step (eqs. (1)-(7), (9)) is a sum of products of non-negative numbers, so
        whether it is zero depends only on which of its inputs are zero: the seeds (sigma_j > 0 exactly
        there; the targets and ``pred``'s zeros follow from them), whether the prefix is a sentence
        (``end`` > 0), and which entries of each return block are non-zero, with the frame it names. Two
        frames with the same key allow the same next tokens (eq. (3)), and so do the frames that the same
        token makes from them, for ever (in exact arithmetic; an underflow to 0 is the only way floating point
        can differ): a mask (:mod:`scratchgen.constraint`) may step either one. The
        frames named are compared by identity (``id``), so the key is only meaningful while they live
        (they do as long as this frame does).
        """
        if self.dead:
            return ("dead",)
        blocks = tuple((id(g), M.shape, np.packbits(M != 0).tobytes()) for g, M in self.ret)
        return (self.seeds.tobytes(), self.end > 0, blocks)

    def frames(self) -> list[Frame]:
        """This frame and every earlier frame it keeps alive, through its return vectors (for inspection)."""
        seen: dict[int, Frame] = {}
        todo = [self]
        while todo:
            f = todo.pop()
            if id(f) not in seen:
                seen[id(f)] = f
                todo.extend(g for g, _ in f.ret)
        return sorted(seen.values(), key=lambda f: f.pos)


def _empty(shape=(0,), dtype=np.float64) -> np.ndarray:
    """Zeros of ``shape``: the arrays of the bottom and dead frames, and a step that seeds nothing."""
    return np.zeros(shape, dtype=dtype)


class EarleyParser:
    """Stolcke's prefix probabilities for one compiled grammar, a token at a time (module docstring).

    Holds only tables derived from ``cg`` (no other state), so any number of parsers may coexist, one
    per grammar or per label. A batch's state is an object array of shape (B,) of :class:`Frame`;
    ``state[rows]`` (what ``take_state`` does) shares frames, which are immutable.

    >>> from scratchgen.grammar.compile import compile_grammar
    >>> from scratchgen.grammar.rules import Grammar
    >>> cg = compile_grammar(Grammar.fromstring("S -> 'a' S [0.9] | 'a' [0.1]"))
    >>> p = EarleyParser(cg)
    >>> state = p.start(1)
    >>> for _ in range(1000):
    ...     state = p.advance(state, np.array([cg.terminal_index["a"]]))
    >>> p.next_probs(state).round(12)   # P(a | a^1000) = 0.9, P(end | a^1000) = 0.1
    array([[0.9, 0.1]])
    >>> len(state[0].frames())   # the current frame and the bottom: nothing grows with the prefix
    2
    """

    def __init__(self, cg: CompiledGrammar):
        if cg.Pstar is None:
            raise GrammarError(
                "left-corner chains have total probability >= 1, so prefix probabilities do not "
                "exist (the grammar is inconsistent: run 'scratchgen grammar check')"
            )
        self.cg = cg
        self.Pstar: np.ndarray = cg.Pstar  # (N, N) eq. (1)
        self.v_of_terminal = cg.lex @ cg.UstarT  # (T, N) row a: Ustar lex[a] = beta(j, j+1, .), eq. (5)
        self.lex_total = cg.lex.sum(axis=0)  # (N,) sum_a lex[a, X]: the normaliser z of eq. (9)
        self.bottom = Frame(-1, _empty(), _empty(1, np.int64), np.ones(1), (), _empty(cg.N), 0.0, 0.0,
                            _empty((1, 0)), _empty((1, 1)))  # fmt: skip
        self.dead = Frame(-1, _empty(), _empty(0, np.int64), _empty(), (), _empty(cg.N), 1.0, -math.inf,
                          _empty((0, 0)), _empty((0, 0)))  # fmt: skip
        S = cg.start
        sigma0 = np.zeros(cg.N)
        sigma0[S] = 1.0  # eq. (8)
        ret0 = ((self.bottom, np.ones((1, 1))),)  # Ret_0[S] = e__|_
        self.initial = self._frame(0, np.array([S]), sigma0, ret0, float(cg.E[S]), 0.0)

    # --- the public stepping interface --------------------------------------------------------------------

    def start(self, batch: int) -> np.ndarray:
        """The state of ``batch`` empty prefixes: an object array (B,) of the same initial frame."""
        state = np.empty(batch, dtype=object)  # (B,)
        state[:] = [self.initial] * batch
        return state

    def advance(self, state: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The state after appending terminal ids ``w`` (B,) (-1: a token no rule produces: impossible).

        Rows sharing a frame and a token share the new frame (beam search repeats rows).
        """
        out = np.empty(len(state), dtype=object)  # (B,)
        made: dict[tuple[int, int], Frame] = {}
        for b, (frame, a) in enumerate(zip(state, np.asarray(w).tolist())):
            key = (id(frame), a)
            if key not in made:
                made[key] = self._step(frame, a)
            out[b] = made[key]
        return out

    def next_probs(self, state: np.ndarray) -> np.ndarray:
        """P(next = a | prefix) for every terminal a, and P(end | prefix) last: (B, T+1), eq. (9).

        The same numbers as :func:`scratchgen.grammar.prefix.next_token_probs` on the prefixes.
        """
        pred = np.stack([f.pred for f in state])  # (B, N)
        out = np.empty((len(state), self.cg.lex.shape[0] + 1))  # (B, T+1)
        out[:, :-1] = pred @ self.cg.lex.T  # eq. (3), divided by z
        out[:, -1] = [f.end for f in state]
        return out

    def log_prefix(self, state: np.ndarray) -> np.ndarray:
        """log Pre(prefix) of each row (B,): the sum of log P(x_t | x_<t) so far (-inf: impossible)."""
        return np.array([f.log_pre for f in state])

    def terminal_classes(self) -> np.ndarray:
        """(T,) a class id of each terminal: the same id for terminals with the same zeros in v (eq. (5)).

        A step reads its token only through v = Ustar lex[a], so terminals of one class (the nouns of a
        grammar whose nouns all follow the same rules) lead from frames of one support to frames of one
        support (:meth:`Frame.support`): a mask steps one of them for all.
        """
        support = np.packbits(self.v_of_terminal != 0, axis=1)  # (T, ceil(N / 8))
        _, classes = np.unique(support, axis=0, return_inverse=True)
        return classes.reshape(-1).astype(np.int64)

    # --- one step, one sequence ------------------------------------------------------------------------------

    def _step(self, frame: Frame, a: int) -> Frame:
        """The frame after reading terminal a: eqs. (5)-(7), then (1)-(2) and the rescaling (9)."""
        cg = self.cg
        if frame.dead or a < 0:
            return self.dead
        v = self.v_of_terminal[a]  # (N,) beta(j, j+1, .)
        # Eq. (5): in over frame j's own targets, and over each earlier frame its seeds return to.
        inputs: dict[int, list] = {id(frame): [frame, v[cg.bB[frame.targets]]]}
        v_seeds = v[frame.seeds]  # (S,)
        for g, M in frame.ret:
            inputs[id(g)] = [g, v_seeds @ M]  # (K_g,)
        end = 0.0
        completed = []  # (frame, in over its targets) with some non-zero entry
        for g, x in inputs.values():
            if g is self.bottom:
                end = float(x[0])  # P(x_<=j+1), divided by Pre(x_<=j)
            elif x.any():
                completed.append((g, x))
        fed = [cg.bC[g.targets[x != 0]] for g, x in completed]  # the right children C(r) of completed targets
        seeds = np.unique(np.concatenate(fed)) if fed else _empty(0, np.int64)  # (S',) the new seeds
        sigma = np.zeros(cg.N)
        blocks: dict[int, list] = {}
        for g, x in completed:
            C = cg.bC[g.targets]  # (K_g,)
            np.add.at(sigma, C, g.alpha * x)  # eq. (6)
            # G[c, r] = in[r] p_r when C(r) is the new seed c: column r's row is C(r)'s place among the seeds
            # (clipped for a target with in = 0, whose C may be no seed: its value is 0 anyway).
            G = np.zeros((len(seeds), len(x)))  # (S', K_g)
            G[np.minimum(seeds.searchsorted(C), len(seeds) - 1), np.arange(len(x))] = x * cg.bp[g.targets]
            self._add(blocks, g, G @ g.M_target)  # eq. (7) through eq. (4)'s second sum: g's own targets
            coef = G @ g.M_seed  # (S', S_g) eq. (4)'s first sum: through g's seeds to their returns
            for h, M in g.ret:
                self._add(blocks, h, coef @ M)
        ret = tuple((h, M) for h, M in blocks.values() if M.any())
        return self._frame(frame.pos + 1, seeds, sigma, ret, end, frame.log_pre)

    @staticmethod
    def _add(blocks: dict, frame: Frame, M: np.ndarray) -> None:
        """Add M (S', K_frame) to the new return vectors' block of ``frame``; an all-zero M names no frame."""
        if not M.any():
            return
        if id(frame) in blocks:
            blocks[id(frame)][1] = blocks[id(frame)][1] + M
        else:
            blocks[id(frame)] = [frame, M]

    def _frame(self, pos: int, seeds: np.ndarray, sigma: np.ndarray, ret: tuple, end: float, log_pre: float) -> Frame:
        """A new frame from its seeds' forward probabilities (N,): eqs. (1)-(2), rescaled by z (eq. (9))."""
        cg = self.cg
        pred = sigma[seeds] @ self.Pstar[seeds] if len(seeds) else _empty(cg.N)  # (N,) eq. (1)
        z = float(pred @ self.lex_total) + end  # sum_a Pre(x a) + P(x), in the previous step's scale
        if not z > 0:
            return self.dead
        pred = pred / z
        alpha_all = pred[cg.bA] * cg.bp  # (R,) eq. (2)
        targets = (alpha_all > 0).nonzero()[0]  # (K,)
        UA = cg.UstarT[cg.bA[targets]]  # (K, N) Ustar[., A(r)]
        return Frame(
            pos=pos,
            seeds=seeds,
            targets=targets,
            alpha=alpha_all[targets],
            ret=tuple((h, M / z) for h, M in ret),
            pred=pred,
            end=end / z,
            log_pre=log_pre + math.log(z),
            M_seed=UA[:, seeds],  # (K, S) Ustar[seed, A(r)]
            M_target=UA[:, cg.bB[targets]],  # (K, K) Ustar[B(r2), A(r)]
        )
