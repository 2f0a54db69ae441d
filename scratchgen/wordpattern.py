"""The word tokenizer's pattern, written for speed: one ``findall`` a text, no look-ahead, no loop.

The language is defined by the reference tokenizer (:mod:`scratchgen.text_reference`): at each position
the first of these alternatives matches::

    <unk> | <s> | </s>            the reserved tokens, whole
    digits ([.,] digits)+         a number with inner points or commas: 3.14, 1,000,000
    word ([' ’ -] word)*          a run of word characters, kept whole across inner ' ’ and -
    one CJK character             ideographs, kana, hangul: one token each
    any other visible character   punctuation and symbols: one token each

where a word character is a letter or digit that is not CJK, or a combining mark (Mn, Mc, Me) inside a
word; a word never starts with a mark. Whitespace only separates. A combining mark that no word took
(after a space or a punctuation mark) is glued to the token before it.

The same language, written so that the regular expression engine does the work:

1. *Character classes instead of look-aheads.* "A letter or digit that is not CJK" is the one class
   ``[^\\W_<CJK>]`` (not a non-word character, not ``_``, not CJK), and a word may not start with a mark
   because no mark is a letter or digit (a test checks it over all of Unicode). Runs are possessive
   (``++``): a run never gives characters back, so the engine keeps no backtracking state.
2. *Glued marks inside the pattern.* Every alternative ends with ``[<marks>]*+``: the marks right after a
   token are part of it, as the reference's gluing makes them. Only a mark after whitespace is left,
   which starts a token of its own; :func:`glue_marks` joins those (a search finds whether there is
   any: in most texts there is none, and then ``findall`` alone is the answer).
3. *One pattern a kind of text* (:func:`text_kind`). ASCII text (``str.isascii``, free for a str) has no
   marks, no CJK and no curly apostrophe, so its pattern is plain ``[A-Za-z0-9]`` classes, words that
   start with a letter first. Text without code points beyond U+FFFF gets classes without them: the
   engine tests a class's BMP part in one bitmap look-up but its astral ranges one by one.
4. *Lines in one pass.* With ``lines=True`` a newline is a token of its own, so a whole chunk of a file
   is tokenized by one call and its lines found afterwards in the id array; a mark is never glued
   across a newline (each line is tokenized alone in the reference reading).
5. *ASCII prose without the engine* (:func:`ascii_spans`): where no number and no reserved token
   occurs, a token starts at a visible character unless it and the one before it are both in a word,
   and ends at the next start or space: array operations find every token's offsets, and a reader
   that wants ids (:mod:`scratchgen.corpus`) never makes a str of each token.

The tables of marks take a scan of Unicode (about 20 ms), so they are built the first time a non-ASCII
text is tokenized, not when scratchgen is imported.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = [
    "CJK",
    "CJK_BMP",
    "mark_ranges",
    "all_mark_ranges",
    "text_kind",
    "token_re",
    "stray_mark_re",
    "glue_marks",
    "split_ascii_lines",
    "ascii_spans",
    "bmp_classes",
]

# Ideographs (CJK unified, extensions, compatibility), kana, hangul syllables and jamo: each one token.
CJK_BMP = (
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3040-\u30ff\u3100-\u312f\u3131-\u318f"
    "\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
    "\uff66-\uff9f\uffa0-\uffdc\u1100-\u11ff"
)
CJK = CJK_BMP + "\U00016fe0-\U00016fff\U0001b000-\U0001b16f\U00020000-\U0003134f"
#: Where the combining marks are: U+0300 up to plane 3 (the word characters' marks), and plane 14
#: (variation selectors, glued but never inside a word, as in the reference). A test checks that no
#: other code point is a mark in this Python's Unicode tables.
WORD_MARK_SPAN = (0x300, 0x30000)
OTHER_MARK_SPANS = ((0xE0000, 0xE1000),)


def _ranges(codes: list[int]) -> str:
    """A regex class body for sorted code points, consecutive ones as a range ``a-b``."""
    parts = []
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        a, b = codes[i], codes[j]
        parts.append(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b != a else ""))
        i = j + 1
    return "".join(parts)


def _marks_in(first: int, stop: int) -> list[int]:
    category = unicodedata.category
    return [cp for cp in range(first, stop) if category(chr(cp))[0] == "M"]


@functools.cache
def _mark_codes() -> tuple[list[int], list[int]]:
    """The combining marks (Mn, Mc, Me): those a word may hold (U+0300 up to plane 3), and the others."""
    return _marks_in(*WORD_MARK_SPAN), [cp for a, b in OTHER_MARK_SPANS for cp in _marks_in(a, b)]


def mark_ranges(bmp_only: bool = False) -> str:
    """A regex class body of the marks a word may hold (U+0300 up to plane 3), or of those in the Basic
    Multilingual Plane only. Computed once, on first use."""
    word_marks, _ = _mark_codes()
    return _ranges([cp for cp in word_marks if cp <= 0xFFFF] if bmp_only else word_marks)


def all_mark_ranges(bmp_only: bool = False) -> str:
    """A regex class body of every combining mark (:func:`mark_ranges` and plane 14's), or of the
    Basic Multilingual Plane's (the same as ``mark_ranges(bmp_only=True)``: plane 14 is not in it)."""
    word_marks, other = _mark_codes()
    return mark_ranges(bmp_only) if bmp_only else _ranges(word_marks + other)


# The ASCII pattern: a word that starts with a letter first (the common case), then one punctuation
# mark, then numbers and words that start with a digit (NUMBER before WORD, as in the reference), then
# the reserved tokens and any other visible character ('<' and the controls that \S takes).
_ASCII = (
    r"[A-Za-z][A-Za-z0-9]*+(?:['\-][A-Za-z0-9]++)*+"
    r"|[^\sA-Za-z0-9<]"
    r"|\d++(?:[.,]\d++)++"
    r"|[0-9][A-Za-z0-9]*+(?:['\-][A-Za-z0-9]++)*+"
    r"|<unk>|</?s>|\S"
)


#: Finds a code point beyond the Basic Multilingual Plane (emoji, CJK extension B, ...).
ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")


def text_kind(text: str) -> str:
    """``"ascii"``, ``"bmp"`` (no code point beyond U+FFFF) or ``"full"``: which pattern reads it fastest."""
    if text.isascii():  # free: CPython records it in the str
        return "ascii"
    return "full" if ASTRAL_RE.search(text) else "bmp"


@functools.cache
def token_re(kind: str, lines: bool = False) -> re.Pattern:
    """The compiled token pattern for text of a :func:`text_kind`; with ``lines``, a newline is a token.

    The three give the same tokens on the text they are made for; they differ in speed only. A class
    that holds code points beyond U+FFFF is tested range by range for every character (the engine's
    bitmap covers the BMP only), so text without such code points gets classes without them: about
    three times faster. ``findall`` gives the reference's tokens, except that a mark after whitespace
    is a token of its own: :func:`glue_marks` joins it when :func:`stray_mark_re` finds one.
    """
    newline = "\n|" if lines else ""
    if kind == "ascii":
        return re.compile(newline + _ASCII)
    bmp = kind == "bmp"
    cjk, marks, every_mark = (CJK_BMP if bmp else CJK), mark_ranges(bmp), all_mark_ranges(bmp)
    letter = f"[^\\W_{cjk}]"  # a letter or digit that is not CJK: the reference's word character, less marks
    run = f"(?:{letter}++|[{marks}]++)"  # word characters, a run of letters or of marks at a time
    word = f"{letter}++(?:[{marks}]{letter}*+)*+(?:['\u2019\\-]{run}++)*+"
    # CJK first: no CJK character starts a number, a word or a reserved token (a test checks it), so the
    # order changes only the time Chinese text takes. NUMBER stays before WORD (both take digits).
    token = rf"[{cjk}]|\d++(?:[.,]\d++)++|{word}|<unk>|</?s>|\S"
    return re.compile(f"{newline}(?:{token})[{every_mark}]*+")


@functools.cache
def stray_mark_re(kind: str = "full") -> re.Pattern:
    """Finds a combining mark after whitespace: the only place where ``token_re`` leaves a mark unglued
    (in text of a :func:`text_kind`: ASCII text has no marks at all)."""
    return re.compile(f"\\s[{all_mark_ranges(kind == 'bmp')}]")


@functools.cache
def _starts_with_mark() -> re.Pattern:
    return re.compile(f"[{all_mark_ranges()}]")


def glue_marks(tokens: list[str]) -> list[str]:
    """Join each token that starts with a combining mark to the token before it (as the reference does),
    never to a newline token nor across one: each line is tokenized alone."""
    is_mark = _starts_with_mark().match
    out: list[str] = []
    for token in tokens:
        if out and out[-1] != "\n" and is_mark(token):
            out[-1] += token
        else:
            out.append(token)
    return out


# --- characters that are always a token of their own -------------------------------------------------------

#: The classes of :func:`bmp_classes`.
SPACE, SINGLE, OTHER = 0, 1, 2


@functools.cache
def bmp_classes():
    """The class of every code point of the Basic Multilingual Plane for the word tokenizer (uint8 array of
    shape (65536,)), built on first use:

    - ``SPACE`` (0): whitespace (what ``\\s`` matches): it only separates;
    - ``SINGLE`` (1): a token of its own wherever it stands, when no combining mark follows it: a CJK
      character, or a visible character that is neither a word character (``\\w``), nor a mark, nor ``<``
      (which may begin a reserved token), nor a surrogate (not text);
    - ``OTHER`` (2): anything else (letters, digits, ``_``, marks, ``<``, surrogates): the regular
      expression decides.

    So a text whose characters are all ``SPACE`` or ``SINGLE`` (Chinese prose, say) has one token a visible
    character, as the reference's pattern gives it: no alternative before CJK (reserved tokens, numbers,
    words) can begin at a ``SINGLE`` character, and only a mark is ever glued to a token.
    """
    import numpy as np

    bmp = [chr(cp) for cp in range(0x10000)]
    word = np.fromiter(map(str.isalnum, bmp), dtype=bool, count=0x10000)  # \\w: str.isalnum, and _
    word[ord("_")] = True
    classes = np.where(word, OTHER, SINGLE).astype(np.uint8)  # (65536,)
    body = CJK_BMP  # a class body of single characters and ranges a-b, no escapes
    i = 0
    while i < len(body):
        is_range = i + 2 < len(body) and body[i + 1] == "-"
        last = body[i + 2] if is_range else body[i]
        classes[ord(body[i]) : ord(last) + 1] = SINGLE
        i += 3 if is_range else 1
    word_marks, other_marks = _mark_codes()
    classes[[cp for cp in word_marks + other_marks if cp <= 0xFFFF]] = OTHER
    classes[ord("<")] = OTHER
    classes[0xD800:0xE000] = OTHER  # surrogates
    classes[np.fromiter(map(str.isspace, bmp), dtype=bool, count=0x10000)] = SPACE  # \\s: str.isspace
    return classes


# --- ASCII lines without the regular expression engine ---------------------------------------------------


#: The classes of the ASCII bytes for :func:`ascii_spans` (letters and digits next to each other).
_SPACE, _LETTER, _DIGIT, _JOINER, _POINT, _VISIBLE = range(6)


def _ascii_classes() -> bytes:
    """The table of ``bytes.translate`` from a byte to its class (256 bytes; bytes above 127 never occur)."""
    table = bytearray([_VISIBLE]) * 256
    for c in range(128):
        if chr(c).isspace():  # Python's ASCII whitespace: \t .. \r, \x1c .. space
            table[c] = _SPACE
        elif chr(c).isdigit():
            table[c] = _DIGIT
        elif chr(c).isalpha():
            table[c] = _LETTER
    for joiner in "'-":
        table[ord(joiner)] = _JOINER
    for point in ".,":
        table[ord(point)] = _POINT
    return bytes(table)


_ASCII_CLASSES = _ascii_classes()


def ascii_spans(text: str):
    """Where the word tokens of ASCII ``text`` (whole lines, newline-terminated) lie, found with array
    operations only; ``None`` when a number or a reserved token needs the full pattern.

    Returns ``(codes, starts, ends, lengths)``: the bytes of the text (uint8 array of shape (n,)), the
    offset where each token starts and ends (int arrays of shape (tokens,): token i is
    ``text[starts[i]:ends[i]]``), and the number of tokens of each line (shape (lines,)). The same tokens
    as ``token_re("ascii")`` line by line.

    Without numbers and reserved tokens the ASCII language is: a word is a maximal run of letters, digits
    and *inner* joiners (an apostrophe or hyphen with a letter or digit on both sides); every other visible
    character is a token of its own. So a token starts at a visible character unless it and the one before
    it both belong to a word, and it ends where the next token starts or whitespace begins::

        start(i) = visible(i) and not (word(i) and word(i - 1))
        end(t)   = the first i > start(t) with start(i) or space(i)                                    (S)
    """
    import numpy as np

    if not text.isascii() or ("<" in text and ("<unk>" in text or "<s>" in text or "</s>" in text)):
        return None
    raw = text.encode("ascii")
    b = np.frombuffer(raw, dtype=np.uint8)  # (n,) the bytes are the characters
    # The class of every byte by one bytes.translate (a table look-up a byte in C), then a comparison a class.
    kind = np.frombuffer(raw.translate(_ASCII_CLASSES), dtype=np.uint8)  # (n,)
    digit = kind == _DIGIT  # (n,)
    if (digit[:-2] & (kind[1:-1] == _POINT) & digit[2:]).any():  # a number: the number rule may cut a word
        return None
    del digit  # (each (n,) array goes as soon as it is used: a chunk of text holds a few at a time, not all)
    alnum = (kind - np.uint8(_LETTER)) <= np.uint8(_DIGIT - _LETTER)  # (n,) [A-Za-z0-9] (the subtraction wraps)
    joiner = kind == _JOINER
    word = alnum.copy()  # (n,) in a word: letters, digits and inner joiners (a letter or digit on both sides)
    word[1:-1] |= joiner[1:-1] & alnum[:-2] & alnum[2:]
    del alnum, joiner
    space = kind == _SPACE  # (n,) Python's ASCII whitespace: \t .. \r, \x1c .. space
    del kind
    start = ~space  # (n,) a token starts here: a visible character ...
    start[1:] &= ~(word[1:] & word[:-1])  # ... unless it and the one before it are in a word
    del word
    starts = np.flatnonzero(start)  # (tokens,)
    last = np.empty(len(b), dtype=bool)  # (n,) eq. (S): a token's last character, a visible one before ...
    np.bitwise_or(start[1:], space[1:], out=last[:-1])  # ... a start or a space, or at the end
    del start
    last[-1:] = True
    last &= ~space
    del space
    ends = np.flatnonzero(last)  # (tokens,)
    ends += 1  # one past each token's last character
    del last
    line_ends = np.searchsorted(starts, np.flatnonzero(b == ord("\n")))  # (lines,) tokens before each newline
    return b, starts, ends, np.diff(line_ends, prepend=0)


def split_ascii_lines(text: str):
    """The word tokens of ASCII ``text`` (whole lines, newline-terminated) as str, and the number of tokens
    of each line; ``None`` when a number or a reserved token needs the full pattern (:func:`ascii_spans`
    says how the tokens are found)."""
    spans = ascii_spans(text)
    if spans is None:
        return None
    _, starts, ends, lengths = spans
    return [text[i:j] for i, j in zip(starts.tolist(), ends.tolist())], lengths
