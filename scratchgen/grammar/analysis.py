"""Static analysis of a PCFG before any sampling: reachability, productivity, left recursion, consistency.

Letters: N nonterminals (reachable ones, in grammar order), p(r) the probability of rule r,
c_B(r) how many times B occurs on the right-hand side of r, t(r) how many terminals it has.

**Expected-children matrix.** Expanding A once produces on average

    M[A, B] = sum_{r: A -> alpha} p(r) c_B(r)              (N, N)                                (1)

copies of B. A derivation is a branching process with mean matrix M: after k generations the
expected number of copies of B is (e_S^T M^k)[B], so

    E[expansions]    = e_S^T (I + M + M^2 + ...) 1 = e_S^T (I - M)^-1 1                          (2)
    E[length]        = e_S^T (I - M)^-1 t,   t[A] = sum_{r: A -> alpha} p(r) t(r)                  (3)

and the series converges iff the spectral radius rho(M) < 1. If rho(M) >= 1 the expected size is
infinite and (for rho > 1) derivations fail to terminate with positive probability: the grammar is
*inconsistent*, its sentence probabilities sum to less than 1, and we reject it, naming the
strongly connected set of nonterminals whose own block of M has rho >= 1.

Example: ``S -> S S [q] | 'a' [1-q]`` has M = [2q]. At q = 0.6, rho = 1.2: rejected. At q = 0.4,
E[expansions] = 1 / (1 - 0.8) = 5 and E[length] = 5 * 0.6 = 3.

**Productive** symbols derive some terminal string (least fixed point: A is productive if some rule
of A has only terminals and productive symbols); a reachable non-productive symbol is an error.
**Nullable** symbols derive the empty string. A is **left-recursive** if A =>+ A beta, found on
the left-corner graph (A -> X when A -> Y_1..Y_k X ... with every Y nullable).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import GrammarError, ScratchgenError
from ..text import BOS, EOS, check_tokens
from .rules import Grammar, Terminal

__all__ = ["Analysis", "analyze", "expected_children", "reserved_terminals"]


@dataclasses.dataclass
class Analysis:
    """What :func:`analyze` finds; ``errors`` empty means the grammar is safe to sample and score."""

    start: str
    nonterminals: int
    terminals: int
    rules: int
    unreachable: list
    nonproductive: list
    nullable: list
    left_recursive: list
    spectral_radius: float | None
    consistent: bool
    expected_derivation_size: float | None
    expected_length: float | None
    errors: list
    warnings: list

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def raise_errors(self) -> None:
        """Raise a GrammarError with the first error, if any."""
        if self.errors:
            raise GrammarError(self.errors[0])


def reserved_terminals(grammar: Grammar) -> list[str]:
    """What is wrong with the grammar's terminals by the one token rule (:func:`scratchgen.text.check_tokens`):
    ``<s>`` and ``</s>`` are refused (every model adds them around a sentence), ``<unk>`` is allowed (it is
    the unknown token), and so is any other non-empty text.

    >>> reserved_terminals(Grammar.fromstring("S -> '<s>' 'a' | '<unk>'"))
    ["the terminal '<s>' is reserved: every model adds <s> and </s> around a sentence itself"]
    """
    problems = []
    for t in grammar.terminals:
        if t in (BOS, EOS):
            problems.append(f"the terminal {t!r} is reserved: every model adds <s> and </s> around a sentence itself")
            continue
        try:
            check_tokens([t], where=f"the terminal {t!r}")
        except ScratchgenError as e:
            problems.append(str(e))
    return problems


def _closure(adj: np.ndarray) -> np.ndarray:
    """Transitive closure (paths of length >= 1) of a boolean adjacency matrix, Warshall's algorithm."""
    reach = adj.copy()
    for k in range(len(reach)):
        reach |= reach[:, k : k + 1] & reach[k : k + 1, :]  # (N, N)
    return reach


def expected_children(grammar: Grammar, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """M of eq. (1) and t of eq. (3) over ``symbols``: arrays (N, N) and (N,)."""
    index = {a: i for i, a in enumerate(symbols)}
    M = np.zeros((len(symbols), len(symbols)))
    t = np.zeros(len(symbols))
    for r in grammar.rules:
        if r.lhs not in index:
            continue
        a = index[r.lhs]
        for s in r.rhs:
            if isinstance(s, Terminal):
                t[a] += r.prob  # eq. (3)
            elif s in index:
                M[a, index[s]] += r.prob  # eq. (1)
    return M, t


def _reachable(grammar: Grammar) -> list[str]:
    seen = {grammar.start}
    stack = [grammar.start]
    while stack:
        a = stack.pop()
        for i in grammar.by_lhs[a]:
            for s in grammar.rules[i].rhs:
                if not isinstance(s, Terminal) and s not in seen:
                    seen.add(s)
                    stack.append(s)
    return [a for a in grammar.nonterminals if a in seen]


def _least_fixed_point(grammar: Grammar, ok_terminal: bool) -> set:
    """Symbols with a rule whose right-hand side is all terminals (if ok_terminal) and found symbols."""
    found: set = set()
    changed = True
    while changed:
        changed = False
        for r in grammar.rules:
            if r.lhs in found or r.prob <= 0.0:
                continue
            if all((ok_terminal if isinstance(s, Terminal) else s in found) for s in r.rhs):
                found.add(r.lhs)
                changed = True
    return found


def _left_recursive(grammar: Grammar, nullable: set) -> list[str]:
    """Left-recursive symbols: A ->+ A ... through left corners (X is a left corner of A if X follows only
    nullable symbols on a right-hand side of A)."""
    index = {a: i for i, a in enumerate(grammar.nonterminals)}
    lc = np.zeros((len(index), len(index)), dtype=bool)  # (N, N) one left-corner step
    for r in grammar.rules:
        if r.prob <= 0.0:
            continue
        for s in r.rhs:
            if isinstance(s, Terminal):
                break
            lc[index[r.lhs], index[s]] = True
            if s not in nullable:
                break
    lc_reach = _closure(lc)
    return [a for a in grammar.nonterminals if lc_reach[index[a], index[a]]]


def _critical_sets(M: np.ndarray, symbols: list[str]) -> list[tuple[str, float]]:
    """The strongly connected sets of symbols whose own block of M has spectral radius >= 1: (names, rho)."""
    reach = _closure(M > 0)
    done: set = set()
    culprits = []
    for i in range(len(symbols)):
        if i in done or not reach[i, i]:
            continue
        comp = [j for j in range(len(symbols)) if reach[i, j] and reach[j, i]]
        done.update(comp)
        r_block = float(np.max(np.abs(np.linalg.eigvals(M[np.ix_(comp, comp)]))))
        if r_block >= 1.0 - 1e-12:
            culprits.append((", ".join(symbols[j] for j in comp), r_block))
    return culprits


def analyze(grammar: Grammar) -> Analysis:
    """Check a grammar and compute eqs. (2)-(3).

    >>> a = analyze(Grammar.fromstring("S -> S S [0.4] | 'a' [0.6]"))
    >>> round(a.expected_derivation_size, 9), round(a.expected_length, 9), a.left_recursive
    (5.0, 3.0, ['S'])
    >>> analyze(Grammar.fromstring("S -> S S [0.6] | 'a' [0.4]")).errors
    ['the grammar is inconsistent: the expected-children matrix of S has spectral radius 1.2 >= 1,
      so derivations need not terminate (lower the weights of the recursive rules)']
    """
    errors: list[str] = []
    warnings: list[str] = []
    for a, total in grammar.renormalised.items():
        warnings.append(
            f"the weights of {a} sum to {total:.6g}, not 1: they are renormalised (each divided by {total:.6g})"
        )
    errors.extend(reserved_terminals(grammar))
    reachable = _reachable(grammar)
    rset = set(reachable)
    unreachable = [a for a in grammar.nonterminals if a not in rset]
    if unreachable:
        warnings.append(f"unreachable from {grammar.start}: {', '.join(unreachable)}")
    productive = _least_fixed_point(grammar, ok_terminal=True)
    nonproductive = [a for a in grammar.nonterminals if a not in productive]
    bad = [a for a in nonproductive if a in rset]
    if bad:
        errors.append(f"non-productive symbols (no finite derivation): {', '.join(bad)}")
    nullable_set = _least_fixed_point(grammar, ok_terminal=False)
    nullable = [a for a in grammar.nonterminals if a in nullable_set]
    left_recursive = _left_recursive(grammar, nullable_set)

    rho, size, length = _termination(grammar, reachable, bad, errors)
    consistent = rho < 1.0 - 1e-12 and not bad
    return Analysis(
        start=grammar.start,
        nonterminals=len(grammar.nonterminals),
        terminals=len(grammar.terminals),
        rules=len(grammar.rules),
        unreachable=unreachable,
        nonproductive=nonproductive,
        nullable=nullable,
        left_recursive=left_recursive,
        spectral_radius=rho,
        consistent=consistent,
        expected_derivation_size=size,
        expected_length=length,
        errors=errors,
        warnings=warnings,
    )


def _termination(grammar: Grammar, reachable: list[str], bad: list[str], errors: list[str]) -> tuple:
    """(rho, expected derivation size, expected length) from the expected-children matrix M.

    rho is the spectral radius of M; at rho >= 1 derivations need not terminate, and the error naming the
    critical sets is appended to ``errors``. Eqs. (2)-(3) need rho < 1 and no non-productive symbol (else None).
    """
    M, t = expected_children(grammar, reachable)
    rho = float(np.max(np.abs(np.linalg.eigvals(M)))) if len(M) else 0.0
    size = length = None
    if rho >= 1.0 - 1e-12:
        culprits = _critical_sets(M, reachable)
        names = "; ".join(f"{c} has spectral radius {r:.6g}" for c, r in culprits) or f"spectral radius {rho:.6g}"
        errors.append(
            f"the grammar is inconsistent: the expected-children matrix of {names} >= 1, so derivations "
            "need not terminate (lower the weights of the recursive rules)"
        )
    elif not bad:
        G = np.linalg.inv(np.eye(len(M)) - M)  # (N, N) (I - M)^-1
        s = reachable.index(grammar.start)
        size = float(G[s].sum())  # eq. (2)
        length = float(G[s] @ t)  # eq. (3)
    return rho, size, length
