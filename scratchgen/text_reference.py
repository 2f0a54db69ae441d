"""The word tokenizer as first written: one readable regular expression, then a loop over its matches.

This is the definition that :func:`scratchgen.text.word_tokenize` must reproduce token for token (the
property tests in ``tests/test_text_fast.py`` compare them on random Unicode text). Read it first; the
fast version in :mod:`scratchgen.wordpattern` is the same language written so that the regular
expression engine never looks ahead at every character and Python never loops over matches.

The pattern matches, left to right, the first of these alternatives::

    <unk> | <s> | </s>            the reserved tokens, whole
    digits ([.,] digits)+         a number with inner points or commas: 3.14, 1,000,000
    word ([' ’ -] word)*          a run of word characters, kept whole across inner ' ’ and -
    one CJK character             ideographs, kana, hangul: one token each
    any other visible character   punctuation and symbols: one token each

where a word character is a letter or digit that is not CJK, or a combining mark (Mn, Mc, Me) inside a
word; a word never starts with a mark. Whitespace matches nothing, so it only separates. Then a match
that starts with a combining mark (one the word rule could not take: after a space or a punctuation
mark) is glued to the token before it.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from .wordpattern import CJK, mark_ranges

__all__ = ["word_tokenize", "token_re"]


@functools.cache
def token_re() -> re.Pattern:
    """The reference pattern, compiled on first use (its table of marks takes a scan of Unicode)."""
    marks = mark_ranges()
    # A word character: a letter or digit that is not CJK, or a combining mark (Hindi vowel signs,
    # diacritics NFC could not compose) inside a word.
    word_char = rf"(?:(?![{CJK}])[^\W_]|[{marks}])"
    word = rf"(?![{marks}]){word_char}+(?:['\u2019\-]{word_char}+)*"  # inner ' ’ - keep a word whole
    number = r"\d+(?:[.,]\d+)+"  # 3.14, 1,000,000
    special = r"<unk>|</?s>"  # the reserved tokens stay whole (PTB-style corpora write <unk>)
    return re.compile(rf"{special}|{number}|{word}|[{CJK}]|\S")


def word_tokenize(text: str) -> list[str]:
    """Words and punctuation of already normalised text, one match at a time.

    >>> word_tokenize("Don't stop, well-known friend: 3.14!")
    ["Don't", 'stop', ',', 'well-known', 'friend', ':', '3.14', '!']
    >>> word_tokenize("a \\u0301b") == ["a\\u0301", "b"]  # a stray mark joins the token before it
    True
    """
    tokens: list[str] = []
    for match in token_re().finditer(text):
        token = match.group()
        if tokens and unicodedata.category(token[0]).startswith("M"):
            tokens[-1] += token  # a stray combining mark belongs to the token before it
        else:
            tokens.append(token)
    return tokens
