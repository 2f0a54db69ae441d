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

**Words are written and read as they are**, as KenLM's ``lmplz`` writes them and KenLM reads them: a
backslash is a backslash, ``é`` is ``é``. KenLM splits a line at the space, the tab and the newline, and
``lmplz`` splits its corpus at those, the carriage return and NUL too; none of these five can stand inside a
word. Every other character, other Unicode spaces included (U+3000, U+00A0), is written raw: KenLM keeps it
inside the word, and so does :func:`read_arpa`.

**Whitespace tokens** are a character-level matter (a word tokenizer never makes one). A file is
*character-level* when every token but ``<unk>``, ``<s>`` and ``</s>`` is one character; there, and only
there, each of the five separators is written as a visible stand-in, as SentencePiece writes the space::

    " " -> U+2581 "▁"     "\\t" -> U+2409 "␉"     "\\n" -> U+240A "␊"     "\\r" -> U+240D "␍"     NUL -> U+2400 "␀"

and a character-level file's stand-ins are read back as the characters they stand for. The rule looks only at
the tokens, so writing and reading agree by construction. What cannot round-trip is refused with an
:class:`~scratchgen.errors.ArpaError` on writing: a character-level vocabulary that holds a stand-in itself
(it would be read back as whitespace), and a word-level token that holds a separator.
"""

from __future__ import annotations

import os
import re

import numpy as np

from ..errors import ArpaError
from ..io import atomic_write
from ..resources import check_memory
from ..text import Vocabulary

__all__ = ["read_arpa", "write_arpa", "escape_token", "unescape_token", "is_char_level", "STAND_INS"]

#: The characters an ARPA word cannot hold, and their stand-ins in a character-level file.
STAND_INS = {" ": "\u2581", "\t": "\u2409", "\n": "\u240a", "\r": "\u240d", "\0": "\u2400"}
_BACK = {v: k for k, v in STAND_INS.items()}
_SEPARATORS = re.compile("[ \t\n\r\0]")
_FIELD_SEPARATORS = re.compile("[ \t]+")  # KenLM: tab, space (and the newline that ends the line)
_COUNT_LINE = re.compile(r"ngram\s+(\d+)\s*=\s*(\d+)")


def escape_token(token: str) -> str:
    """The spelling of a character-level token in an ARPA file (or a corpus for ``lmplz``).

    >>> escape_token(" "), escape_token("\\\\"), escape_token("\\u3000")
    ('▁', '\\\\', '\\u3000')
    """
    return "".join(STAND_INS.get(ch, ch) for ch in token) if _SEPARATORS.search(token) else token


def unescape_token(word: str) -> str:
    """The character-level token a word of an ARPA file stands for (inverse of :func:`escape_token`)."""
    return _BACK.get(word, word)


def is_char_level(tokens) -> bool:
    """Whether every token but the specials is one character: a character-level file (module docstring)."""
    return all(len(t) == 1 for t in tokens if t not in Vocabulary.SPECIALS)


def _spellings(tokens: list) -> list:
    """How each token is written (module docstring), or an ArpaError for a token that cannot be."""
    if is_char_level(tokens):
        for t in tokens:
            if t in _BACK:
                raise ArpaError(
                    f"the vocabulary holds {t!r} (U+{ord(t):04X}), the stand-in for {_BACK[t]!r} in a "
                    "character-level ARPA file, so it would be read back as whitespace; it cannot be "
                    "written as ARPA"
                )
        return [escape_token(t) for t in tokens]
    for t in tokens:
        if _SEPARATORS.search(t):
            raise ArpaError(
                f"token {t!r} holds whitespace, which an ARPA word cannot hold (only a character-level "
                "vocabulary, every token one character, maps whitespace to stand-ins)"
            )
    return list(tokens)


def _fmt(x: float) -> str:
    if x == -np.inf or x <= -99.0:
        return "-99"
    if x == 0.0:
        return "0"  # as lmplz writes it (and never "-0.0")
    return repr(float(x))  # the shortest text that reads back as the same float64: exact round trip


def write_arpa(path, tokens: list, rows: list, logp10: list, bow10: list) -> None:
    """Write an ARPA file atomically (through :func:`scratchgen.io.atomic_write`).

    Parameters
    ----------
    tokens : list of str, the vocabulary (id -> token)
    rows : list over orders of int arrays (U_n, n): the n-grams as ids
    logp10 : list over orders of float arrays (U_n,): log10 probabilities
    bow10 : list over orders 1 .. N-1 of float arrays (U_n,): log10 backoff weights

    Raises
    ------
    ArpaError
        A token that cannot be written (see the module docstring); nothing is written then.
    """
    spelled = _spellings(list(tokens))
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


def _min_line_bytes(n: int) -> int:
    """The shortest n-gram line: a one-digit probability, a tab, n one-byte words and n - 1 spaces, a newline."""
    return 1 + 1 + n + (n - 1) + 1


def _check_declared(name: str, declared: dict, header_line: dict, size: int) -> None:
    """Refuse header counts the file cannot hold, then counts that would not fit in memory (issue 9, item 3)."""
    least = 0  # bytes the n-gram lines of orders 1 .. n take at least
    for n, count in declared.items():
        least += count * _min_line_bytes(n)
        if least > size:
            raise ArpaError(
                f"{name}: line {header_line[n]}: the header declares {count:,} {n}-grams, but the file "
                f"({size:,} bytes) cannot hold them (a {n}-gram line takes at least "
                f"{_min_line_bytes(n)} bytes)"
            )
    # While reading: ids (8 n bytes), log probability and backoff (16); the model built from them doubles that.
    estimate = sum(count * (8 * n + 16) * 2 for n, count in declared.items())
    check_memory(
        estimate,
        f"reading the ARPA file {name!r} ({sum(declared.values()):,} n-grams)",
        "set SCRATCHGEN_MEMORY_LIMIT to allow more",
    )


def read_arpa(path, progress=None):
    """Read an ARPA file (words as they are; a character-level file's stand-ins mapped back).

    ``progress`` (a :class:`scratchgen.progress.Progress`, optional) is advanced by the bytes read.

    Returns
    -------
    tokens : list of str, the unigrams in file order (ids 0 .. in that order)
    rows : list over orders of int arrays (U_n, n), n-grams as those ids
    logp10, bow10 : lists over orders of float arrays (U_n,); bow10 for every order (0 where absent);
        log values of -99 or less are -inf.

    Raises
    ------
    ArpaError
        naming the line number and the problem; a header that declares more n-grams than the file can hold
        is refused before anything is allocated (and :func:`scratchgen.resources.check_memory` is asked).
    """
    name = os.fspath(path)
    try:
        f = open(name, "rb")
        size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise ArpaError(f"cannot read ARPA file {name!r}: {(e.strerror or str(e)).lower()}") from None
    with f:
        try:
            parsed = _parse(name, _numbered_lines(name, f, progress), size)
        except OSError as e:
            raise ArpaError(f"cannot read ARPA file {name!r}: {(e.strerror or str(e)).lower()}") from None
    if progress is not None:
        progress.update(size - progress.n)  # read to \\end\\ (anything after it is ignored)
    return parsed


def _numbered_lines(name: str, f, progress=None):
    """(line number, text) of each line of the binary file ``f``: only "\\n" ends a line ("\\r" may be inside
    a word; the "\\r" of a CRLF line end is dropped), each line decoded as UTF-8."""
    offset = 0
    for number, raw in enumerate(f, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ArpaError(
                f"{name}: line {number}: not UTF-8 at byte {offset + e.start} (0x{raw[e.start]:02x})"
            ) from None
        offset += len(raw)
        if progress is not None and not number % 65536:
            progress.update(offset - progress.n)
        yield number, line.removesuffix("\n").removesuffix("\r")


class _Lines:
    """A cursor over numbered lines that can look at the next one and skip blank ones."""

    def __init__(self, name: str, lines):
        self.name, self._lines, self._peeked, self.number = name, lines, None, 0

    def peek(self):
        if self._peeked is None:
            self._peeked = next(self._lines, (self.number + 1, None))
        return self._peeked[1]

    def take(self):
        line = self.peek()
        self.number, self._peeked = self._peeked[0], None
        return line

    def skip_blank(self) -> None:
        while self.peek() is not None and not self.peek().strip(" \t"):
            self.take()

    def bad(self, problem: str, number: int | None = None) -> ArpaError:
        return ArpaError(f"{self.name}: line {number or self.number}: {problem}")


def _number(text: str, lines: _Lines, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise lines.bad(f"{what} {text!r} is not a number") from None
    if np.isnan(value) or value == np.inf:
        raise lines.bad(f"{what} {text!r} is not a finite number")
    return value


def _parse(name: str, numbered, size: int):
    lines = _Lines(name, numbered)
    declared = _parse_header(name, lines, size)
    token_ids: dict[str, int] = {}
    rows, logp10, bow10 = [], [], []
    for n in range(1, len(declared) + 1):
        r, lp, bo = _parse_section(lines, n, declared[n], token_ids)
        rows.append(r)
        logp10.append(lp)
        bow10.append(bo)
    lines.skip_blank()
    end = lines.take()
    if end is None or end.strip(" \t") != "\\end\\":
        raise lines.bad("expected \\end\\ after the last section" + (f", got {end!r}" if end is not None else ""))
    tokens = list(token_ids)
    for special in ("<s>", "</s>"):
        if special not in token_ids:
            raise ArpaError(f"{name}: the unigrams have no {special}")
    if is_char_level(tokens):
        tokens = [unescape_token(t) for t in tokens]
    return tokens, rows, logp10, bow10


def _parse_header(name: str, lines: _Lines, size: int) -> dict[int, int]:
    """The \\data\\ block: the declared number of n-grams of each order, checked against the file's size."""
    lines.skip_blank()
    first = lines.take()
    if first is None or first.strip(" \t") != "\\data\\":
        raise lines.bad("an ARPA file starts with \\data\\", max(lines.number, 1))
    declared: dict[int, int] = {}
    header_line: dict[int, int] = {}
    while lines.peek() is not None and lines.peek().strip(" \t"):
        line = lines.take()
        m = _COUNT_LINE.fullmatch(line.strip(" \t"))
        if not m:
            raise lines.bad(f"expected 'ngram N=COUNT' in the header, got {line!r}")
        if len(m.group(1)) > 18 or len(m.group(2)) > 18:
            raise lines.bad(f"the header line {line[:40]!r}... holds a number too large for any file")
        n = int(m.group(1))
        if n != len(declared) + 1:
            raise lines.bad(f"the header declares order {n} after order {len(declared)}")
        declared[n], header_line[n] = int(m.group(2)), lines.number
    if not declared:
        raise lines.bad("the header declares no n-grams", lines.number + 1)
    _check_declared(name, declared, header_line, size)
    return declared


def _parse_section(lines: _Lines, n: int, count: int, token_ids: dict[str, int]):
    """The \\n-grams: section of ``count`` lines: rows of token ids (count, n), log10 p and log10 b (count,).
    The unigrams number the tokens (``token_ids``, filled here); a longer n-gram's words must be among them."""
    lines.skip_blank()
    section = lines.take()
    if section is None or section.strip(" \t") != f"\\{n}-grams:":
        raise lines.bad(
            f"expected the section \\{n}-grams:"
            + (f", got {section!r}" if section is not None else ", got the end of the file")
        )
    r = np.empty((count, n), dtype=np.int64)
    lp = np.empty(count)
    bo = np.zeros(count)
    for j in range(count):
        line = lines.peek()
        if line is None or not line.strip(" \t") or line.startswith("\\"):
            raise lines.bad(f"the header declares {count} {n}-grams, the section has {j}", lines.number + 1)
        lines.take()
        fields = [x for x in _FIELD_SEPARATORS.split(line) if x]
        if len(fields) not in (n + 1, n + 2):
            raise lines.bad(
                f"a {n}-gram line has a log probability, {n} words and maybe a backoff weight, got {len(fields)} fields"
            )
        lp[j] = _number(fields[0], lines, "log10 probability")
        if lp[j] > 1e-6:
            raise lines.bad(f"log10 probability {fields[0]} is not <= 0")
        if len(fields) == n + 2:
            bo[j] = _number(fields[-1], lines, "log10 backoff weight")
            if bo[j] >= 99.0:  # the mirror of -99 (a weight of 0): no estimator writes a factor of 10^99
                raise lines.bad(f"log10 backoff weight {fields[-1]} is not below 99")
        words = fields[1 : n + 1]
        if n == 1:
            if words[0] in token_ids:
                raise lines.bad(f"unigram {words[0]!r} is listed twice")
            token_ids[words[0]] = len(token_ids)
            r[j, 0] = token_ids[words[0]]
        else:
            for k, w in enumerate(words):
                t = token_ids.get(w)
                if t is None:
                    raise lines.bad(f"word {w!r} is not among the unigrams")
                r[j, k] = t
    lp[lp <= -99.0] = -np.inf  # SRILM's log10 0
    np.minimum(lp, 0.0, out=lp)  # KenLM's reading of a rounding error above 0
    bo[bo <= -99.0] = -np.inf
    return r, lp, bo
