"""The text pipeline: normalisation, tokenizers, vocabulary, corpus reading."""

from __future__ import annotations

import io
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import CorpusError, Tokenizer, Vocabulary, VocabularyError
from scratchgen.text import char_tokenize, detokenize, iter_corpus, normalize, read_corpus, split_text, word_tokenize

# Arbitrary Unicode: Chinese, emoji, combining marks, newlines, surrogates excluded (not valid text).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
MIXED = st.text(alphabet=st.sampled_from(list("ab c,.!'-\n我爱北京🦓é\u0301\u0308中文、。") + ["ñ", "1", "9"]),
                max_size=40)


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("don't stop", ["don't", "stop"]),  # a contraction stays one word
        ("it’s a well-known fact", ["it’s", "a", "well-known", "fact"]),  # curly apostrophe, hyphen
        ("-- dash", ["-", "-", "dash"]),  # a hyphen outside a word is punctuation
        ("pi is 3.14159, about", ["pi", "is", "3.14159", ",", "about"]),
        ("我爱北京天安门。", ["我", "爱", "北", "京", "天", "安", "门", "。"]),  # every hanzi a token
        ("東京タワーとソウル서울", ["東", "京", "タ", "ワ", "ー", "と", "ソ", "ウ", "ル", "서", "울"]),
        ("Hi🦓!", ["Hi", "🦓", "!"]),
        ("naïve café", ["naïve", "café"]),
        ("snake_case", ["snake", "_", "case"]),
        ("  \t\n ", []),
    ],
)
def test_word_tokenizer_table(text, tokens):
    assert word_tokenize(normalize(text)) == tokens


def test_combining_mark_without_precomposed_form_stays_in_its_word():
    # q + combining tilde has no precomposed character, so NFC leaves two code points.
    assert word_tokenize(normalize("q\u0303x y")) == ["q\u0303x", "y"]


def test_nfc_makes_decomposed_and_composed_text_the_same_tokens():
    assert Tokenizer("char").tokenize("e\u0301") == Tokenizer("char").tokenize("é") == ["é"]


def test_lowercase_is_optional():
    assert Tokenizer("word").tokenize("The CAT") == ["The", "CAT"]
    assert Tokenizer("word", lowercase=True).tokenize("The CAT") == ["the", "cat"]


@given(TEXT)
@settings(max_examples=200, deadline=None)
def test_char_detokenization_is_exact(text):
    norm = normalize(text)
    assert detokenize(char_tokenize(norm), "char") == norm


@given(st.one_of(TEXT, MIXED))
@settings(max_examples=300, deadline=None)
def test_word_detokenization_is_exact_up_to_whitespace(text):
    norm = normalize(text)
    tokens = word_tokenize(norm)
    assert all(t and not any(c.isspace() for c in t) for t in tokens)
    def strip(s):
        return "".join(s.split())

    assert strip(detokenize(tokens, "word")) == strip(norm)


@given(st.lists(st.lists(st.sampled_from(["a", "b", "我", "🦓", "é", "x y"]), max_size=8), max_size=8),
       st.integers(1, 3), st.one_of(st.none(), st.integers(0, 4)))
@settings(max_examples=100, deadline=None)
def test_vocabulary_encode_decode_round_trip(corpus, min_count, max_size):
    vocab = Vocabulary.build(corpus, min_count=min_count, max_size=max_size)
    assert vocab.tokens[:3] == ["<unk>", "<s>", "</s>"]
    for seq in corpus:
        ids = vocab.encode(seq)
        assert ids.dtype == np.int64 and ids.shape == (len(seq),)
        assert vocab.decode(ids) == [t if t in vocab else "<unk>" for t in seq]
    assert Vocabulary.from_list(vocab.to_list()) == vocab


def test_vocabulary_order_is_count_then_code_point():
    # counts: c 3, a 2, b 2, d 1 -> c first, then a before b (tie), then d
    vocab = Vocabulary.build([["b", "a", "c", "c"], ["d", "a", "b", "c"]])
    assert vocab.to_list() == ["c", "a", "b", "d"]
    assert Vocabulary.build([["b", "a", "c", "c"], ["d", "a", "b", "c"]], min_count=2).to_list() == ["c", "a", "b"]
    assert Vocabulary.build([["b", "a", "c", "c"], ["d", "a", "b", "c"]], max_size=1).to_list() == ["c"]


def test_vocabulary_order_does_not_depend_on_the_hash_seed():
    import os
    import subprocess
    import sys

    code = "from scratchgen import Vocabulary; print(Vocabulary.build([list('the quick brown fox 我爱你')]).tokens)"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(outs) == 1


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: Vocabulary.build([["a"]], min_count=0), "min_count"),
        (lambda: Vocabulary.build([["a"]], max_size=-1), "max_size"),
        (lambda: Vocabulary(["a", "a"]), "twice"),
        (lambda: Vocabulary(["<s>"]), "twice"),
        (lambda: Vocabulary.build(["abc"]), "tokenize"),
        (lambda: Vocabulary(["a"]).encode(["z"], oov="error"), "'z'"),
        (lambda: Vocabulary(["a"]).encode(["a"], oov="maybe"), "oov"),
        (lambda: Vocabulary(["a"]).decode([7]), "id 7"),
        (lambda: Vocabulary(["a"]).encode("a"), "not a str"),
    ],
)
def test_vocabulary_errors_name_the_problem(call, error):
    with pytest.raises(VocabularyError if "tokenize" not in error else CorpusError, match=error):
        call()


def test_read_corpus_modes(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("ab\ncd\n\n\nef\n", encoding="utf-8")
    assert read_corpus(path) == [["a", "b"], ["c", "d"], ["e", "f"]]
    assert read_corpus(path, keep_empty=True) == [["a", "b"], ["c", "d"], [], [], ["e", "f"]]
    assert read_corpus(path, mode="paragraphs") == [["a", "b", "\n", "c", "d"], ["e", "f"]]
    # Running text, newlines included: ab\ncd\n\n\nef\n is 11 characters -> 4 + 4 + 3
    assert read_corpus(path, mode="chunks", chunk_size=4) == [
        ["a", "b", "\n", "c"], ["d", "\n", "\n", "\n"], ["e", "f", "\n"]]
    assert read_corpus(path, Tokenizer("word"), mode="chunks", chunk_size=2) == [["ab", "cd"], ["ef"]]


def test_read_corpus_from_an_open_file_and_a_string():
    assert read_corpus(io.StringIO("我爱\n你")) == [["我", "爱"], ["你"]]
    assert split_text("Hi there.\nBye", Tokenizer("word")) == [["Hi", "there", "."], ["Bye"]]


def test_iter_corpus_streams():
    class Endless(io.TextIOBase):
        """A file with no end: reading all of it would never return."""

        def readline(self, size=-1):
            return "abc\n"

        def __iter__(self):
            return self

        def __next__(self):
            return "abc\n"

    it = iter_corpus(Endless())
    assert [next(it) for _ in range(3)] == [["a", "b", "c"]] * 3


@given(MIXED)
@settings(max_examples=100, deadline=None)
def test_lines_mode_matches_splitting_the_normalised_text(text):
    tok = Tokenizer("char")
    expected = [tok.tokenize(line) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    assert split_text(text) == [t for t in expected if t]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: read_corpus("/nonexistent/corpus.txt"), "/nonexistent/corpus.txt"),
        (lambda: split_text("x", mode="sentences"), "mode"),
        (lambda: split_text("x", mode="chunks", chunk_size=0), "chunk_size"),
        (lambda: Tokenizer("byte"), "level"),
        (lambda: read_corpus(42), "path"),
        (lambda: normalize(b"bytes"), "str"),
    ],
)
def test_corpus_errors(call, match):
    with pytest.raises(CorpusError, match=match):
        call()


def test_invalid_utf8_is_a_corpus_error(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(CorpusError, match="not UTF-8 at byte 3 \\(0xff\\)"):
        read_corpus(path)


def test_tokenizer_round_trips_through_a_dict():
    tok = Tokenizer("word", lowercase=True)
    assert Tokenizer.from_dict(tok.to_dict()) == tok
    assert unicodedata.is_normalized("NFC", tok.normalize("e\u0301"))
