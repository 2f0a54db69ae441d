"""``scratchgen score`` reads a file straight into ids (cli/score.py): the same output, to the last digit, as
reading it into token lists and calling ``score``, for the n-gram (flat scorer) and another family (the base
class's), at both levels, on a file with everything awkward: CRLF line ends, blank and whitespace-only lines,
unknown words, a literal ``<unk>``, accents to normalise, CJK, a last line without its newline."""

from __future__ import annotations

import argparse
import json

import pytest

from scratchgen.cli import main
from scratchgen.cli.score import _score as score_handler  # without main's error printing
from scratchgen.errors import CorpusError
from scratchgen.model import LanguageModel

TRAIN = "the cat sat on the mat\nthe dog ran\nCafe\u0301 au lait, n'est-ce pas?\n我爱北京\n"
TEST = (
    "the cat ran\r\n\r\n   \r\nthe bird flew <unk> away\nCafe\u0301 Café\n北京 欢迎 你\n"
    "a line much longer than the order of the model, with words it never saw\nthe mat"
)


def _score(model, corpus, capsys, monkeypatch, ids: bool, *extra):
    monkeypatch.setattr(LanguageModel, "_reads_ids", lambda self: ids and type(self).score is LanguageModel.score)
    assert main(["score", str(model), str(corpus), *extra]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("level", ["word", "char"])
@pytest.mark.parametrize("family", [["ngram", "--order", "3"], ["ngram", "--order", "5"], ["random"]])
def test_ids_path_prints_what_the_token_path_prints(tmp_path, capsys, monkeypatch, level, family):
    train, test, model = tmp_path / "train.txt", tmp_path / "test.txt", tmp_path / "m.npz"
    train.write_text(TRAIN, encoding="utf-8")
    test.write_bytes(TEST.encode("utf-8"))
    assert main(["train", *family, "--level", level, str(train), "-o", str(model)]) == 0
    capsys.readouterr()
    for extra in ([], ["--json"]):
        fast = _score(model, test, capsys, monkeypatch, True, *extra)
        slow = _score(model, test, capsys, monkeypatch, False, *extra)
        assert fast == slow
    assert json.loads(fast)["oov_tokens"] > 0  # the unknown words were counted, and the same


def test_the_ids_path_is_taken(tmp_path, capsys, monkeypatch):
    """The comparison above compares two paths: the n-gram model does read ids."""
    train, model = tmp_path / "train.txt", tmp_path / "m.npz"
    train.write_text(TRAIN, encoding="utf-8")
    assert main(["train", "ngram", str(train), "-o", str(model)]) == 0
    seen = []
    from scratchgen.ngram import NGramModel

    original = NGramModel._score_encoded
    monkeypatch.setattr(NGramModel, "_score_encoded", lambda self, enc: seen.append(len(enc)) or original(self, enc))
    assert main(["score", str(model), str(train)]) == 0
    assert seen == [4]


@pytest.mark.parametrize("text, problem", [("the <s> cat\n", "<s>"), ("\n \n", "no non-empty sequence")])
def test_bad_corpus_is_refused_by_both_paths(tmp_path, capsys, monkeypatch, text, problem):
    train, test, model = tmp_path / "train.txt", tmp_path / "test.txt", tmp_path / "m.npz"
    train.write_text(TRAIN, encoding="utf-8")
    test.write_text(text, encoding="utf-8")
    assert main(["train", "ngram", "--level", "word", str(train), "-o", str(model)]) == 0
    for ids in (True, False):
        monkeypatch.setattr(LanguageModel, "_reads_ids", lambda self, ids=ids: ids)
        with pytest.raises(CorpusError, match=problem):
            score_handler(
                argparse.Namespace(
                    model=str(model),
                    corpus=str(test),
                    labelled=False,
                    mode="lines",
                    chunk_size=256,
                    encoding="utf-8",
                    json=False,
                )
            )


def test_a_labelled_model_scored_without_labels_prints_the_marginal_on_both_paths(tmp_path, capsys, monkeypatch):
    train, test, model = tmp_path / "train.tsv", tmp_path / "test.txt", tmp_path / "m.npz"
    train.write_text("a\tthe cat sat\nb\tthe dog ran\na\ta cat ran\n", encoding="utf-8")
    test.write_text("the cat ran\nthe bird\n", encoding="utf-8")
    assert main(["train", "ngram", "--labelled", "--level", "word", str(train), "-o", str(model)]) == 0
    capsys.readouterr()
    for extra in ([], ["--json"]):
        fast = _score(model, test, capsys, monkeypatch, True, *extra)
        slow = _score(model, test, capsys, monkeypatch, False, *extra)
        assert fast == slow
    assert json.loads(fast)["labels"] == "marginal"
