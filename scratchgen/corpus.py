"""Reading a corpus file: the text as token sequences, one line, paragraph or chunk at a time.

A file is read as UTF-8 unless told otherwise (``encoding=``, ``--encoding``); a byte that the encoding
cannot decode is reported with its offset ("not UTF-8 at byte 1234 (0xe9)"), found by a second pass over
the raw bytes because a text stream's error offsets are relative to its buffer. Three ways to cut the
text into sequences:

- ``lines``: one sequence a line (empty lines skipped unless ``keep_empty``);
- ``paragraphs``: blocks separated by blank lines, inner newlines kept as text;
- ``chunks``: the running text, newlines included, cut into pieces of ``chunk_size`` tokens, in time
  linear in the text however long its lines (slices of a buffer, never ``del buffer[:k]``).

Everything streams: :func:`iter_corpus` holds one line (or one paragraph) in memory at a time, and
:func:`read_ids` reads a file a chunk at a time straight into one int32 id array (no list of str tokens for
the corpus): array operations on ASCII prose and on text of single-character tokens, else one ``findall`` a
chunk at word level; one encoding to code points a chunk at character level.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import operator
import os
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any, Union

import numpy as np

from .errors import CorpusError, LabelError
from .text import BOS, EOS, Tokenizer, Vocabulary, check_tokens

__all__ = [
    "CORPUS_MODES",
    "EncodedCorpus",
    "check_corpus_file",
    "iter_corpus",
    "iter_labelled",
    "is_running_text",
    "read_corpus",
    "read_ids",
    "split_text",
]

CORPUS_MODES = ("lines", "paragraphs", "chunks")

PathOrFile = Union[str, "os.PathLike[str]", IO[str]]


def check_corpus_file(path: str | os.PathLike[str]) -> None:
    """Refuse a corpus path that is not a regular file, naming why: no such file, a directory, or something
    else (a pipe, a device). The commands that read a file in byte ranges, or twice, need a regular one."""
    name = os.fspath(path)
    if os.path.isfile(name):
        return
    if os.path.isdir(name):
        raise CorpusError(f"cannot read corpus {name!r}: it is a directory")
    if os.path.exists(name):
        raise CorpusError(f"cannot read corpus {name!r}: not a regular file (a pipe or a device cannot be read twice)")
    raise CorpusError(f"cannot read corpus {name!r}: no such file")


def _open_text(source: PathOrFile, encoding: str) -> tuple[IO[str], bool]:
    if isinstance(source, (str, os.PathLike)):
        try:
            return open(source, encoding=encoding, newline=None), True
        except LookupError:
            raise CorpusError(f"unknown encoding {encoding!r} (try utf-8, latin-1 or cp1252)") from None
        except OSError as e:
            raise CorpusError(f"cannot read corpus {os.fspath(source)!r}: {(e.strerror or str(e)).lower()}") from None
    if hasattr(source, "read"):
        return source, False  # type: ignore[return-value]
    raise CorpusError(f"a corpus source is a path or an open text file, got {type(source).__name__}")


def _first_bad_byte(path: str, encoding: str) -> tuple[int, int] | None:
    """The offset and value of the first byte of ``path`` that ``encoding`` cannot decode (a second pass,
    run only after a decoding error, because a text stream's error offsets are relative to its buffer)."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                pending = len(e.object) - len(block)  # bytes held over from the previous block
                return offset - pending + e.start, e.object[e.start]
            except UnicodeError:  # a stream-level error has no byte to name
                return None
            if not block:
                return None
            offset += len(block)


def _decode_error(name: str, path: str | None, encoding: str, e: UnicodeError) -> CorpusError:
    """The one-line error of a file that ``encoding`` cannot decode: where when known, and the fix.

    Most codecs raise ``UnicodeDecodeError`` at a byte; some raise a plain ``UnicodeError`` about the
    whole stream (UTF-16 and UTF-32 without a byte-order mark), whose reason is then given instead.
    """
    if not isinstance(e, UnicodeDecodeError):
        return CorpusError(
            f"corpus {name!r} is not {encoding} ({e}): if it is in another encoding, name it "
            "(--encoding latin-1, or encoding='latin-1')"
        )
    where = ""
    if path is not None:
        found = _first_bad_byte(path, encoding)
        if found is not None:
            where = f" at byte {found[0]} (0x{found[1]:02x})"
    label = "UTF-8" if _codec_name(encoding) == "utf-8" else encoding
    return CorpusError(
        f"corpus {name!r} is not {label}{where}: if it is in another encoding, name it "
        "(--encoding latin-1, or encoding='latin-1')"
    )


def _codec_name(encoding: str) -> str:
    """The canonical name of an encoding (``"UTF8"`` -> ``"utf-8"``)."""
    import codecs

    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return encoding


def _lines(f: IO[str], name: str, path: str | None = None, encoding: str = "utf-8") -> Iterator[str]:
    try:
        for line in f:
            yield line.rstrip("\r\n")
    except UnicodeError as e:  # UnicodeDecodeError, or a stream-level error such as UTF-16 without a BOM
        raise _decode_error(name, path, encoding, e) from None


def _split_lines(lines: Iterable[str], tokenizer: Tokenizer, mode: str, chunk_size: int, keep_empty: bool):
    if mode == "lines":
        for line in lines:
            tokens = tokenizer.tokenize(line)
            if tokens or keep_empty:
                yield tokens
    elif mode == "paragraphs":
        paragraph: list[str] = []
        for line in lines:
            if line.strip():
                paragraph.append(line)
            elif paragraph:
                yield tokenizer.tokenize("\n".join(paragraph))
                paragraph = []
        if paragraph:
            yield tokenizer.tokenize("\n".join(paragraph))
    else:  # chunks: the running text, newlines included, cut into pieces of chunk_size tokens
        buffer: list[str] = []
        for line in lines:
            buffer.extend(tokenizer.tokenize(line + "\n"))
            start = 0
            while len(buffer) - start >= chunk_size:  # slices, not del buffer[:k]: linear in the line
                yield buffer[start : start + chunk_size]
                start += chunk_size
            if start:
                buffer = buffer[start:]
        if buffer:
            yield buffer


def _check_mode(mode: str, chunk_size: int) -> None:
    if mode not in CORPUS_MODES:
        raise CorpusError(f"mode must be one of {CORPUS_MODES}, got {mode!r}")
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise CorpusError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")


def iter_corpus(
    source: PathOrFile,
    tokenizer: Tokenizer | None = None,
    mode: str = "lines",
    chunk_size: int = 256,
    keep_empty: bool = False,
    encoding: str = "utf-8",
) -> Iterator[list[str]]:
    """Stream token sequences from a file, one line at a time in memory.

    Parameters
    ----------
    source : path or open text file
    tokenizer : Tokenizer, default character level
    mode : {"lines", "paragraphs", "chunks"}
        One sequence a line (empty lines skipped unless ``keep_empty``); one a paragraph (blocks
        separated by blank lines, inner newlines kept as text); or the whole text, newlines
        included, cut into pieces of ``chunk_size`` tokens.
    """
    tokenizer = tokenizer or Tokenizer()
    _check_mode(mode, chunk_size)
    f, close = _open_text(source, encoding)
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None  # None: an open stream
    name = path if path is not None else getattr(source, "name", "<stream>")
    try:
        lines = _lines(f, str(name), path, encoding)
        yield from _split_lines(lines, tokenizer, mode, chunk_size, keep_empty)
    finally:
        if close:
            f.close()


def is_running_text(source: str | os.PathLike, encoding: str = "utf-8") -> bool:
    """Whether a file is running text (it has blank lines: paragraphs, speeches) rather than one
    sequence a line. Read through the same guarded reader as :func:`iter_corpus`, so a binary or
    mis-encoded file gets the same :class:`CorpusError`.
    """
    f, _ = _open_text(source, encoding)
    with f:
        return any(not line.strip() for line in _lines(f, os.fspath(source), os.fspath(source), encoding))


def read_corpus(source: PathOrFile, tokenizer: Tokenizer | None = None, labelled: bool = False, **kwargs):
    """All token sequences of a file as a list; see :func:`iter_corpus` for the arguments.

    With ``labelled=True`` the file is a labelled corpus, one example a line, ``LABEL<TAB>TEXT``, and the
    result is ``(labels, sequences)``: see :func:`iter_labelled`.
    """
    if labelled:
        pairs = list(iter_labelled(source, tokenizer, **kwargs))
        return [label for label, _ in pairs], [tokens for _, tokens in pairs]
    return list(iter_corpus(source, tokenizer, **kwargs))


def iter_labelled(
    source: PathOrFile, tokenizer: Tokenizer | None = None, encoding: str = "utf-8", keep_empty: bool = False, **kwargs
) -> Iterator[tuple[str, list[str]]]:
    """Stream ``(label, tokens)`` from a labelled corpus: one example a line, ``LABEL<TAB>TEXT``.

    The label is the text before the first tab, stripped of spaces; the rest of the line is the text.
    Blank lines are skipped. A line without a tab, or with an empty label, is a :class:`LabelError` that
    names the line; an example whose text is empty is skipped unless ``keep_empty``. Only one sequence a
    line makes sense here, so ``mode`` other than ``"lines"`` is refused.
    """
    from .labels import check_label_name

    if kwargs.get("mode", "lines") != "lines":
        raise CorpusError("a labelled corpus is read one example a line (mode 'lines')")
    tokenizer = tokenizer or Tokenizer()
    f, close = _open_text(source, encoding)
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    name = str(path if path is not None else getattr(source, "name", "<stream>"))
    try:
        for number, line in enumerate(_lines(f, name, path, encoding), start=1):
            if not line.strip():
                continue
            label, tab, text = line.partition("\t")
            if not tab:
                raise LabelError(
                    f"{name!r} line {number} has no tab: a labelled corpus is one example a line, LABEL<TAB>TEXT"
                )
            try:
                label = check_label_name(label.strip())
            except LabelError:
                raise LabelError(f"{name!r} line {number} has an empty label: the line is LABEL<TAB>TEXT") from None
            tokens = tokenizer.tokenize(text)
            if tokens or keep_empty:
                yield label, tokens
    finally:
        if close:
            f.close()


def split_text(text: str, tokenizer: Tokenizer | None = None, **kwargs) -> list[list[str]]:
    """Token sequences of a string, split as :func:`iter_corpus` splits a file.

    >>> split_text("ab\\n\\nc")
    [['a', 'b'], ['c']]
    """
    if not isinstance(text, str):
        raise CorpusError(f"split_text takes a str, got {type(text).__name__}")
    return read_corpus(io.StringIO(text), tokenizer, **kwargs)


# --- straight to ids ---------------------------------------------------------------------------------

#: Characters of text read and encoded at a time by :func:`read_ids`, by level (about 4 MB and 1 MB of English).
#: Word level reads smaller chunks: a chunk's temporaries (some 15 bytes a character) then mostly come back from
#: what glibc's allocator keeps for reuse, where those of 4 MB were often fresh pages from the kernel (this
#: machine's page faults are dear). Measured on tinyshakespeare (1.1 MB, word level, calls after a first one):
#: chunks of 2^22 characters took 1,400 to 4,400 page faults a call (up to 25-35 ms of system time against 55-60
#: of user time), chunks of 2^20 mostly a few hundred. Smaller chunks still (2^18) made Chinese text slower (more
#: chunks of fixed costs). The tokens met in earlier chunks cost no str (``_Encoder._known_ids``), so chunks
#: repeat little of each other's work.
CHUNK_CHARS = {"char": 1 << 22, "word": 1 << 20}


@dataclasses.dataclass
class EncodedCorpus:
    """A corpus as token ids: every sequence's ids one after another, and the length of each sequence.

    Attributes
    ----------
    ids : int32 array of shape (T,)
        The ids of every token of every sequence, in order (no ``<s>`` or ``</s>``). int32, half the memory
        of int64: a vocabulary never nears 2^31 tokens, and the consumers (counting, scoring) index with it
        or cast it as they need.
    lengths : int64 array of shape (S,)
        Tokens in each sequence; ``ids`` splits at ``cumsum(lengths)``.
    vocab : Vocabulary
        The vocabulary the ids index: the one given, or the one counted from the corpus.
    oov : int
        Tokens read as ``<unk>`` (id 0) that were not written ``<unk>``.
    """

    ids: np.ndarray
    lengths: np.ndarray
    vocab: Vocabulary
    oov: int = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def sequences(self) -> list[np.ndarray]:
        """The id array of each sequence (views into ``ids``)."""
        return np.split(self.ids, np.cumsum(self.lengths)[:-1]) if len(self.lengths) else []


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class _NewIsNext(dict):
    """A token -> provisional id dict where a token met for the first time gets the next id (and is
    remembered in ``seen``): one dict look-up a token, a Python call only a distinct token."""

    def __init__(self, seen: list[str]):
        super().__init__({"\n": -1})  # -1 ends a line
        self.seen = seen

    def __missing__(self, key: str) -> int:
        self[key] = i = len(self.seen)
        self.seen.append(key)
        return i


class _UnknownIsZero(dict):
    """A token -> id dict where a missing token is ``<unk>`` (id 0), counted in ``misses``."""

    misses = 0

    def __missing__(self, key: str) -> int:
        self.misses += 1
        return 0


#: The multiplier of the hash of a token of two integers of eq. (E), ``first * _PAIR_HASH + rest`` (mod 2^64): odd.
_PAIR_HASH = np.uint64(0x9E3779B97F4A7C15)

#: ``_KEEP_LOW[k]``: the mask of the k least significant bytes of a 64-bit integer (k = 0 .. 8).
_KEEP_LOW = np.array([2 ** (8 * k) - 1 for k in range(9)], dtype=np.uint64)


def _spelled(words: np.ndarray) -> list[str]:
    """The tokens spelled by rows of eq. (E) integers (uint64 array of shape (tokens, w): a token's first 8
    characters, then its next 8, ...), as str.

    >>> _spelled(np.array([[ord("a") + 1 + 256 * (ord("b") + 1)]], dtype=np.uint64))
    ['ab']
    """
    rows = (
        np.ascontiguousarray(words, dtype="<u8").view(np.uint8).reshape(len(words), 8 * words.shape[1])
    )  # (tokens, 8w)
    # Padding and one more column become spaces, so one split cuts the tokens apart (no token holds
    # whitespace, and a token that fills its row still has a space after it).
    chars = np.full((len(rows), rows.shape[1] + 1), ord(" "), dtype=np.uint8)  # (tokens, 8 w + 1)
    chars[:, :-1] = np.where(rows > 0, rows - 1, ord(" "))
    return chars.tobytes().decode("ascii").split()


def _rank(distinct: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The index of each of ``values`` in the sorted array ``distinct`` (every value is there): what
    ``np.searchsorted(distinct, values)`` returns, found by a hash table for most values.

    The distinct values are written into a table of 2^b cells at ``h(x) = (x * C) mod 2^64 >> (64 - b)``
    (Knuth's multiplicative hashing, C odd); a value whose cell holds it reads its index from there (one
    random access in a small table instead of a binary search); the few that share a cell with another
    distinct value are searched for.
    """
    bits = max(int(len(distinct)).bit_length() + 4, 10)  # 16 to 32 cells a value: a table that stays in cache
    shift = np.uint64(64 - bits)
    C = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio, odd
    table = np.zeros(1 << bits, dtype=np.int32 if len(distinct) < 2**31 else np.int64)  # (2^b,)
    table[(distinct * C) >> shift] = np.arange(len(distinct))  # a shared cell keeps one of its values
    rank = table[(values * C) >> shift]  # (M,)
    wrong = np.flatnonzero(distinct[rank] != values)  # the values whose cell holds another value
    if len(wrong):
        rank[wrong] = np.searchsorted(distinct, values[wrong])
    return rank


#: The reserved tokens, which the array path of the word tokenizer leaves to the regular expression.
_RESERVED = ("<unk>", "<s>", "</s>")


def _hard_lines(text: str) -> np.ndarray | None:
    """Which lines of ``text`` (whole lines, newline-terminated) the array path of the word tokenizer cannot
    read: those with a non-ASCII character, a number such as 3.14 or a reserved token (bool array of shape
    (lines,)). None when there is none, or when more than one line in twenty has one (then the regular
    expression reads the whole text faster than the two paths apart)."""
    try:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (n,) code points
    except UnicodeEncodeError:  # a lone surrogate: the regular expression's path names it
        return None
    digit = (codes - 48) <= 9  # (n,) wraps below '0'
    point = (codes == ord(".")) | (codes == ord(","))
    hard = codes > 127  # (n,)
    hard[1:-1] |= digit[:-2] & point[1:-1] & digit[2:]
    where = [np.flatnonzero(hard)]
    for token in _RESERVED:  # rare: a find a time
        at = text.find(token)
        while at >= 0:
            where.append(np.array([at]))
            at = text.find(token, at + 1)
    spots = np.concatenate(where)
    newlines = np.flatnonzero(codes == 10)  # (lines,)
    lines = np.zeros(len(newlines), dtype=bool)
    lines[np.searchsorted(newlines, spots)] = True  # the line of each spot: the first newline at or after it
    if not lines.any() or 20 * np.count_nonzero(lines) > len(lines):
        return None
    return lines


def _not_single_lines(text: str) -> np.ndarray | None:
    """Which lines of ``text`` (whole lines, newline-terminated, no code point beyond U+FFFF) hold a character
    that is not whitespace or a token of its own (bool array of shape (lines,)): a letter, a digit, a mark,
    ``<``. None when more than one line in twenty does (then the regular expression reads them all)."""
    from . import wordpattern

    try:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (n,)
    except UnicodeEncodeError:  # a lone surrogate: the regular expression's path names it
        return None
    spots = np.flatnonzero(wordpattern.bmp_classes()[codes] == wordpattern.OTHER)
    newlines = np.flatnonzero(codes == 10)  # (lines,)
    lines = np.zeros(len(newlines), dtype=bool)
    lines[np.searchsorted(newlines, spots)] = True  # the line of each spot: the first newline at or after it
    if 20 * np.count_nonzero(lines) > len(lines):
        return None
    return lines


class _Encoder:
    """Turns pieces of text (whole lines, each ending in a newline) into provisional ids and line lengths.

    Given a vocabulary, the ids are final. Without one, a token's provisional id is its code point (char
    level) or the order in which it was first met (word level); :meth:`finish` counts them and maps
    them to the ids of the vocabulary they make: by descending count, ties by code point order.
    """

    def __init__(self, tokenizer: Tokenizer, vocab: Vocabulary | None):
        self.tokenizer, self.vocab = tokenizer, vocab
        self.char = tokenizer.level == "char"
        self.oov = 0
        # The tokens met so far of one and two integers of eq. (E): (keys sorted, rows, ids), see _known_ids.
        self.known = {w: (np.zeros(0, np.uint64), np.zeros((0, w), np.uint64), np.zeros(0, np.int64)) for w in (1, 2)}
        if vocab is None:
            self.seen: list[str] = []  # provisional id -> token
            self.index: Any = _NewIsNext(self.seen)  # word level: token -> provisional id; -1 ends a line
        elif self.char:  # code point -> id, unknown code points (the last cell) -> <unk>
            singles = [(ord(t), i) for i, t in enumerate(vocab.tokens) if len(t) == 1]
            top = max((cp for cp, _ in singles), default=10)  # at least the newline
            self.table = np.zeros(max(top, 10) + 2, dtype=np.int32)  # (max code point + 2,)
            for cp, i in singles:
                self.table[cp] = i
            self.table[10] = -1  # a newline ends a line
        else:
            self.index = _UnknownIsZero(vocab._index)
            self.index["\n"] = -1

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Ids of the tokens of ``text`` (whole lines, newline-terminated) and the length of each line.

        The ids are the smallest array that holds them: at character level without a vocabulary, the code
        points as uint8 when the text is ASCII (a quarter of the memory traffic of uint32), else as uint32.
        """
        text = self.tokenizer.normalize(text)  # NFC (and lowercasing) of many lines at once: the same per line
        ids: np.ndarray
        if self.char:
            codes = _code_points(text)  # (n,) uint8 or uint32
            if self.vocab is None:
                ids, ends = codes, codes == 10
            else:
                top = len(self.table) - 1  # the last cell: code points beyond the vocabulary's
                ids = self.table[codes if top >= np.iinfo(codes.dtype).max else np.minimum(codes, top)]
                ends = ids < 0
                self.oov += int(np.count_nonzero(ids == 0))  # no character is the token <unk>
        else:
            return self._word_ids(text)
        where = np.flatnonzero(ends)  # (lines,) the newline of each line
        lengths = np.diff(where, prepend=-1) - 1  # tokens between two newlines
        return ids[~ends], lengths

    def _word_ids(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Ids of the word tokens of ``text`` (whole lines, newline-terminated) and the tokens of each line.

        Plain ASCII prose goes the array way (:func:`scratchgen.wordpattern.ascii_spans`), and so does text
        whose every visible character is a token of its own, such as Chinese prose (:meth:`_single_ids`).
        When a few lines of a chunk hold what that cannot read (ASCII prose: a non-ASCII character, a number
        such as 3.14, a reserved token; single characters: a letter, a digit, a mark), those lines go to the
        regular expression together and the others the array way; tokenizing is per line, so the two sets of
        lines give the tokens of the whole, put back in the order of the lines.
        """
        from . import wordpattern

        kind = wordpattern.text_kind(text)
        spans = wordpattern.ascii_spans(text) if kind == "ascii" else None
        if spans is not None:  # plain ASCII prose: array operations, no regular expression, no str a token
            codes, starts, ends, lengths = spans
            return self._span_ids(text, codes, starts, ends), lengths
        if kind == "bmp":
            hard = _not_single_lines(text)
            if hard is not None and not hard.any():
                return self._single_ids(text)
            if hard is not None:
                return self._by_lines(text, hard, self._single_ids)
        hard = _hard_lines(text)
        if hard is None:  # many lines need the pattern: all of them go to it
            return self._pattern_ids(text, kind)
        return self._by_lines(text, hard, self._ascii_ids)

    def _by_lines(self, text: str, hard: np.ndarray, easy_ids) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_word_ids` of ``text`` whose ``hard`` lines (bool array of shape (lines,)) go to the regular
        expression and the others to ``easy_ids``."""
        from . import wordpattern

        lines = text.split("\n")[:-1]  # (lines,) without their newlines
        easy = "".join([line + "\n" for line, h in zip(lines, hard.tolist()) if not h])
        rest = "".join([line + "\n" for line, h in zip(lines, hard.tolist()) if h])
        lengths = np.empty(len(hard), dtype=np.int64)  # (lines,)
        ids_rest, lengths[hard] = self._pattern_ids(rest, wordpattern.text_kind(rest))
        ids_easy, lengths[~hard] = easy_ids(easy)
        from_rest = np.repeat(hard, lengths)  # (tokens,) in text order: from a hard line
        ids = np.empty(len(from_rest), dtype=np.int64)
        ids[from_rest] = ids_rest
        ids[~from_rest] = ids_easy
        return ids, lengths

    def _ascii_ids(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_word_ids` of ASCII lines without numbers or reserved tokens (the easy lines of a chunk)."""
        from . import wordpattern

        spans = wordpattern.ascii_spans(text)
        assert spans is not None
        codes, starts, ends, lengths = spans
        return self._span_ids(text, codes, starts, ends), lengths

    def _single_ids(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_word_ids` of lines whose every character is whitespace or a token of its own
        (:func:`scratchgen.wordpattern.bmp_classes`): the visible characters are the tokens, each looked up
        once per chunk as a code point, like the character level."""
        from . import wordpattern

        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (n,) all in the BMP: no surrogate
        visible = np.flatnonzero(wordpattern.bmp_classes()[codes] != wordpattern.SPACE)  # (tokens,)
        tokens = codes[visible]  # (tokens,) code points
        line_ends = np.searchsorted(visible, np.flatnonzero(codes == 10))  # (lines,) tokens before each newline
        present = np.flatnonzero(np.bincount(tokens, minlength=1)) if len(tokens) else np.zeros(0, np.int64)
        table = np.zeros(int(present[-1]) + 1 if len(present) else 1, dtype=np.int64)  # code point -> id
        before = len(self.seen) if self.vocab is None else 0
        table[present] = self._lookup([chr(c) for c in present.tolist()], distinct=True)
        if self.vocab is None:
            check_tokens(self.seen[before:])  # the one rule, once per new token
        ids = table[tokens]
        if self.vocab is not None:
            self.oov += int(np.count_nonzero(ids == 0))  # no token here is written <unk>
        return ids, np.diff(line_ends, prepend=0)

    def _pattern_ids(self, text: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_word_ids` by the regular expression of :mod:`scratchgen.wordpattern`, one dict look-up a token."""
        from . import wordpattern

        tokens = wordpattern.token_re(kind, lines=True).findall(text)  # newlines are tokens: the line ends
        if kind != "ascii" and wordpattern.stray_mark_re(kind).search(text):
            tokens = wordpattern.glue_marks(tokens)
        index = self.index
        if self.vocab is not None and kind != "ascii":
            bad = _SURROGATE_RE.search(text)
            if bad:  # a lone surrogate is an error, not <unk>: the one rule names it
                check_tokens([bad.group()])
        before = len(self.seen) if self.vocab is None else index.misses
        ids = np.fromiter(map(index.__getitem__, tokens), dtype=np.int64, count=len(tokens))  # (n,)
        if self.vocab is None:
            check_tokens(self.seen[before:])  # the one rule, once per new token: <s>, </s>, surrogates refused
        else:
            self.oov += index.misses - before
            special = (ids == Vocabulary.bos_id) | (ids == Vocabulary.eos_id)
            if special.any():
                check_tokens([BOS if BOS in tokens else EOS])  # raises: the models add <s> and </s>
        ends = ids < 0  # (n,) the newline of each line
        where = np.flatnonzero(ends)  # (lines,)
        return ids[~ends], np.diff(where, prepend=-1) - 1  # tokens between two newlines

    def _span_ids(self, text: str, codes: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Ids of the ASCII tokens ``text[starts[i]:ends[i]]`` (no ``<unk>``, ``<s>`` or ``</s>`` among them),
        with one dict look-up a *distinct* token.

        A token of at most 8 characters is spelled exactly by one 64-bit integer, its bytes plus one
        (1 .. 128, so that 0 can pad), the first character in the least significant byte::

            spell(t) = sum_{j < |t|} (t_j + 1) * 256^j                                              (E)

        which is the 8 bytes at the token's offset read as one little-endian integer, the bytes past its
        end masked to 0. So the distinct short tokens are the distinct values of one integer array (a
        sort), and each is made a str once. A token of 9 to 16 characters is spelled by two such integers
        (its first 8 characters, then the rest), the distinct pairs found by one sort of the pairs; the
        rare longer tokens are sliced from the text and looked up one by one.
        """
        if not len(starts):
            return np.zeros(0, dtype=np.int64)
        length = ends - starts  # (tokens,)
        padded = np.zeros(len(codes) + 16, dtype=np.uint8)  # the text's bytes plus one, then 16 zeros
        np.add(codes, 1, out=padded[: len(codes)])
        # The 8 bytes at every offset as one little-endian integer: a view with a stride of one byte.
        at = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))  # (n + 9,)
        spell = at[starts]  # (tokens,)
        spell &= _KEEP_LOW[np.minimum(length, 8)]  # eq. (E): the bytes past the end of the token become padding
        longer = np.flatnonzero(length > 8)  # (longer tokens,) spelled below; 0 (no token) here
        spell[longer] = 0
        distinct = np.sort(spell)
        keep = np.empty(len(distinct), dtype=bool)
        keep[:1] = True
        np.not_equal(distinct[1:], distinct[:-1], out=keep[1:])
        distinct = distinct[keep]  # (distinct short tokens, and 0 if there is a longer token)
        short = distinct[1:] if distinct[0] == 0 else distinct  # (distinct short tokens,)
        found = self._known_ids(short, short[:, None])
        ids = (found if distinct[0] else np.concatenate([[-2], found]))[_rank(distinct, spell)]  # 0: put back
        if len(longer):
            medium = longer[length[longer] <= 16]
            if len(medium):  # 9 to 16 characters: two integers of eq. (E) each, distinct pairs by one sort
                first8 = at[starts[medium]]  # (medium,)
                rest = at[starts[medium] + 8] & _KEEP_LOW[length[medium] - 8]
                order = np.lexsort((rest, first8))  # (medium,) the pairs in sorted order
                first8, rest = first8[order], rest[order]
                new = np.ones(len(order), dtype=bool)  # where a new distinct pair begins, in that order
                new[1:] = (first8[1:] != first8[:-1]) | (rest[1:] != rest[:-1])
                rank = np.empty(len(order), dtype=np.int64)
                rank[order] = np.cumsum(new) - 1  # each pair's index among the distinct pairs
                pairs = np.stack([first8[new], rest[new]], axis=1)  # (distinct medium tokens, 2)
                keys = pairs[:, 0] * _PAIR_HASH + pairs[:, 1]  # (distinct medium tokens,) mod 2^64
                ids[medium] = self._known_ids(keys, pairs)[rank]
            long = longer[length[longer] > 16]
            if len(long):
                ids[long] = self._lookup([text[i:j] for i, j in zip(starts[long].tolist(), ends[long].tolist())])
        # The one rule (check_tokens) holds for every token here: ASCII (no surrogate), not empty, and never
        # <s> or </s> (ascii_spans leaves a text that holds one to the pattern).
        if self.vocab is not None:
            self.oov += int(np.count_nonzero(ids == 0))  # no token here is written <unk>
        return ids

    def _known_ids(self, keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The ids of the distinct tokens spelled by ``rows`` (eq. (E); uint64 array of shape (m, w), w = 1 for
        tokens of at most 8 characters, 2 for 9 to 16), found by ``keys`` (uint64 array of shape (m,): the
        spelling itself when w = 1, a hash of the row when w = 2), as an int64 array of shape (m,).

        The rows met in earlier pieces of the file are remembered with their ids (``known[w]``: keys sorted,
        rows and ids beside them), so a piece makes a str and a dict look-up only for a token the file has not
        shown before, and one search of the sorted keys for the others; a key found counts only if its row is
        the same (two rows of one hash: the second is looked up as a str every time, never wrong). The id of a
        spelling never changes: a provisional id until :meth:`finish`, or the given vocabulary's.
        """
        known_key, known_rows, known_id = self.known[rows.shape[1]]
        at = np.searchsorted(known_key, keys)  # (m,) where each is, or would go, among the known
        inside = np.flatnonzero(at < len(known_key))
        hit = np.zeros(len(keys), dtype=bool)  # (m,) met before
        hit[inside] = (known_rows[at[inside]] == rows[inside]).all(axis=1)
        ids = np.empty(len(keys), dtype=np.int64)  # (m,)
        ids[hit] = known_id[at[hit]]
        new = np.flatnonzero(~hit)
        if len(new):
            ids[new] = self._lookup(_spelled(rows[new]), distinct=True)
            taken = np.zeros(len(new), dtype=bool)  # a key already there (for another row): not kept twice
            there = at[new] < len(known_key)
            taken[there] = known_key[at[new][there]] == keys[new][there]
            fresh = new[~taken]
            fresh = fresh[np.argsort(keys[fresh], kind="stable")]
            where = np.searchsorted(known_key, keys[fresh])
            self.known[rows.shape[1]] = (
                np.insert(known_key, where, keys[fresh]),  # still sorted
                np.insert(known_rows, where, rows[fresh], axis=0),
                np.insert(known_id, where, ids[fresh]),
            )
        return ids

    def _lookup(self, tokens: list[str], distinct: bool = False) -> np.ndarray:
        """The ids of ``tokens`` (int64 array): tokens met for the first time get the next provisional ids
        in one update, not a Python call each. ``distinct``: no token is there twice (no need to drop repeats)."""
        index = self.index
        if self.vocab is None and distinct and index.keys().isdisjoint(tokens):  # all new (a first chunk)
            index.update(zip(tokens, range(len(self.seen), len(self.seen) + len(tokens))))
            self.seen.extend(tokens)
            return np.arange(len(self.seen) - len(tokens), len(self.seen), dtype=np.int64)
        if self.vocab is None:
            new = [t for t in tokens if t not in index]
            if not distinct:
                new = list(dict.fromkeys(new))
            index.update(zip(new, range(len(self.seen), len(self.seen) + len(new))))
            self.seen.extend(new)
        return np.fromiter(map(index.__getitem__, tokens), dtype=np.int64, count=len(tokens))

    def numbered(self, counts: np.ndarray, min_count: int, max_size: int | None):
        """The vocabulary of the provisional ids counted ``counts`` times, and the map to its ids.

        Returns (vocab, new_id, tokens, token_counts): ``new_id[provisional id]`` is the final id (at character
        level the provisional id is the code point), ``tokens`` the distinct tokens met and ``token_counts``
        their counts. The one numbering of :func:`read_ids` (and of :mod:`scratchgen.ngram.external`).
        """
        if self.char:
            present = np.flatnonzero(counts)  # the code points met, in code point order
            tokens = [chr(c) for c in present.tolist()]
            counts = counts[present]
            check_tokens(tokens)
        else:
            present, tokens = None, self.seen
            counts = np.concatenate([counts, np.zeros(len(tokens) - len(counts), np.int64)])  # tokens never met: 0
        index = None if self.char else self.index  # word level: token -> its place in tokens
        vocab, new_id = _counted_vocabulary(tokens, counts, min_count, max_size, index, in_order=self.char)
        if present is not None:  # code point -> id
            table = np.zeros(int(present[-1]) + 1 if len(present) else 1, dtype=np.int64)
            table[present] = new_id
            new_id = table
        return vocab, new_id, tokens, counts

    def finish(self, ids: np.ndarray, counts: np.ndarray, min_count: int, max_size: int | None) -> Vocabulary:
        """The vocabulary counted from the provisional ``ids`` (int32 array of shape (T,)), which occur
        ``counts`` times, and the ids mapped to it in place, a block at a time (a temporary of a block, not
        of the corpus)."""
        if self.vocab is not None:
            return self.vocab
        vocab, new_id, _, counts = self.numbered(counts, min_count, max_size)
        new_id = new_id.astype(np.int32)  # (provisional ids,)
        unknown = 0  # tokens that became <unk> (id 0)
        for start in range(0, len(ids), _MAP_BLOCK):
            block = ids[start : start + _MAP_BLOCK]  # a view: written in place
            block[:] = new_id[block]
            unknown += int(np.count_nonzero(block == 0))
        written = 0 if self.char or "<unk>" not in self.index else int(counts[self.index["<unk>"]])
        self.oov = unknown - written  # the tokens written <unk> are not out of the vocabulary
        return vocab


#: Ids mapped from provisional to final at a time by :meth:`_Encoder.finish` (256 KiB of int32: a temporary that
#: the allocator reuses block after block, where one of 4 MiB was fresh pages from the kernel at every call).
_MAP_BLOCK = 1 << 16


def _code_points(text: str) -> np.ndarray:
    """The code points of ``text``: uint8 array of shape (n,) when it is ASCII (CPython records that in the
    str: the test is free, the encoding a copy), else uint32. A lone surrogate is the one rule's error."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    try:
        return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    except UnicodeEncodeError as e:  # a lone surrogate: the one rule names it
        check_tokens([e.object[e.start]])
        raise


def _histogram(ids: np.ndarray) -> np.ndarray:
    """How often each value of the non-negative integer array ``ids`` occurs: ``np.bincount(ids)``.

    Bytes (uint8) are counted two at a time: the pair ``(ids[2k], ids[2k+1])`` read as one uint16 is a cell of
    a 256 x 256 table, and a byte value's count is the sum of its row and its column (in either byte order).
    Half the increments of one count a byte, and ``np.bincount`` spends its time on the increments.

    >>> _histogram(np.frombuffer(b"abca", dtype=np.uint8))[ord("a") : ord("d")].tolist()
    [2, 1, 1]
    """
    if ids.dtype != np.uint8 or len(ids) < 2:
        return np.bincount(ids)
    even = len(ids) & ~1
    pairs = np.bincount(np.ascontiguousarray(ids[:even]).view(np.uint16), minlength=1 << 16).reshape(256, 256)
    counts = pairs.sum(axis=0) + pairs.sum(axis=1)  # (256,) as the first byte of a pair and as the second
    if even < len(ids):
        counts[ids[-1]] += 1
    return counts[: int(np.flatnonzero(counts)[-1]) + 1]  # as long as bincount's


class _Growing:
    """One int32 array filled a chunk at a time (not a list of chunks concatenated at the end: that holds
    the corpus twice). It starts at a capacity that usually suffices (memory the kernel gives only as it is
    written, so a generous guess costs address space, not memory) and grows by half when it does not."""

    def __init__(self, capacity: int):
        self.array = np.empty(max(int(capacity), 1), dtype=np.int32)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        end = self.size + len(values)
        if end > len(self.array):
            grown = np.empty(max(end, len(self.array) * 3 // 2), dtype=np.int32)
            grown[: self.size] = self.array[: self.size]
            self.array = grown
        self.array[self.size : end] = values
        self.size = end

    def view(self) -> np.ndarray:
        """The values written (a view of the array)."""
        return self.array[: self.size]

    def take(self) -> np.ndarray:
        """The values written, as an array of their own length: the unused capacity given back in place
        (``realloc``; for a large block, the kernel unmaps its tail without copying)."""
        array, self.array = self.array, np.empty(0, dtype=np.int32)
        array.resize(self.size, refcheck=False)  # nothing else refers to it
        return array


def _check_build(min_count: int, max_size: int | None) -> None:
    """The arguments of a counted vocabulary, checked before a file is read."""
    if not isinstance(min_count, (int, np.integer)) or min_count < 1:
        raise CorpusError(f"min_count must be an integer >= 1, got {min_count!r}")
    if max_size is not None and (not isinstance(max_size, (int, np.integer)) or max_size < 0):
        raise CorpusError(f"max_size must be None or an integer >= 0, got {max_size!r}")


#: The longest token, in code points, that :func:`_text_keys` spells in integers (longer: Python's sort).
_KEYED_WIDTH = 64


def _text_keys(tokens: list[str]) -> list[np.ndarray] | None:
    """Sort keys of distinct tokens in code point order (Python's ``str`` order), most significant first:
    uint64 arrays of shape (n,), so that ``np.lexsort(keys[::-1])`` is ``sorted(range(n), key=tokens.__getitem__)``.

    Each token is written as a row of its code points plus one, padded with zeros to the longest token's
    length W (a prefix sorts before the longer token: 0 is below every code point plus one)::

        row(t) = (t_0 + 1, t_1 + 1, ..., t_{|t|-1} + 1, 0, ..., 0)                                   (O)

    and rows compare as the tokens do. A key is 8 bytes of a row read as one big-endian integer: 8 code points
    of an ASCII vocabulary (bytes), else 2 (32-bit code units). None when the longest token is longer than
    :data:`_KEYED_WIDTH` (a sort of Python str then) or a token holds a lone surrogate.
    """
    n = len(tokens)
    joined = "".join(tokens)
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=n)  # (n,)
    if n == 0 or int(lengths.max()) > _KEYED_WIDTH:
        return None
    dtype: np.dtype
    if joined.isascii():
        dtype, per_key, codes = np.dtype(np.uint8), 8, np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:
        try:
            codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        except UnicodeEncodeError:
            return None
        dtype, per_key = np.dtype(">u4"), 2  # big-endian units: their bytes in order of significance
    width = -(-int(lengths.max()) // per_key) * per_key  # W rounded up to a whole key
    rows = np.zeros((n, width), dtype=dtype)  # (n, W) eq. (O)
    first = np.cumsum(lengths) - lengths  # (n,) where each token starts in the joined text
    column = np.arange(len(codes)) - np.repeat(first, lengths)  # (characters,) its place in its token
    rows[np.repeat(np.arange(n), lengths), column] = codes + 1
    keys = rows.view(">u8")  # (n, W / per_key): one big-endian integer a key
    return [keys[:, j] for j in range(keys.shape[1])]


def _counted_vocabulary(
    tokens: list[str],
    counts: np.ndarray,
    min_count: int,
    max_size: int | None,
    index: dict | None = None,
    in_order: bool = False,
):
    """:meth:`Vocabulary.build`'s vocabulary from distinct tokens and their counts, and each token's id
    in it (0, ``<unk>``, for a token cut by ``min_count`` or ``max_size``). ``index``, when given, maps each
    token to its place in ``tokens`` (other keys allowed): it finds ``<unk>`` without a scan of the list.
    ``in_order``: the tokens are in code point order already (the characters of the character level).

    The tokens must be distinct and each one pass :func:`check_tokens` (they were, as each was first met).
    """
    n = len(tokens)
    keys = [np.arange(n)] if in_order else _text_keys(tokens)
    if keys is not None:  # (n,) descending count, ties by code point order: one sort of integers
        order = np.lexsort((*keys[::-1], -counts))
    else:
        by_text = np.empty(n, dtype=np.int64)  # each token's rank in code point order
        by_text[sorted(range(n), key=tokens.__getitem__)] = np.arange(n)
        order = np.lexsort((by_text, -counts))
    for special in Vocabulary.SPECIALS:  # only <unk> can be there (<s> and </s> are refused): id 0
        if special in (tokens if index is None else index):
            order = order[order != (tokens.index(special) if index is None else index[special])]
    order = order[counts[order] >= min_count]
    if max_size is not None:
        order = order[:max_size]
    new_id = np.zeros(n, dtype=np.int64)  # tokens cut, and <unk> itself, are <unk>
    new_id[order] = np.arange(len(order)) + len(Vocabulary.SPECIALS)
    kept = operator.itemgetter(*order.tolist())(tokens) if len(order) > 1 else [tokens[i] for i in order]
    return Vocabulary._checked(kept), new_id


def _pieces(source: PathOrFile, encoding: str, chunk_chars: int) -> Iterator[str]:
    """The text of a file in pieces of whole lines, each ending in a newline (one added at the end)."""
    f, close = _open_text(source, encoding)
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    name = str(path if path is not None else getattr(source, "name", "<stream>"))
    try:
        if close:  # a file we opened: universal newlines, so no line holds a carriage return
            carry: list[str] = []
            while True:
                block = f.read(chunk_chars)
                if not block:
                    break
                cut = block.rfind("\n") + 1
                if cut == 0:  # a line longer than a chunk: keep reading
                    carry.append(block)
                    continue
                yield "".join(carry) + block[:cut]
                carry = [block[cut:]]
            tail = "".join(carry)
            if tail:
                yield tail + "\n"
        else:  # a stream: lines as iter_corpus reads them
            lines = _lines(f, name, path, encoding)
            while True:
                batch = list(itertools.islice(lines, 1 << 14))
                if not batch:
                    break
                yield "\n".join(batch) + "\n"
    except UnicodeError as e:
        raise _decode_error(name, path, encoding, e) from None
    finally:
        if close:
            f.close()


def read_ids(
    source: PathOrFile,
    tokenizer: Tokenizer | None = None,
    vocab: Vocabulary | None = None,
    *,
    min_count: int = 1,
    max_size: int | None = None,
    keep_empty: bool = False,
    encoding: str = "utf-8",
    progress=None,
    chunk_chars: int | None = None,
) -> EncodedCorpus:
    """A corpus file (one sequence a line) read a chunk at a time straight into token ids.

    The same sequences as :func:`read_corpus` (``mode="lines"``), encoded with ``vocab`` (unknown tokens
    as ``<unk>``), or with the vocabulary :meth:`Vocabulary.build` would count from them (``min_count``,
    ``max_size``), counted in the same pass. No list of str tokens is ever made for the corpus: a chunk
    of lines is normalised and tokenized at once (array operations on ASCII words, else one ``findall``
    at word level; one encoding to code points at character level), its tokens mapped to provisional ids
    (one dict look-up a distinct token), counted, and written into one int32 array that grows as needed
    (never a list of chunks concatenated: the corpus is held once), and its lines found where the
    newlines were. At the end the provisional ids are renumbered in place, a block at a time.

    ``progress`` (a :class:`scratchgen.progress.Progress`, optional) is advanced by the lines read. ``chunk_chars``:
    the characters read at a time (default :data:`CHUNK_CHARS` of the tokenizer's level).

    >>> enc = read_ids(io.StringIO("the cat\\n\\nthe dog\\n"), Tokenizer("word"))
    >>> enc.vocab.to_list(), enc.ids.tolist(), enc.lengths.tolist()
    (['the', 'cat', 'dog'], [3, 4, 3, 5], [2, 2])
    """
    tokenizer = tokenizer or Tokenizer()
    _check_build(min_count, max_size)
    chunk_chars = CHUNK_CHARS[tokenizer.level] if chunk_chars is None else chunk_chars
    if vocab is not None and not isinstance(vocab, Vocabulary):
        raise CorpusError(f"vocab must be a Vocabulary or None, got {type(vocab).__name__}")
    encoder = _Encoder(tokenizer, vocab)
    ids = _Growing(_capacity(source, tokenizer, chunk_chars))
    length_chunks = []
    counts = np.zeros(0, dtype=np.int64)  # (provisional ids,) without a vocabulary: how often each occurs
    for piece in _pieces(source, encoding, chunk_chars):
        chunk, lengths = encoder.encode(piece)
        ids.extend(chunk)
        length_chunks.append(lengths)
        if vocab is None and len(chunk):
            seen = _histogram(chunk)
            if len(seen) > len(counts):
                counts = np.concatenate([counts, np.zeros(len(seen) - len(counts), np.int64)])
            counts[: len(seen)] += seen
        if progress is not None:
            progress.update(len(lengths))
    lengths = np.concatenate(length_chunks) if length_chunks else np.zeros(0, np.int64)
    if not keep_empty:
        lengths = lengths[lengths > 0]
    vocab = encoder.finish(ids.view(), counts, min_count, max_size)
    return EncodedCorpus(ids.take(), lengths.astype(np.int64, copy=False), vocab, encoder.oov)


def _capacity(source: PathOrFile, tokenizer: Tokenizer, chunk_chars: int) -> int:
    """A first guess of the tokens of a corpus, for :class:`_Growing`: a file's bytes at character level (at
    least one byte a character in UTF-8 and the usual encodings), a quarter of them at word level (English
    has about one token in four or five bytes), a chunk for a stream."""
    if isinstance(source, (str, os.PathLike)):
        try:
            size = os.path.getsize(source)
        except OSError:  # _pieces names the problem
            return chunk_chars
        return size if tokenizer.level == "char" else size // 4 + chunk_chars // 4
    return chunk_chars
