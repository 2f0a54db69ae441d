"""Text to token ids and back: normalisation, tokenizers and the vocabulary (reading files: :mod:`scratchgen.corpus`).

The classic preprocessing pipeline, in the order the data flows::

    raw text --normalize--> NFC text --tokenize--> tokens --Vocabulary.encode--> ids (int64)
    ids --Vocabulary.decode--> tokens --detokenize--> text

Normalisation is Unicode NFC (composed characters, so "e" + U+0301 and "é" are one token), then
optional lowercasing. Two tokenizers:

- **char**: every code point is a token; ``"".join(tokens)`` gives the normalised text back exactly.
- **word**: runs of letters and digits are words, kept whole across inner apostrophes and hyphens
  (``don't``, ``well-known``, ``3.14``); every other visible character is a token of its own; every
  CJK ideograph, kana and hangul syllable is a token of its own (Chinese text has no spaces, so a
  character is the natural unit; the pattern is in :mod:`scratchgen.wordpattern`). Whitespace only
  separates. Detokenization joins the tokens and gives the normalised text back up to whitespace.

The :class:`Vocabulary` reserves three ids::

    0 <unk>   any token not in the vocabulary
    1 <s>     start of sequence: context only, never emitted, never scored
    2 </s>    end of sequence: emitted and scored once a sequence

and orders the other tokens by descending count, ties by code point order, so ids never depend on
hash seeds or set order.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from . import wordpattern
from .errors import CorpusError, VocabularyError
from .wordpattern import CJK

__all__ = [
    "UNK",
    "BOS",
    "EOS",
    "normalize",
    "char_tokenize",
    "word_tokenize",
    "detokenize",
    "Tokenizer",
    "Vocabulary",
    "check_tokens",
]

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
LEVELS = ("char", "word")


def normalize(text: str, lowercase: bool = False) -> str:
    """Unicode NFC normalisation, then optional lowercasing.

    >>> normalize("Cafe\\u0301") == "Café"
    True
    >>> normalize("ÉTÉ", lowercase=True)
    'été'
    """
    if not isinstance(text, str):
        raise CorpusError(f"expected text as str, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        # Lowercasing can decompose (e.g. U+0130), so normalise once more.
        text = unicodedata.normalize("NFC", text.lower())
    return text


def char_tokenize(text: str) -> list[str]:
    """Every code point is a token (after whatever normalisation the caller applied).

    >>> char_tokenize("ab 中")
    ['a', 'b', ' ', '中']
    """
    return list(text)


def word_tokenize(text: str) -> list[str]:
    """Split text into words and punctuation; each CJK character is its own token.

    Combining marks that NFC could not compose stay attached to the token before them. The reserved
    tokens ``<unk>``, ``<s>`` and ``</s>`` stay whole, so :func:`check_tokens` sees them as such.
    The definition is :func:`scratchgen.text_reference.word_tokenize`; this is the same function
    written for speed (:mod:`scratchgen.wordpattern` says how).

    >>> word_tokenize("Don't stop, well-known friend: 3.14!")
    ["Don't", 'stop', ',', 'well-known', 'friend', ':', '3.14', '!']
    >>> word_tokenize("我爱北京。Hello")
    ['我', '爱', '北', '京', '。', 'Hello']
    >>> word_tokenize("the <unk> said")
    ['the', '<unk>', 'said']
    """
    kind = wordpattern.text_kind(text)
    tokens = wordpattern.token_re(kind).findall(text)  # one pass of the regex engine, no Python per token
    if kind != "ascii" and wordpattern.stray_mark_re(kind).search(text):  # a mark after a space: rare
        tokens = wordpattern.glue_marks(tokens)
    return tokens


_NO_SPACE_BEFORE = set(".,;:!?%)]}\u201d\u2019\u3001\u3002\uff0c\uff01\uff1f\uff1b\uff1a\u300d\u300f\uff09")
_NO_SPACE_AFTER = set("([{\u201c\u2018\u300c\u300e\uff08$")


@functools.cache
def _cjk_re() -> re.Pattern:
    """CJK characters and CJK punctuation: compiled when first used (about 10 ms, paid by every command that
    imports this module otherwise)."""
    return re.compile(rf"[{CJK}\u3000-\u303f\uff01-\uff65]")


def detokenize(tokens: Sequence[str], level: str = "char") -> str:
    """Join tokens back into text.

    At character level this is exact: ``detokenize(char_tokenize(t)) == t``. At word level it is
    exact up to whitespace: no space goes before closing punctuation, after opening brackets, or
    between two CJK characters or CJK punctuation marks, and one space goes everywhere else.

    >>> detokenize(["Hello", ",", "world", "!"], level="word")
    'Hello, world!'
    >>> detokenize(["我", "爱", "你", "。"], level="word")
    '我爱你。'
    >>> detokenize(["你", "好", "，", "世", "界", "。"], level="word")
    '你好，世界。'
    """
    _check_level(level)
    if level == "char":
        return "".join(tokens)
    pieces: list[str] = []
    previous = ""
    for token in tokens:
        if pieces and not (
            token[:1] in _NO_SPACE_BEFORE
            or previous[-1:] in _NO_SPACE_AFTER
            or (_cjk_re().match(token[:1]) and _cjk_re().match(previous[-1:]))
        ):
            pieces.append(" ")
        pieces.append(token)
        previous = token
    return "".join(pieces)


def check_tokens(tokens: Sequence[str] | Iterable[str], where: str = "a sequence") -> None:
    """The one rule for what a sequence may hold: for text and token lists, in every family.

    - A token is a non-empty ``str``.
    - ``<s>`` and ``</s>`` are refused: every model adds them itself, around each sequence.
    - ``<unk>`` is allowed and *is* the unknown token (id 0): a PTB-style corpus that writes ``<unk>``
      for rare words trains and scores it as the models' own unknown token.
    - A lone surrogate (U+D800 to U+DFFF) is refused: it is not text and cannot be saved as UTF-8.

    Call it on a sequence, or once on the distinct tokens of a whole corpus (the rule is per token).

    >>> check_tokens(["a", "<unk>", "b"])
    >>> check_tokens(["a", "</s>"])
    Traceback (most recent call last):
    ...
    scratchgen.errors.CorpusError: a sequence cannot contain '</s>': every model adds <s> and </s> itself
    """
    tokens = tokens if isinstance(tokens, (list, tuple)) else list(tokens)
    for special in (BOS, EOS):
        if special in tokens:
            raise CorpusError(f"{where} cannot contain {special!r}: every model adds <s> and </s> itself")
    try:
        "".join(tokens).encode("utf-8")
    except TypeError:
        bad = next(t for t in tokens if not isinstance(t, str))
        raise CorpusError(f"a token must be a str, got {bad!r} of type {type(bad).__name__}") from None
    except UnicodeEncodeError as e:
        raise CorpusError(
            f"{where} holds a lone surrogate (U+{ord(e.object[e.start]):04X}), which is not "
            "text: decode the file as UTF-8, or drop the character"
        ) from None
    if "" in tokens:
        raise CorpusError(f"{where} holds an empty token: a token is a non-empty str")


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise CorpusError(f"level must be one of {LEVELS}, got {level!r}")


@dataclasses.dataclass(frozen=True)
class Tokenizer:
    """Normalisation plus a tokenizer, remembered by every model so that it reads text the same way.

    Parameters
    ----------
    level : {"char", "word"}
        Character tokens or word-and-punctuation tokens.
    lowercase : bool
        Lowercase after NFC normalisation.

    >>> Tokenizer("word", lowercase=True).tokenize("The CAT sat.")
    ['the', 'cat', 'sat', '.']
    """

    level: str = "char"
    lowercase: bool = False

    def __post_init__(self) -> None:
        _check_level(self.level)
        if not isinstance(self.lowercase, bool):
            raise CorpusError(f"lowercase must be True or False, got {self.lowercase!r}")

    def normalize(self, text: str) -> str:
        return normalize(text, self.lowercase)

    def tokenize(self, text: str) -> list[str]:
        text = self.normalize(text)
        return char_tokenize(text) if self.level == "char" else word_tokenize(text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return detokenize(tokens, self.level)

    def to_dict(self) -> dict:
        return {"level": self.level, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: dict) -> Tokenizer:
        return cls(level=d.get("level", "char"), lowercase=bool(d.get("lowercase", False)))


class Vocabulary:
    """A bijection between tokens and ids with ``<unk>``, ``<s>``, ``</s>`` at ids 0, 1, 2.

    Parameters
    ----------
    tokens : iterable of str
        The ordinary tokens, in id order (ids 3, 4, ...). Duplicates and the special tokens are
        refused: an explicit vocabulary should say exactly what it means.

    >>> v = Vocabulary.build([["b", "a", "b"], ["c"]])
    >>> v.tokens
    ['<unk>', '<s>', '</s>', 'b', 'a', 'c']
    >>> v.encode(["a", "z"]).tolist()
    [4, 0]
    >>> v.decode([3, 5, 2])
    ['b', 'c', '</s>']
    """

    unk_id, bos_id, eos_id = 0, 1, 2
    SPECIALS = (UNK, BOS, EOS)

    def __init__(self, tokens: Iterable[str] = ()):
        ordinary = list(tokens)
        self._tokens: list[str] = list(self.SPECIALS) + ordinary
        try:
            self._index: dict[str, int] = dict(zip(self._tokens, range(len(self._tokens))))
        except TypeError:  # an unhashable token
            self._index = {}
            self._refuse(ordinary)
        if len(self._index) != len(self._tokens) or not self._all_text(ordinary):
            self._refuse(ordinary)  # raises, naming the first bad token

    @classmethod
    def _checked(cls, tokens: list[str]) -> Vocabulary:
        """The vocabulary of ``tokens`` known to be distinct, ordinary (no special token) and each passed by
        :func:`check_tokens`, as a counted vocabulary's are: the constructor without its checks of each token
        (a third of its time). Still refuses a repeated token (one comparison of lengths)."""
        vocab = cls.__new__(cls)
        vocab._tokens = list(cls.SPECIALS) + list(tokens)
        vocab._index = dict(zip(vocab._tokens, range(len(vocab._tokens))))
        if len(vocab._index) != len(vocab._tokens):
            vocab._refuse(list(tokens))
        return vocab

    @staticmethod
    def _all_text(tokens: list[str]) -> bool:
        """Whether every token is a non-empty str of valid text: checked on the whole list at once."""
        try:
            joined = "".join(tokens)  # a token that is not a str (nor a subclass of str) is a TypeError
            joined.encode("utf-8")  # a lone surrogate cannot be encoded
        except (TypeError, UnicodeEncodeError):
            return False
        return "" not in tokens

    def _refuse(self, tokens: list[str]) -> None:
        """The error for the first token that breaks a rule: not a non-empty str, a lone surrogate, or twice."""
        seen = set(self.SPECIALS)
        for token in tokens:
            if not isinstance(token, str) or token == "":
                raise VocabularyError(f"a vocabulary token must be a non-empty str, got {token!r}")
            if not token.isascii():  # the token rule of check_tokens, for a vocabulary read from a file
                try:
                    token.encode("utf-8")
                except UnicodeEncodeError:
                    raise VocabularyError(
                        f"the vocabulary token {token!r} holds a lone surrogate, which is not text"
                    ) from None
            if token in seen:
                raise VocabularyError(f"token {token!r} is given twice (or is a special token)")
            seen.add(token)
        if len(self._index) != len(self._tokens):  # a str subclass equal to another token: still twice
            raise VocabularyError("a token is given twice (or is a special token)")

    @classmethod
    def build(
        cls,
        corpus: Iterable[Sequence[str]],
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocabulary:
        """Count the tokens of a corpus and keep the frequent ones.

        Parameters
        ----------
        corpus : iterable of sequences of str
        min_count : int
            Keep tokens seen at least this often (>= 1).
        max_size : int or None
            Keep at most this many ordinary tokens (the three special tokens come on top).
        """
        if not isinstance(min_count, (int, np.integer)) or min_count < 1:
            raise VocabularyError(f"min_count must be an integer >= 1, got {min_count!r}")
        if max_size is not None and (not isinstance(max_size, (int, np.integer)) or max_size < 0):
            raise VocabularyError(f"max_size must be None or an integer >= 0, got {max_size!r}")
        counts: collections.Counter[str] = collections.Counter()
        for sequence in corpus:
            if isinstance(sequence, str):
                raise CorpusError(
                    "a corpus is a list of token sequences; got a str where a sequence was expected "
                    "(tokenize the text first, e.g. with Tokenizer().tokenize)"
                )
            counts.update(sequence)
        for special in cls.SPECIALS:
            counts.pop(special, None)
        kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(kept)

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order, special tokens first."""
        return list(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._tokens == other._tokens

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    def index(self, token: str) -> int:
        """The id of ``token``; a :class:`VocabularyError` naming it when it is unknown."""
        try:
            return self._index[token]
        except KeyError:
            raise VocabularyError(f"token {token!r} is not in the vocabulary") from None

    def encode(self, tokens: Sequence[str], oov: str = "unk") -> np.ndarray:
        """Token ids as an int64 array of shape (T,).

        Parameters
        ----------
        oov : {"unk", "error"}
            Map unknown tokens to ``<unk>`` (id 0), or raise a :class:`VocabularyError` naming the first.
        """
        if isinstance(tokens, str):
            raise VocabularyError("encode takes a sequence of tokens, not a str; tokenize it first")
        if oov == "unk":
            get = self._index.get
            return np.array([get(t, 0) for t in tokens], dtype=np.int64)
        if oov == "error":
            return np.array([self.index(t) for t in tokens], dtype=np.int64)
        raise VocabularyError(f"oov must be 'unk' or 'error', got {oov!r}")

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens for ids; an id outside ``[0, len(self))`` is a :class:`VocabularyError`."""
        out = []
        n = len(self._tokens)
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise VocabularyError(f"id {i} is outside the vocabulary (0 to {n - 1})")
            out.append(self._tokens[i])
        return out

    def count_oov(self, tokens: Iterable[str]) -> int:
        """How many tokens of a sequence are not in the vocabulary."""
        return sum(1 for t in tokens if t not in self._index)

    def to_list(self) -> list[str]:
        """The ordinary tokens in id order (what the constructor takes back)."""
        return self._tokens[len(self.SPECIALS) :]

    @classmethod
    def from_list(cls, tokens: Iterable[str]) -> Vocabulary:
        return cls(tokens)


# The corpus readers moved to scratchgen.corpus; their old names here still work (PEP 562).
_MOVED = ("iter_corpus", "read_corpus", "split_text", "is_running_text", "CORPUS_MODES")


def __getattr__(name: str):
    if name in _MOVED:
        from . import corpus

        return getattr(corpus, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
