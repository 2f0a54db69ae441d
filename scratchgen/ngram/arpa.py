"""Reading and writing ARPA files, the text format of KenLM and SRILM n-gram models.

An ARPA file lists, per order, every stored n-gram with its log10 probability and (below the highest
order) its log10 backoff weight; P(w | h) follows eq. (1) of :mod:`scratchgen.ngram.smoothing`::

    \\data\\
    ngram 1=5
    ngram 2=7

    \\1-grams:
    -1.2041200	<unk>	0
    0	<s>	-0.30103
    ...
    \\2-grams:
    -0.30103	<s> a
    ...
    \\end\\

Fields are separated by tabs (spaces are accepted on reading); the words of an n-gram by single spaces. A
log10 value (probability or backoff weight) of -99 or less means 0 (the SRILM convention; scratchgen writes
-99 for it, as maximum likelihood needs; KenLM reads it as the number 10^-99).

**Escape.** A token holding whitespace (a space or tab at character level) cannot stand in the file as it
is, so with ``escape=True`` (the default both ways) tokens are written with backslash escapes and read back
through them::

    \\\\  a backslash      \\s  a space      \\t  a tab      \\n  a newline      \\r  a carriage return
    \\uXXXX  any other whitespace character (4 hex digits; \\UXXXXXXXX beyond the BMP)

It round-trips every token. KenLM sees the escaped spelling as an ordinary word (score escaped text with it).
Read a foreign file whose words hold literal backslashes with ``escape=False``.
"""

from __future__ import annotations

import os
import re

import numpy as np

from ..errors import ArpaError
from ..io import atomic_write

__all__ = ["read_arpa", "write_arpa", "escape_token", "unescape_token"]

_ESC = {"\\": "\\\\", " ": "\\s", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNESC = {"\\": "\\", "s": " ", "t": "\t", "n": "\n", "r": "\r"}
_NEEDS = re.compile(r"[\\\s]")
_ESCAPE_SEQ = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)


def escape_token(token: str) -> str:
    """The spelling of ``token`` in an ARPA file.

    >>> escape_token(" "), escape_token("a\\\\b"), escape_token("\\u3000")
    ('\\\\s', 'a\\\\\\\\b', '\\\\u3000')
    """
    if not _NEEDS.search(token):
        return token
    out = []
    for ch in token:
        if ch in _ESC:
            out.append(_ESC[ch])
        elif ch.isspace():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def unescape_token(text: str, line: int | None = None) -> str:
    """The token an escaped ARPA spelling stands for (inverse of :func:`escape_token`)."""
    if "\\" not in text:
        return text

    def one(m: re.Match) -> str:
        code = m.group(1)
        if len(code) > 1:
            return chr(int(code[1:], 16))
        if code in _UNESC:
            return _UNESC[code]
        raise ArpaError(f"line {line}: unknown escape \\{code} in {text!r} (read with escape=False for literal "
                        "backslashes)")

    return _ESCAPE_SEQ.sub(one, text)


def _fmt(x: float) -> str:
    if x == -np.inf or x <= -99.0:
        return "-99"
    return repr(float(x))  # the shortest text that reads back as the same float64: exact round trip


def write_arpa(path, tokens: list, rows: list, logp10: list, bow10: list, escape: bool = True) -> None:
    """Write an ARPA file atomically.

    Parameters
    ----------
    tokens : list of str, the vocabulary (id -> token)
    rows : list over orders of int arrays (U_n, n): the n-grams as ids
    logp10 : list over orders of float arrays (U_n,): log10 probabilities
    bow10 : list over orders 1 .. N-1 of float arrays (U_n,): log10 backoff weights
    """
    spelled = [escape_token(t) if escape else t for t in tokens]
    if not escape:
        for t in tokens:
            if _NEEDS.search(t.replace("\\", "")):
                raise ArpaError(f"token {t!r} holds whitespace: it needs escape=True")
    N = len(rows)

    def write(f) -> None:
        f.write("\\data\\\n")
        for n in range(1, N + 1):
            f.write(f"ngram {n}={len(rows[n - 1])}\n")
        for n in range(1, N + 1):
            f.write(f"\n\\{n}-grams:\n")
            words = [" ".join(spelled[i] for i in r) for r in rows[n - 1].tolist()]
            probs = [_fmt(x) for x in logp10[n - 1].tolist()]
            if n < N:
                bows = [_fmt(x) for x in bow10[n - 1].tolist()]
                f.write("".join(f"{p}\t{w}\t{b}\n" for p, w, b in zip(probs, words, bows)))
            else:
                f.write("".join(f"{p}\t{w}\n" for p, w in zip(probs, words)))
        f.write("\n\\end\\\n")

    atomic_write(path, write, mode="w")


def read_arpa(path, escape: bool = True):
    """Read an ARPA file.

    Returns
    -------
    tokens : list of str, the unigrams in file order (ids 0 .. in that order)
    rows : list over orders of int arrays (U_n, n), n-grams as those ids
    logp10, bow10 : lists over orders of float arrays (U_n,); bow10 for every order (0 where absent);
        log probabilities of -99 or less are -inf.

    Raises
    ------
    ArpaError
        naming the line number and the problem.
    """
    name = os.fspath(path)
    try:
        f = open(name, encoding="utf-8")
    except OSError as e:
        raise ArpaError(f"cannot read ARPA file {name!r}: {e.strerror}") from None
    with f:
        try:
            lines = f.read().split("\n")
        except UnicodeDecodeError as e:
            raise ArpaError(f"{name}: not UTF-8 text ({e.reason})") from None

    def bad(i: int, problem: str) -> ArpaError:
        return ArpaError(f"{name}: line {i + 1}: {problem}")

    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip() != "\\data\\":
        raise bad(min(i, len(lines) - 1), "an ARPA file starts with \\data\\")
    i += 1
    declared: dict[int, int] = {}
    while i < len(lines) and lines[i].strip():
        m = re.fullmatch(r"ngram\s+(\d+)\s*=\s*(\d+)", lines[i].strip())
        if not m:
            raise bad(i, f"expected 'ngram N=COUNT' in the header, got {lines[i]!r}")
        n = int(m.group(1))
        if n != len(declared) + 1:
            raise bad(i, f"the header declares order {n} after order {len(declared)}")
        declared[n] = int(m.group(2))
        i += 1
    if not declared:
        raise bad(i, "the header declares no n-grams")
    N = len(declared)
    token_ids: dict[str, int] = {}
    tokens: list[str] = []
    rows, logp10, bow10 = [], [], []
    for n in range(1, N + 1):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines) or lines[i].strip() != f"\\{n}-grams:":
            raise bad(min(i, len(lines) - 1), f"expected the section \\{n}-grams:")
        i += 1
        r = np.empty((declared[n], n), dtype=np.int64)
        lp = np.empty(declared[n])
        bo = np.zeros(declared[n])
        for j in range(declared[n]):
            if i >= len(lines) or not lines[i].strip() or lines[i].startswith("\\"):
                raise bad(min(i, len(lines) - 1), f"the header declares {declared[n]} {n}-grams, "
                                                  f"the section has {j}")
            fields = lines[i].replace("\t", " ").split(" ")
            fields = [x for x in fields if x]
            if len(fields) not in (n + 1, n + 2):
                raise bad(i, f"a {n}-gram line has a log probability, {n} words and maybe a backoff weight, "
                             f"got {len(fields)} fields")
            try:
                lp[j] = float(fields[0])
                if len(fields) == n + 2:
                    bo[j] = float(fields[-1])
            except ValueError:
                raise bad(i, f"not a number in {lines[i]!r}") from None
            if not np.isfinite(lp[j]) and lp[j] != -np.inf or lp[j] > 1e-6:
                raise bad(i, f"log10 probability {fields[0]} is not <= 0")
            words = fields[1:n + 1]
            if escape:
                words = [unescape_token(w, i + 1) for w in words]
            if n == 1:
                if words[0] in token_ids:
                    raise bad(i, f"unigram {words[0]!r} is listed twice")
                token_ids[words[0]] = len(tokens)
                tokens.append(words[0])
                r[j, 0] = token_ids[words[0]]
            else:
                for k, w in enumerate(words):
                    t = token_ids.get(w)
                    if t is None:
                        raise bad(i, f"word {w!r} is not among the unigrams")
                    r[j, k] = t
            i += 1
        lp[lp <= -99.0] = -np.inf  # SRILM's log10 0
        bo[bo <= -99.0] = -np.inf
        rows.append(r)
        logp10.append(lp)
        bow10.append(bo)
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip() != "\\end\\":
        raise bad(min(i, len(lines) - 1), "expected \\end\\ after the last section"
                  + (f", got {lines[i]!r}" if i < len(lines) else ""))
    for special in ("<s>", "</s>"):
        if special not in token_ids:
            raise ArpaError(f"{name}: the unigrams have no {special}")
    return tokens, rows, logp10, bow10
