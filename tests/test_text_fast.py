"""The fast text pipeline against its reference: the word tokenizer (one findall) against the first
formulation (scratchgen/text_reference.py), and read_ids (a file straight to ids) against read_corpus
followed by Vocabulary.build and encode."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import CorpusError, Tokenizer, Vocabulary, wordpattern
from scratchgen import text_reference as reference
from scratchgen.corpus import read_corpus, read_ids
from scratchgen.errors import VocabularyError
from scratchgen.text import check_tokens, normalize, word_tokenize

# Every code point but surrogates (not text), and a small alphabet of the cases that matter: marks after
# letters, spaces and punctuation (U+3099 is a mark inside the kana range), plane 14's variation selectors,
# Devanagari's spacing marks, digits of other scripts, curly apostrophes, hyphens, reserved tokens,
# Python's odd whitespace (U+2028, U+001C), an emoji and a CJK extension B ideograph.
ANY = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
TRICKY = st.lists(
    st.sampled_from(
        list("ab Z09_.,'’-<>/\n\t\r\u0301\u0308\u3099\u309a中文、。か\U000e0100\u0903\u093e\u0915١٢\uff11\u2028\x1cΣ")
        + ["<unk>", "<s>", "</s>", "3.14", "1,000", "🦓", "\U00020000", "İ"]
    ),
    max_size=40,
).map("".join)
ASCII = st.text(alphabet=st.characters(max_codepoint=127), max_size=80)
# Plain ASCII prose (the array path of read_ids) with what sends a chunk back to the pattern: numbers, <s>.
PROSE = st.lists(
    st.sampled_from(
        [
            "the",
            "Cat",
            "eighty8s",  # 8 characters: the longest token spelled by one integer in read_ids
            "nineLong9",  # 9: the first spelled by two integers
            "sixteenCharsLong",  # 16: the longest spelled by two integers
            "seventeenCharLong",  # 17: the first looked up as a str
            "Supercalifragilistic-expialidocious",
            "\x7f",
            "\x00",
            "don't",
            "well-known",
            "'",
            "-",
            "--",
            ",",
            ".",
            "1",
            "5a",
            " ",
            "  ",
            "\t",
            "\x1c",
            "<",
            "<unk>",
            "3.14",
            "_",
            "x'",
            "'y",
        ]
    ),
    max_size=12,
).map("".join)


@given(st.one_of(ANY, TRICKY, ASCII))
@settings(max_examples=1500, deadline=None)
def test_the_fast_word_tokenizer_returns_what_the_reference_returns(text):
    for t in (text, normalize(text), normalize(text, lowercase=True)):
        assert word_tokenize(t) == reference.word_tokenize(t)


@given(st.one_of(ASCII, TRICKY.filter(lambda t: not wordpattern.ASTRAL_RE.search(t))))
@settings(max_examples=300, deadline=None)
def test_every_pattern_agrees_on_the_text_it_can_read(text):
    # The ASCII pattern reads ASCII text, the BMP pattern text without astral code points, the full one any.
    expected = reference.word_tokenize(text)
    kinds = ["bmp", "full"] + (["ascii"] if text.isascii() else [])
    for kind in kinds:
        tokens = wordpattern.token_re(kind).findall(text)
        if kind != "ascii" and wordpattern.stray_mark_re(kind).search(text):
            tokens = wordpattern.glue_marks(tokens)
        assert tokens == expected, kind


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("a \u0301b", ["a\u0301", "b"]),  # a mark after a space joins the token before it
        ("\u0301a", ["\u0301", "a"]),  # ... and is a token of its own when there is none
        ("x!\u0301\u0302y", ["x", "!\u0301\u0302", "y"]),  # marks after punctuation
        ("中\u3099文", ["中\u3099", "文"]),  # a mark of the kana range after an ideograph
        ("a\U000e0100b", ["a\U000e0100", "b"]),  # a variation selector ends a word
        ("3.14\u0301x", ["3.14\u0301", "x"]),
        ("don’t-stop'", ["don’t-stop", "'"]),
        ("x1.5 1.5x 1.5.6", ["x1", ".", "5", "1.5", "x", "1.5.6"]),  # a number starts a token, or it is none
        ("a\x1cb", ["a", "b"]),  # U+001C is whitespace to Python
    ],
)
def test_word_tokenizer_cases(text, tokens):
    assert word_tokenize(text) == tokens == reference.word_tokenize(text)


@given(st.lists(st.one_of(PROSE, ASCII), max_size=8).map(lambda lines: "".join(line + "\n" for line in lines)))
@settings(max_examples=300, deadline=None)
def test_ascii_lines_split_by_arrays_as_the_reference_splits_them(text):
    text = text.replace("\r", " ")  # lines end at "\n" only (a file read with universal newlines)
    split = wordpattern.split_ascii_lines(text)
    if split is None:  # a number or a reserved token: the pattern's business
        assert re.search(r"\d[.,]\d|<unk>|</?s>", text)
        return
    tokens, lengths = split
    lines = text.split("\n")[:-1]
    assert tokens == [t for line in lines for t in reference.word_tokenize(line)]
    assert lengths.tolist() == [len(reference.word_tokenize(line)) for line in lines]


def test_no_mark_outside_the_scanned_spans_and_no_mark_is_a_letter():
    # The fast patterns rely on these facts of this Python's Unicode tables; check them over all of Unicode.
    spans = [wordpattern.WORD_MARK_SPAN, *wordpattern.OTHER_MARK_SPANS]
    for cp in range(0x110000):
        c = chr(cp)
        if unicodedata.category(c)[0] == "M":
            assert any(a <= cp < b for a, b in spans), hex(cp)
            assert not c.isalnum(), hex(cp)


def test_no_cjk_character_starts_a_number_a_word_or_a_reserved_token():
    # CJK comes first in the pattern: it must not take what an earlier alternative of the reference takes.
    # A word's first character excludes CJK by its class and '<' is not CJK; a digit is the one to rule out.
    cjk = re.compile(f"[{wordpattern.CJK}]")
    assert [hex(cp) for cp in range(0x1100, 0x31350) if cjk.match(chr(cp)) and chr(cp).isdecimal()] == []


# --- read_ids against read_corpus + Vocabulary.build + encode -----------------------------------------

LINES = st.lists(
    st.one_of(TRICKY, PROSE, ASCII, st.sampled_from(["", "  ", "the cat", "The CAT sat.", "猫在家。"])), max_size=12
)


def _expected(source, tokenizer, vocab=None, keep_empty=False, **build):
    """What read_ids must give: read_corpus's sequences, checked by the one token rule (the models refuse
    <s> and </s>), then Vocabulary.build and encode."""
    sequences = read_corpus(source, tokenizer, keep_empty=keep_empty)
    for s in sequences:
        check_tokens(s)
    vocab = vocab or Vocabulary.build(sequences, **build)
    ids = [vocab.encode(s) for s in sequences]
    oov = sum(vocab.count_oov(s) for s in sequences)
    return vocab, ids, oov


@given(
    LINES.map("\n".join),
    st.sampled_from(["char", "word"]),
    st.booleans(),
    st.booleans(),
    st.integers(1, 40),
    st.integers(1, 3),
    st.one_of(st.none(), st.integers(0, 5)),
)
@settings(max_examples=100, deadline=None)
def test_read_ids_gives_the_ids_of_read_corpus(text, level, lowercase, keep_empty, chunk, min_count, max_size):
    tokenizer = Tokenizer(level, lowercase=lowercase)
    path = _file(text)
    for source in (lambda: io.StringIO(text), lambda: path):  # a stream, and a file read in blocks
        try:
            vocab, ids, _ = _expected(
                source(), tokenizer, keep_empty=keep_empty, min_count=min_count, max_size=max_size
            )
        except CorpusError as e:  # a literal <s>: the fast reader refuses it with the same message
            with pytest.raises(CorpusError, match=r"cannot contain '</?s>'|lone surrogate"):
                assert "cannot contain" in str(e) or "lone surrogate" in str(e)
                read_ids(source(), tokenizer, keep_empty=keep_empty, chunk_chars=chunk)
            continue
        got = read_ids(
            source(), tokenizer, keep_empty=keep_empty, min_count=min_count, max_size=max_size, chunk_chars=chunk
        )
        assert got.vocab == vocab
        assert [s.tolist() for s in got.sequences()] == [s.tolist() for s in ids]
        assert got.ids.dtype == np.int32 and got.lengths.dtype == np.int64


@given(LINES.map("\n".join), LINES.map("\n".join), st.sampled_from(["char", "word"]), st.integers(1, 40))
@settings(max_examples=100, deadline=None)
def test_read_ids_with_a_vocabulary_encodes_as_vocabulary_encode(train, test, level, chunk):
    tokenizer = Tokenizer(level)
    try:
        vocab = Vocabulary.build(read_corpus(io.StringIO(train), tokenizer))
        path = _file(test)
        _, ids, oov = _expected(path, tokenizer, vocab)
    except CorpusError:
        return
    got = read_ids(path, tokenizer, vocab, chunk_chars=chunk)
    assert got.vocab is vocab
    assert [s.tolist() for s in got.sequences()] == [s.tolist() for s in ids]
    assert got.oov == oov


_files: list = []


def _file(text: str):
    """A path holding ``text`` as UTF-8 (the path branch of the reader: universal newlines, read in blocks)."""
    import os
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    _files.append(path)
    return path


@pytest.fixture(autouse=True, scope="module")
def _remove_files():
    yield
    import os

    for path in _files:
        os.unlink(path)


def test_read_ids_on_crlf_and_a_line_longer_than_a_chunk(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"ab\r\ncd\r\rlong line of many words\r\nend")
    for level in ("char", "word"):
        tok = Tokenizer(level)
        expected = read_corpus(path, tok)
        got = read_ids(path, tok, chunk_chars=3)
        assert [got.vocab.decode(s) for s in got.sequences()] == expected


def test_read_ids_refuses_what_read_corpus_refuses(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine\n\xe9t\xe9\n")
    with pytest.raises(CorpusError, match="not UTF-8 at byte 5"):
        read_ids(path)
    vocab = Vocabulary(["a"])
    for vocab_given in (None, vocab):
        with pytest.raises(CorpusError, match="cannot contain '</s>'"):
            read_ids(io.StringIO("a </s>\n"), Tokenizer("word"), vocab_given)
        with pytest.raises(CorpusError, match="lone surrogate"):
            read_ids(io.StringIO("a \ud800\n"), Tokenizer("word"), vocab_given)
        with pytest.raises(CorpusError, match="lone surrogate"):
            read_ids(io.StringIO("a \ud800\n"), Tokenizer("char"), vocab_given)
    with pytest.raises(CorpusError, match="min_count"):
        read_ids(io.StringIO("a\n"), min_count=0)


def test_read_ids_counts_a_literal_unk_as_the_unknown_token_not_as_oov():
    got = read_ids(io.StringIO("a <unk> b\n"), Tokenizer("word"), Vocabulary(["a"]))
    assert got.ids.tolist() == [3, 0, 0] and got.oov == 1  # b is out of the vocabulary; <unk> is not


# --- import time: what `scratchgen` loads ---------------------------------------------------------------


def test_the_command_line_loads_neither_heavy_helpers_nor_the_tables_of_marks():
    # Not a timing: what made the import slow must not be loaded by `import scratchgen.cli.main`. (The grammar
    # and n-gram families still are: their command modules read constants of the families to build the parser.)
    code = (
        "import sys, scratchgen.cli.main\n"
        "heavy = ['tqdm', 'threadpoolctl', 'scratchgen.nn', 'scratchgen.evaluation', 'scratchgen.text_reference']\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "import scratchgen.wordpattern as w; print(w._mark_codes.cache_info().currsize)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "0"  # the tables of marks are built on first use, not at import


# --- the hook: `scratchgen train ngram` reads its corpus with read_ids ------------------------------------


@pytest.mark.parametrize("level", ["char", "word"])
def test_train_ngram_from_ids_is_the_model_fit_gives(tmp_path, level, capsys):
    from scratchgen import NGramModel, load
    from scratchgen.cli.main import main

    path = tmp_path / "corpus.txt"
    path.write_text(
        "The cat sat.\n\nA cat’s hat, 3.14 m\u0301!\n我爱北京。\nthe <unk> dog\n  \nThe cat sat.\n", "utf-8"
    )
    out = tmp_path / "m.npz"
    assert main(["train", "ngram", "--order", "3", "--level", level, "--lowercase", str(path), "-o", str(out)]) == 0
    got = load(out)
    tokenizer = Tokenizer(level, lowercase=True)
    corpus = read_corpus(path, tokenizer)
    expected = NGramModel(order=3, tokenizer=tokenizer).fit(corpus)
    assert got.vocab_ == expected.vocab_
    for mine, theirs in zip(got.keys_ + got.logp_ + got.bow_, expected.keys_ + expected.logp_ + expected.bow_):
        np.testing.assert_array_equal(mine, theirs)
    assert f"on {len(corpus)} sequences" in capsys.readouterr().err  # 6 at char level ("  " is two spaces)


def test_train_ngram_names_the_file_that_holds_a_reserved_token(tmp_path, capsys):
    from scratchgen.cli.main import main

    path = tmp_path / "bad.txt"
    path.write_text("a b\nc </s> d\n", "utf-8")
    assert main(["train", "ngram", "--level", "word", str(path), "-o", str(tmp_path / "m.npz")]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "cannot contain '</s>'" in err


@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50, unique=True), st.integers(0, 2**32))
@settings(deadline=None)
def test_the_hashed_rank_is_searchsorted(values, seed):
    from scratchgen.corpus import _rank

    distinct = np.sort(np.array(values, dtype=np.uint64))
    # 5,000 more: about 2^17 cells for them, so some share a cell and are searched for.
    more = np.random.default_rng(seed).integers(0, 2**64 - 1, size=5000, dtype=np.uint64, endpoint=True)
    distinct = np.unique(np.concatenate([distinct, more]))
    needles = np.random.default_rng(seed).choice(distinct, size=20_000)
    assert _rank(distinct, needles).tolist() == np.searchsorted(distinct, needles).tolist()


@given(st.lists(st.one_of(PROSE, TRICKY.map(lambda t: t.replace("\n", " "))), max_size=60))
@settings(max_examples=200, deadline=None)
def test_the_hard_lines_are_those_the_array_path_cannot_read(lines):
    from scratchgen.corpus import _hard_lines

    text = "".join(line + "\n" for line in lines)
    hard = _hard_lines(text)
    if hard is None:
        return
    for line, h in zip(lines, hard.tolist()):
        assert h == (wordpattern.ascii_spans(line + "\n") is None), line


# --- the pieces of read_ids' fast path against what they stand for ----------------------------------------


@given(st.binary(max_size=300), st.sampled_from([np.uint8, np.uint32, np.int64]))
@settings(deadline=None)
def test_the_histogram_is_bincount(data, dtype):
    from scratchgen.corpus import _histogram

    ids = np.frombuffer(data, dtype=np.uint8).astype(dtype)  # bytes two at a time, or one at a time
    if not len(ids):
        return
    assert _histogram(ids).tolist() == np.bincount(ids).tolist()


@given(st.lists(st.lists(st.integers(0, 2**31 - 1), max_size=20), max_size=12), st.integers(1, 30))
@settings(deadline=None)
def test_the_growing_array_holds_what_was_written(chunks, capacity):
    from scratchgen.corpus import _Growing

    grown = _Growing(capacity)
    for chunk in chunks:
        grown.extend(np.array(chunk, dtype=np.int64))
    expected = [v for chunk in chunks for v in chunk]
    assert grown.view().tolist() == expected
    taken = grown.take()
    assert taken.dtype == np.int32 and taken.tolist() == expected


@given(st.lists(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=24), max_size=20))
def test_the_spelled_integers_read_back_as_the_tokens(tokens):
    from scratchgen.corpus import _KEEP_LOW, _spelled

    # Eq. (E) written out: byte + 1 of each character, 8 to an integer, the first in the least significant byte.
    width = 3
    words = np.zeros((len(tokens), width), dtype=np.uint64)
    for row, token in enumerate(tokens):
        for j, c in enumerate(token.encode("ascii")):
            words[row, j // 8] += np.uint64((c + 1) * 256 ** (j % 8))
    assert _spelled(words) == tokens
    assert _KEEP_LOW[3] == 0xFFFFFF


# Tokens for the code point order: ASCII (NUL and DEL too, prefixes of each other), any text but surrogates,
# and lengths on both sides of a key's 8 bytes and of the longest token spelled in integers (64).
TOKENS = st.lists(
    st.one_of(
        st.text(st.characters(max_codepoint=127), min_size=1, max_size=20),
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
        st.sampled_from(["a", "ab", "abc", "a\x00", "\x00", "abcdefgh", "abcdefghi", "x" * 64, "x" * 65, "<unk>"]),
    ),
    unique=True,
    max_size=40,
)


@given(TOKENS)
@settings(deadline=None)
def test_the_integer_keys_sort_tokens_in_code_point_order(tokens):
    from scratchgen.corpus import _text_keys

    keys = _text_keys(tokens)
    if keys is None:  # a token longer than the integers spell: Python's sort then
        assert not tokens or max(map(len, tokens)) > 64
        return
    assert np.lexsort(keys[::-1]).tolist() == sorted(range(len(tokens)), key=tokens.__getitem__)


@given(TOKENS, st.data(), st.integers(1, 3), st.one_of(st.none(), st.integers(0, 30)))
@settings(deadline=None)
def test_the_counted_vocabulary_is_the_built_one(tokens, data, min_count, max_size):
    from scratchgen.corpus import _counted_vocabulary

    tokens = [t for t in tokens if t not in ("<s>", "</s>")]  # refused before they get here
    counts = data.draw(st.lists(st.integers(0, 4), min_size=len(tokens), max_size=len(tokens)))
    expected = Vocabulary.build([[t] * c for t, c in zip(tokens, counts)], min_count=min_count, max_size=max_size)
    index = dict(zip(tokens, range(len(tokens))))
    order = sorted(range(len(tokens)), key=tokens.__getitem__)
    in_order = ([tokens[i] for i in order], np.array([counts[i] for i in order], dtype=np.int64))
    for given_index in (None, index):
        vocab, new_id = _counted_vocabulary(tokens, np.array(counts, dtype=np.int64), min_count, max_size, given_index)
        assert vocab == expected and vocab.tokens == expected.tokens
        assert _counted_vocabulary(*in_order, min_count, max_size, in_order=True)[0] == expected
        assert new_id.tolist() == [expected._index.get(t, 0) for t in tokens]
        assert vocab.encode(tokens).tolist() == expected.encode(tokens).tolist()


@given(st.lists(PROSE, min_size=1, max_size=30), st.integers(8, 60), st.booleans())
@settings(max_examples=60, deadline=None)
def test_the_tokens_remembered_across_chunks_keep_their_ids(lines, chunk, with_vocab):
    from scratchgen.corpus import _Encoder, _spelled

    text = "".join(line + "\n" for line in lines) * 3  # each token again in later chunks
    tokenizer = Tokenizer("word")
    vocab = Vocabulary.build(read_corpus(io.StringIO(text), tokenizer)) if with_vocab else None
    encoder = _Encoder(tokenizer, vocab)
    got = read_ids(_file(text), tokenizer, vocab, chunk_chars=chunk)  # a path: read a chunk at a time
    expected_vocab, ids, _ = _expected(io.StringIO(text), tokenizer, vocab)
    assert got.vocab == expected_vocab and [s.tolist() for s in got.sequences()] == [s.tolist() for s in ids]
    # What the chunks leave remembered: each token of 1 or 2 integers once, keys sorted, with the dict's id.
    for start in range(0, len(text), chunk):
        piece = text[start : start + chunk]
        if piece.endswith("\n"):
            encoder.encode(piece)
    for width, (keys, rows, ids) in encoder.known.items():
        assert np.all(keys[1:] > keys[:-1])
        tokens = _spelled(rows)
        assert len(tokens) == len(rows) and all(8 * (width - 1) < len(t) <= 8 * width for t in tokens)
        assert ids.tolist() == [encoder.index[t] for t in tokens]
        if width == 1:
            assert keys.tolist() == rows[:, 0].tolist()


def test_the_vocabulary_of_checked_tokens_still_refuses_a_repeat():
    assert Vocabulary._checked(["b", "a"]) == Vocabulary(["b", "a"])
    with pytest.raises(VocabularyError, match="'a' is given twice"):
        Vocabulary._checked(["a", "b", "a"])


def test_the_bmp_classes_are_those_of_the_reference_pattern():
    # The table is built with str.isalnum / str.isspace and the class bodies; the reference speaks of \w, \s.
    classes = wordpattern.bmp_classes()
    space, word = re.compile(r"\s"), re.compile(r"\w")
    cjk, mark = re.compile(f"[{wordpattern.CJK_BMP}]"), re.compile(f"[{wordpattern.all_mark_ranges()}]")
    for cp in range(0x10000):
        c = chr(cp)
        if space.match(c):
            expected = wordpattern.SPACE
        elif 0xD800 <= cp < 0xE000 or mark.match(c) or c == "<":
            expected = wordpattern.OTHER
        else:
            expected = wordpattern.SINGLE if cjk.match(c) or not word.match(c) else wordpattern.OTHER
        assert classes[cp] == expected, hex(cp)


def _single_or_space(cp: int) -> bool:
    return wordpattern.bmp_classes()[cp] != wordpattern.OTHER


@given(st.text(st.integers(0, 0xFFFF).filter(_single_or_space).map(chr), max_size=60))
@settings(max_examples=300, deadline=None)
def test_a_single_character_is_a_token_of_its_own_in_the_reference(text):
    assert reference.word_tokenize(text) == [c for c in text if not c.isspace()]


# Chinese-like lines (the single-character path of read_ids), a few with what sends a line to the pattern.
CJK_PROSE = st.lists(
    st.sampled_from(list("我爱北京猫在家。，！？、「」.!( \u3000\t") + ["\u3099", "a", "1", "<", "_", "ab", "3.14"]),
    max_size=20,
).map("".join)


EASY_CJK = st.lists(st.sampled_from(list("我爱北京猫在家。，！？、「」.!( \u3000\t")), max_size=12).map("".join)


@given(
    st.lists(EASY_CJK, min_size=20, max_size=80),
    st.lists(st.tuples(CJK_PROSE, st.sampled_from(["a", "1", "\u3099", "<", "_", "3.14"])).map("".join), max_size=3),
    st.randoms(use_true_random=False),
    st.one_of(st.integers(1, 400), st.just(1 << 20)),  # pieces of a few lines, or the whole text at once
    st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_read_ids_of_chinese_lines_gives_the_ids_of_read_corpus(easy, hard, rng, chunk, with_vocab):
    # 20 to 80 lines, up to 3 of them needing the pattern: every line the one way, or a few apart.
    lines = easy + hard
    rng.shuffle(lines)
    text = "\n".join(lines)
    tokenizer = Tokenizer("word")
    path = _file(text)
    vocab = Vocabulary(["我", "。", "ab"]) if with_vocab else None
    try:
        expected_vocab, ids, oov = _expected(path, tokenizer, vocab)
    except CorpusError:
        return
    got = read_ids(path, tokenizer, vocab, chunk_chars=chunk)
    assert got.vocab == expected_vocab
    assert [s.tolist() for s in got.sequences()] == [s.tolist() for s in ids]
    if with_vocab:
        assert got.oov == oov


@pytest.mark.parametrize("odd", ["pi is 3.14 here", "café au lait", "the <unk> said", "猫 and dog"])
def test_read_ids_reads_a_few_odd_lines_of_english_apart(odd):
    # 40 lines of plain ASCII prose and one the array path cannot read: that one goes to the pattern alone.
    lines = [f"line {word} of the well-known prose, isn't it?" for word in ("one", "two", "three", "four")] * 10
    text = "\n".join(lines[:17] + [odd] + lines[17:]) + "\n"
    tokenizer = Tokenizer("word")
    vocab, ids, _ = _expected(io.StringIO(text), tokenizer)
    got = read_ids(io.StringIO(text), tokenizer)
    assert got.vocab == vocab
    assert [s.tolist() for s in got.sequences()] == [s.tolist() for s in ids]
