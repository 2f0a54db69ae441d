"""Reading a corpus file: the text as token sequences, one line, paragraph or chunk at a time.

A file is read as UTF-8 unless told otherwise (``encoding=``, ``--encoding``); a byte that the encoding
cannot decode is reported with its offset ("not UTF-8 at byte 1234 (0xe9)"), found by a second pass over
the raw bytes because a text stream's error offsets are relative to its buffer. Three ways to cut the
text into sequences:

- ``lines``: one sequence a line (empty lines skipped unless ``keep_empty``);
- ``paragraphs``: blocks separated by blank lines, inner newlines kept as text;
- ``chunks``: the running text, newlines included, cut into pieces of ``chunk_size`` tokens, in time
  linear in the text however long its lines (slices of a buffer, never ``del buffer[:k]``).

Everything streams: :func:`iter_corpus` holds one line (or one paragraph) in memory at a time.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from typing import IO, Union

import numpy as np

from .errors import CorpusError, LabelError
from .text import Tokenizer

__all__ = ["CORPUS_MODES", "iter_corpus", "iter_labelled", "is_running_text", "read_corpus", "split_text"]

CORPUS_MODES = ("lines", "paragraphs", "chunks")

PathOrFile = Union[str, "os.PathLike[str]", IO[str]]


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
