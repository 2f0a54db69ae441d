"""Inputs for the fuzz suite (``tests/test_fuzz.py``): one small valid input of every kind, and
hypothesis strategies that corrupt it.

A strategy draws a *corruption*: a small frozen dataclass that says what it does (``TruncateFile(keep=117)``,
``EditHeader(path=('params', 'order'), value=0)``), so a failing example prints as something a person can
read and replay. ``corruption.apply(good_bytes)`` gives the corrupted bytes.

Kinds of input, each with the strategies named for what they corrupt:

- model files (``.npz``): :func:`truncations`, :func:`byte_flips`, :func:`header_edits`,
  :func:`raw_header_edits`, :func:`array_edits`, :func:`array_swaps`, :func:`arrays_added_or_dropped`;
- ARPA files: :func:`arpa_line_edits` (plus truncations and byte flips of the text);
- grammar text: :func:`grammar_text_edits`, :func:`grammar_soups`;
- Tracery JSON: :func:`tracery_documents`, :func:`tracery_text_edits`;
- corpora: :func:`corpus_files` (bytes in any encoding, NUL bytes, lone surrogates, one huge line, the
  reserved tokens, empty or blank files), :func:`api_texts` (str with lone surrogates and reserved tokens).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from scratchgen import (
    GrammarModel,
    MLPModel,
    NGramModel,
    RNNModel,
    Tokenizer,
    TransformerModel,
    UniformModel,
    UnigramModel,
)

# --- the valid inputs ------------------------------------------------------------------------------

TRAIN = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "猫坐在垫子上"]
# What a loaded model is asked to score: seen text, unseen characters, and the literal <unk>.
SCORE_TEXTS = ["the cat sat", "a zebra 🦓 é", "the <unk> dog"]

TOY_GRAMMAR = """\
S  -> NP VP [1.0]
NP -> Det N [0.8] | NP 'and' NP [0.2]
Det -> 'the' [0.7] | 'a' [0.3]
N  -> 'cat' [0.4] | 'dog' [0.3] | 'mat' [0.2] | 'log' [0.1]
VP -> 'sat' [0.5] | 'sat' 'on' NP [0.5]
"""
RECURSIVE_GRAMMAR = "S -> S S [0.3] | 'a' [0.5] | 'b' S 'c' [0.2]\n"
GRAMMAR_TEXTS = [TOY_GRAMMAR, RECURSIVE_GRAMMAR]
GRAMMAR_SENTENCES = ["the cat sat", "a dog sat on the mat", "the cat and a dog sat", "a", "b a c"]

TRACERY = {
    "origin": ["#greeting#, #name#!", "#name.capitalize# says #greeting#"],
    "greeting": ["hello", "hi", "good morning"],
    "name": ["world", "#animal.s#", "friend"],
    "animal": ["cat", "dog"],
}

WORDS = Tokenizer("word")
MODEL_CLASSES = ["UniformModel", "UnigramModel", "NGramModel", "GrammarModel", "RNNModel", "MLPModel",
                 "TransformerModel"]


def make_models() -> dict[str, Any]:
    """One small fitted model of every registered class, by class name (about a second in all)."""
    words = [s.split() for s in GRAMMAR_SENTENCES[:3]]
    return {
        "UniformModel": UniformModel().fit(TRAIN),
        "UnigramModel": UnigramModel(k=0.5, tokenizer=WORDS).fit(TRAIN),
        "NGramModel": NGramModel(order=3).fit(TRAIN),
        "GrammarModel": GrammarModel(grammar=TOY_GRAMMAR, iterations=2).fit(words),
        "RNNModel": RNNModel(hidden=6, layers=2, embedding=4, epochs=1, batch_size=2, seq_len=8,
                             valid_fraction=0.0, seed=0).fit(TRAIN),
        "MLPModel": MLPModel(context=2, embedding=3, hidden=5, epochs=1, batch_size=2, seq_len=8,
                             valid_fraction=0.0, seed=0).fit(TRAIN),
        "TransformerModel": TransformerModel(layers=1, heads=2, embedding=4, context=6, epochs=1, batch_size=2,
                                             valid_fraction=0.0, seed=0).fit(TRAIN),
    }


# Labelled models (issue 11): P(x | c) with two labels. Their files carry a "labels" header (names and counts)
# that the header edits reach like any other value; a labelled corpus is LABEL<TAB>TEXT lines.
LABELLED_TRAIN = [("a", "the cat sat on the mat"), ("b", "the dog sat on the log"), ("a", "a cat and a dog"),
                  ("b", "猫坐在垫子上")]
LABELLED_CORPUS = "".join(f"{label}\t{text}\n" for label, text in LABELLED_TRAIN).encode("utf-8")
LABELLED_CLASSES = ["LabelledUniformModel", "LabelledUnigramModel"]


def make_labelled_models() -> dict[str, Any]:
    """One small fitted labelled model of each labelled family, by name (the lead adds the other families)."""
    texts = [text for _, text in LABELLED_TRAIN]
    labels = [label for label, _ in LABELLED_TRAIN]
    return {
        "LabelledUniformModel": UniformModel().fit(texts, labels=labels),
        "LabelledUnigramModel": UnigramModel(k=0.5, tokenizer=WORDS).fit(texts, labels=labels),
    }


# --- model files: reading and rewriting an .npz ------------------------------------------------------

HEADER_KEY = "__header__"


def unpack(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The header (as JSON) and the arrays of a valid model file."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays.pop(HEADER_KEY).tobytes().decode("utf-8"))
    return header, arrays


def pack(header: Any, arrays: dict[str, Any], raw_header: bytes | None = None) -> bytes:
    """An .npz as scratchgen writes it; object arrays are pickled (``allow_pickle=True``) on purpose."""
    blob = raw_header if raw_header is not None else json.dumps(header, allow_nan=True).encode("utf-8")
    buffer = io.BytesIO()
    np.savez(buffer, **{HEADER_KEY: np.frombuffer(blob, dtype=np.uint8)}, **arrays, allow_pickle=True)
    return buffer.getvalue()


@dataclasses.dataclass(frozen=True)
class TruncateFile:
    keep: int  # bytes kept

    def apply(self, data: bytes) -> bytes:
        return data[: self.keep]


@dataclasses.dataclass(frozen=True)
class FlipBytes:
    flips: tuple[tuple[int, int], ...]  # (offset, xor mask)

    def apply(self, data: bytes) -> bytes:
        out = bytearray(data)
        for offset, mask in self.flips:
            out[offset % len(out)] ^= mask
        return bytes(out)


DELETE = "<delete the key>"


@dataclasses.dataclass(frozen=True)
class EditHeader:
    path: tuple  # keys and list indices from the header's root
    value: Any  # the new value, or DELETE

    def apply(self, data: bytes) -> bytes:
        header, arrays = unpack(data)
        *parents, last = self.path
        node = header
        for key in parents:
            node = node[key]
        if self.value == DELETE:
            del node[last]
        else:
            node[last] = self.value
        return pack(header, arrays)


@dataclasses.dataclass(frozen=True)
class RawHeader:
    """Replace the JSON text of the header itself (not JSON, deep nesting, invalid UTF-8)."""

    text: bytes

    def apply(self, data: bytes) -> bytes:
        _, arrays = unpack(data)
        return pack(None, arrays, raw_header=self.text)


def _reshaped(a: np.ndarray, how: str) -> Any:
    if how == "transpose":
        return a.T if a.ndim > 1 else a[None, :]
    if how == "add-axis":
        return a[..., None]
    if how == "flatten":
        return a.reshape(-1)
    if how == "drop-last":
        return a[:-1] if a.ndim else a
    if how == "append-row":
        return np.concatenate([a, a[:1]]) if a.ndim and len(a) else np.zeros((1,) + a.shape[1:], a.dtype)
    if how == "empty":
        return np.zeros((0,) + a.shape[1:], a.dtype)
    if how == "scalar":
        return np.asarray(a.reshape(-1)[0] if a.size else 0)
    if how == "3-d":
        return np.broadcast_to(a, (2,) + a.shape).copy()
    raise AssertionError(how)


def _retyped(a: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "object":
        return np.array([None] * a.size + [{"pickled": True}], dtype=object)[: max(a.size, 1)]
    if dtype == "unicode":
        return a.astype("U8")
    if dtype == "bytes":
        return a.astype("S8")
    with np.errstate(all="ignore"):
        return a.astype(dtype)


POKED_VALUES = {"nan": np.nan, "+inf": np.inf, "-inf": -np.inf, "huge": 1e308, "positive": 5.0,
                "tiny": -1e-300, "zero": 0.0, "minus one": -1.0, "int max": 2.0**62}


def _poked(a: np.ndarray, where: float, value: str, everywhere: bool) -> np.ndarray:
    out = a.copy()
    if out.size == 0:
        return out
    v = POKED_VALUES[value]
    flat = out.reshape(-1)
    with np.errstate(all="ignore"):
        if out.dtype.kind in "iu":
            v = -1 if value in ("nan", "-inf", "minus one") else (0 if value in ("zero", "tiny") else 2**62)
            v = np.array(v).astype(out.dtype) if out.dtype.kind == "i" else np.array(v % 2**8).astype(out.dtype)
        elif out.dtype.kind == "b":
            v = bool(v)
        if everywhere:
            flat[:] = v
        else:
            flat[int(where * (flat.size - 1))] = v
    return out


@dataclasses.dataclass(frozen=True)
class EditArray:
    name: str
    reshape: str | None = None  # see _reshaped
    dtype: str | None = None  # int64, int8, uint8, complex128, float16, bool, unicode, bytes, object
    poke: tuple | None = None  # (where in [0, 1], value name, everywhere?)

    def apply(self, data: bytes) -> bytes:
        header, arrays = unpack(data)
        a = arrays[self.name]
        if self.poke is not None:
            a = _poked(a, *self.poke)
        if self.reshape is not None:
            a = _reshaped(a, self.reshape)
        if self.dtype is not None:
            a = _retyped(np.asarray(a), self.dtype)
        arrays[self.name] = a
        return pack(header, arrays)


@dataclasses.dataclass(frozen=True)
class SwapArrays:
    first: str
    second: str

    def apply(self, data: bytes) -> bytes:
        header, arrays = unpack(data)
        arrays[self.first], arrays[self.second] = arrays[self.second], arrays[self.first]
        return pack(header, arrays)


@dataclasses.dataclass(frozen=True)
class AddOrDropArray:
    drop: str | None  # an array removed
    add: str | None  # an array added (a small float array, or pickled objects for "objects")

    def apply(self, data: bytes) -> bytes:
        header, arrays = unpack(data)
        if self.drop is not None:
            del arrays[self.drop]
        if self.add is not None:
            arrays[self.add] = (np.array([{"a": 1}], dtype=object) if self.add == "objects" else np.zeros(3))
        return pack(header, arrays)


def truncations(data: bytes) -> st.SearchStrategy:
    return st.builds(TruncateFile, st.integers(0, len(data) - 1))


def byte_flips(data: bytes) -> st.SearchStrategy:
    flip = st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255))
    return st.builds(FlipBytes, st.lists(flip, min_size=1, max_size=4).map(tuple))


def header_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a header: dict keys, and the first three items of each list."""
    paths = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))[:3]
    else:
        return paths
    for key, child in items:
        paths.append(prefix + (key,))
        paths.extend(header_paths(child, prefix + (key,)))
    return paths


# The values an edited header holds: 0, -1, huge, NaN, the wrong type, missing.
HEADER_VALUES = st.sampled_from([
    0, -1, 1, 2, 10**30, 2**63, 1e308, math.nan, math.inf, -math.inf, 0.5, True, False, None,
    "", "x", "<s>", "</s>", "<unk>", "\udce9", [], [1, 2], ["a", "a"], {}, {"level": "word"}, DELETE,
    "builtin:english", "S -> S [1.0]", "word", "char", "adam", "stupid-backoff", "arpa", "float16",
])


def header_edits(data: bytes) -> st.SearchStrategy:
    header, _ = unpack(data)
    return st.builds(EditHeader, st.sampled_from(header_paths(header)), HEADER_VALUES)


def raw_header_edits(data: bytes) -> st.SearchStrategy:
    header, _ = unpack(data)
    text = json.dumps(header).encode("utf-8")
    broken = st.sampled_from([
        b"", b"{", b"[]", b"null", b"NaN", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000,
        b'{"format": "scratchgen-model"}', text[: len(text) // 2], text.replace(b'"version": 1', b'"version": 2'),
        text.replace(b'"version": 1', b'"version": 1.0'), text + b"garbage", text.replace(b"{", b"[", 1),
    ])
    return st.builds(RawHeader, broken)


RESHAPES = ["transpose", "add-axis", "flatten", "drop-last", "append-row", "empty", "scalar", "3-d"]
DTYPES = ["int64", "int8", "uint8", "complex128", "float16", "float32", "bool", "unicode", "bytes", "object"]


def array_edits(data: bytes) -> st.SearchStrategy:
    _, arrays = unpack(data)
    if not arrays:
        return st.nothing()
    poke = st.tuples(st.floats(0, 1), st.sampled_from(sorted(POKED_VALUES)), st.booleans())
    return st.builds(
        EditArray,
        st.sampled_from(sorted(arrays)),
        reshape=st.none() | st.sampled_from(RESHAPES),
        dtype=st.none() | st.sampled_from(DTYPES),
        poke=st.none() | poke,
    ).filter(lambda e: e.reshape or e.dtype or e.poke)


def array_swaps(data: bytes) -> st.SearchStrategy:
    _, arrays = unpack(data)
    if len(arrays) < 2:
        return st.nothing()
    names = sorted(arrays)
    return st.builds(SwapArrays, st.sampled_from(names), st.sampled_from(names)).filter(
        lambda s: s.first != s.second)


def arrays_added_or_dropped(data: bytes) -> st.SearchStrategy:
    _, arrays = unpack(data)
    names = sorted(arrays)
    drop = st.none() | st.sampled_from(names) if names else st.none()
    add = st.none() | st.sampled_from(["extra", "objects", "param/W_extra", "logp_9", "keys_1", "logprobs"])
    return st.builds(AddOrDropArray, drop, add).filter(lambda c: c.drop or c.add)


def model_file_corruptions(data: bytes) -> st.SearchStrategy:
    """Every way the suite damages a valid model file."""
    return st.one_of(truncations(data), byte_flips(data), header_edits(data), raw_header_edits(data),
                     array_edits(data), array_swaps(data), arrays_added_or_dropped(data))


# --- ARPA files ------------------------------------------------------------------------------------

ARPA_FIELDS = ["nan", "inf", "-inf", "+inf", "1e308", "-1e308", "0", "5", "-99", "-100", "abc", "", "-",
               "<s>", "</s>", "<unk>", "a\\", "\\u00zz", "\\", "ngram", "\\end\\", "0x10", "1_0"]


@dataclasses.dataclass(frozen=True)
class EditArpaLine:
    line: float  # where in the file, as a fraction of its lines
    action: str  # delete, duplicate, swap-next, replace-field, insert, count
    field: int = 0
    text: str = ""

    def apply(self, data: bytes) -> bytes:
        lines = data.decode("utf-8").split("\n")
        i = min(int(self.line * len(lines)), len(lines) - 1)
        if self.action == "delete":
            del lines[i]
        elif self.action == "duplicate":
            lines.insert(i, lines[i])
        elif self.action == "swap-next" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif self.action == "replace-field":
            fields = lines[i].split("\t")
            fields[self.field % len(fields)] = self.text
            lines[i] = "\t".join(fields)
        elif self.action == "insert":
            lines.insert(i, self.text)
        elif self.action == "count":  # the header line "ngram N=COUNT" of the first order gets another count
            k = next((j for j, s in enumerate(lines) if s.startswith("ngram ")), 0)
            lines[k] = "ngram 1=" + self.text
        return "\n".join(lines).encode("utf-8", "surrogateescape")


def arpa_line_edits() -> st.SearchStrategy:
    where = st.floats(0, 1)
    field_text = st.sampled_from(ARPA_FIELDS) | st.text(max_size=6)
    counts = st.sampled_from(["0", "-1", "1", "100000000000", "99999999999999999999", "x", "3.5", ""])
    inserted = st.sampled_from(["", "\\data\\", "\\1-grams:", "\\2-grams:", "\\4-grams:", "ngram 4=1",
                                "-1.0\tzzz", "-1.0\ta\tb\tc\td", "-0.5 <s> </s>", "\x00", "\\end\\", "garbage"])
    return st.one_of(
        st.builds(EditArpaLine, where, st.sampled_from(["delete", "duplicate", "swap-next"])),
        st.builds(EditArpaLine, where, st.just("replace-field"), st.integers(0, 3), field_text),
        st.builds(EditArpaLine, where, st.just("insert"), st.just(0), inserted),
        st.builds(EditArpaLine, where, st.just("count"), st.just(0), counts),
    )


def arpa_corruptions(data: bytes) -> st.SearchStrategy:
    edits = st.lists(arpa_line_edits(), min_size=1, max_size=3).map(tuple).map(Chain)
    return st.one_of(edits, truncations(data), byte_flips(data))


@dataclasses.dataclass(frozen=True)
class Chain:
    steps: tuple

    def apply(self, data: bytes) -> bytes:
        for step in self.steps:
            data = step.apply(data)
        return data


# --- grammar text and Tracery JSON -------------------------------------------------------------------

GRAMMAR_PIECES = [
    "->", "|", "[", "]", "'", '"', " ", "\n", "#", "0", "-1", "1e308", "nan", "inf", "[0.5]", "[0]", "[-1]",
    "[1e400]", "[nan]", "S", "NP", "VP", "S ->", "'<s>'", "'</s>'", "'<unk>'", "''", "'a b'", "'\\'",
    "S -> S S [0.4999] | 'a' [0.5001]", "S -> S [1.0]", "X -> Y [1]\nY -> X [1]", "\x00", "é", "中", "\ud800",
    "%start S", "S -> [1.0]", "S -> 'a' 'b' 'c'",
]


@dataclasses.dataclass(frozen=True)
class EditText:
    """Delete, duplicate or insert text at a place given as a fraction of the text."""

    where: float
    action: str  # delete, duplicate, insert
    span: int = 1
    text: str = ""

    def apply_text(self, text: str) -> str:
        i = int(self.where * len(text))
        if self.action == "delete":
            return text[:i] + text[i + self.span:]
        if self.action == "duplicate":
            return text[:i] + text[i:i + self.span] + text[i:]
        return text[:i] + self.text + text[i:]


def text_edits(pieces: list[str]) -> st.SearchStrategy:
    where = st.floats(0, 1)
    span = st.integers(1, 40)
    return st.one_of(
        st.builds(EditText, where, st.sampled_from(["delete", "duplicate"]), span),
        st.builds(EditText, where, st.just("insert"), st.just(1), st.sampled_from(pieces) | st.text(max_size=4)),
    )


@dataclasses.dataclass(frozen=True)
class EditedGrammar:
    base: int  # which of GRAMMAR_TEXTS
    edits: tuple

    @property
    def text(self) -> str:
        text = GRAMMAR_TEXTS[self.base]
        for e in self.edits:
            text = e.apply_text(text)
        return text


def grammar_text_edits() -> st.SearchStrategy:
    edits = st.lists(text_edits(GRAMMAR_PIECES), min_size=1, max_size=4).map(tuple)
    return st.builds(EditedGrammar, st.integers(0, len(GRAMMAR_TEXTS) - 1), edits)


def grammar_soups() -> st.SearchStrategy:
    """Text assembled from the pieces of the grammar format, mostly not a grammar."""
    return st.lists(st.sampled_from(GRAMMAR_PIECES), max_size=12).map(" ".join)


TRACERY_STRINGS = ["#greeting#", "#name.s#", "#name.capitalize#", "#animal.a#", "#origin#", "#[x:cat]x#",
                   "#", "##", "#missing#", "hello", " ", "", "<s>", "</s>", "<unk>", "\\#", "\x00", "中文",
                   "#name.nosuchmodifier#", "#.s#", "#name.s.s.s#", "\ud800"]
TRACERY_KEYS = ["origin", "greeting", "name", "animal", "x", "", "#", "origin.s", " ", "<s>"]


def tracery_documents() -> st.SearchStrategy:
    """JSON documents shaped like Tracery grammars (and some that are not objects at all)."""
    string = st.lists(st.sampled_from(TRACERY_STRINGS), max_size=4).map("".join)
    value = st.one_of(st.lists(string, max_size=4), string, st.none(), st.integers(), st.floats(),
                      st.lists(st.lists(string, max_size=2), max_size=2), st.dictionaries(string, string, max_size=2))
    document = st.dictionaries(st.sampled_from(TRACERY_KEYS), value, max_size=5)
    other = st.sampled_from([[], [1], 0, None, "origin", {"origin": []}, {"origin": [""]},
                             {"origin": ["#origin#"]}, {"origin": ["#a#"], "a": ["#origin#"]}])
    return st.one_of(document, other).map(lambda d: json.dumps(d, allow_nan=True))


@dataclasses.dataclass(frozen=True)
class EditedTracery:
    edits: tuple

    @property
    def text(self) -> str:
        text = json.dumps(TRACERY)
        for e in self.edits:
            text = e.apply_text(text)
        return text


def tracery_text_edits() -> st.SearchStrategy:
    pieces = ['"', "{", "}", "[", "]", ",", ":", "#", "null", "NaN", '"origin"', "\\", "\\u0000", "\\ud800"]
    return st.builds(EditedTracery, st.lists(text_edits(pieces), min_size=1, max_size=4).map(tuple))


# --- corpora -----------------------------------------------------------------------------------------

HUGE_LINE = ("the cat sat " * 20_000).encode()  # one 240 kB line

CORPUS_PIECES = [
    b"the cat sat on the mat", b"\n", b"\r\n", b"\r", b" ", b"\t", b"\x0b\x0c", b"\n\n",
    "caf\u00e9 na\u00efve".encode("latin-1"),  # Latin-1, not UTF-8
    "caf\u00e9 中文 🦓".encode("utf-8"),
    "utf-16 text".encode("utf-16"),  # with its BOM
    b"\xef\xbb\xbf",  # a UTF-8 BOM
    b"\x00", b"\x00\x00\x00\x00",
    "\udce9".encode("utf-8", "surrogateescape"),  # what a lone surrogate from surrogateescape writes
    "\ud800".encode("utf-8", "surrogatepass"),  # a lone surrogate written as if it were UTF-8
    b"<unk>", b"<s>", b"</s>", b"<unk> <s> </s>", b"the <unk> said </s>",
    b"\x80\x81\xfe\xff", "\u2028\u0085".encode("utf-8"),
]


@dataclasses.dataclass(frozen=True)
class CorpusFile:
    pieces: tuple  # bytes
    huge_line: bool
    encoding: str
    level: str
    mode: str

    @property
    def data(self) -> bytes:
        return b"".join(self.pieces) + (HUGE_LINE if self.huge_line else b"")

    def __repr__(self) -> str:  # keep a failing example short: the huge line is named, not printed
        return (f"CorpusFile(pieces={self.pieces!r}, huge_line={self.huge_line}, encoding={self.encoding!r}, "
                f"level={self.level!r}, mode={self.mode!r})")


def corpus_files() -> st.SearchStrategy:
    piece = st.sampled_from(CORPUS_PIECES) | st.binary(max_size=16)
    return st.builds(
        CorpusFile,
        st.lists(piece, max_size=8).map(tuple),
        st.sampled_from([False] * 9 + [True]),  # one case in ten holds the huge line
        st.sampled_from(["utf-8", "latin-1", "utf-16", "utf-8-sig", "cp1252", "ascii", "no-such-encoding"]),
        st.sampled_from(["char", "word"]),
        st.sampled_from(["lines", "paragraphs", "chunks"]),
    )


API_ALPHABET = st.one_of(
    st.sampled_from(["a", "b", " ", "\n", "é", "中", "🦓", "\x00", "\ud800", "\udfff", "\udce9", "<", ">"]),
    st.characters(),
)


def api_texts() -> st.SearchStrategy:
    """Corpora given to the API as str: lone surrogates, NUL, the reserved tokens, empty texts."""
    text = st.one_of(
        st.lists(API_ALPHABET, max_size=12).map("".join),
        st.sampled_from(["<unk>", "<s>", "</s>", "a <unk> b", "a </s> b", "", " ", "\ud800", "<s>a</s>"]),
    )
    return st.lists(text, max_size=4)
