"""The word tokenizer's pattern: which characters make a word, built as one regular expression.

:func:`scratchgen.text.word_tokenize` matches, left to right, the first of these alternatives::

    <unk> | <s> | </s>            the reserved tokens, whole
    digits ([.,] digits)+         a number with inner points or commas: 3.14, 1,000,000
    word ([' ’ -] word)*          a run of word characters, kept whole across inner ' ’ and -
    one CJK character             ideographs, kana, hangul: one token each
    any other visible character   punctuation and symbols: one token each

where a word character is a letter or digit that is not CJK, or a combining mark (Mn, Mc, Me) inside a
word; a word never starts with a mark. Whitespace matches nothing, so it only separates.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["CJK", "TOKEN_RE"]

# Ideographs (CJK unified, extensions, compatibility), kana, hangul syllables and jamo: each one token.
CJK = (
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3040-\u30ff\u3100-\u312f\u3131-\u318f"
    "\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff"
    "\uff66-\uff9f\uffa0-\uffdc\u1100-\u11ff\U00016fe0-\U00016fff\U0001b000-\U0001b16f"
    "\U00020000-\U0003134f"
)


def _mark_ranges() -> str:
    """A regex class body of every combining mark (categories Mn, Mc, Me), computed once."""
    ranges: list[tuple[int, int]] = []  # (first, last) code point of each run of marks
    start = prev = -2  # the run being read (-2: none yet, and not adjacent to any code point)
    for cp in range(0x300, 0x30000):
        if unicodedata.category(chr(cp))[0] == "M":
            if cp != prev + 1:
                if start >= 0:
                    ranges.append((start, prev))
                start = cp
            prev = cp
    ranges.append((start, prev))
    return "".join(f"{chr(a)}-{chr(b)}" if a != b else chr(a) for a, b in ranges)


_MARKS = _mark_ranges()
# A word character: a letter or digit that is not CJK, or a combining mark (Hindi vowel signs,
# diacritics NFC could not compose) inside a word.
_WORD_CHAR = rf"(?:(?![{CJK}])[^\W_]|[{_MARKS}])"
_WORD = rf"(?![{_MARKS}]){_WORD_CHAR}+(?:['\u2019\-]{_WORD_CHAR}+)*"  # inner ' ’ - keep a word whole
_NUMBER = r"\d+(?:[.,]\d+)+"  # 3.14, 1,000,000
_SPECIAL = r"<unk>|</?s>"  # the reserved tokens stay whole (PTB-style corpora write <unk>)
TOKEN_RE = re.compile(rf"{_SPECIAL}|{_NUMBER}|{_WORD}|[{CJK}]|\S")
