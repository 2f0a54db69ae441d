"""Labels at the command line (issue 11, section 1): what generate --label, score --labelled, classify and
eval --labelled print. The errors' one-line form is in tests/test_cli_contract.py's table."""

from __future__ import annotations

import json
import math

import pytest

import scratchgen
from scratchgen.cli import main

# Word level. "pos" uses good/fun/great, "neg" bad/sad/awful; "the" is shared.
LABELLED = [
    ("pos", "the good fun"), ("pos", "great fun"), ("pos", "the great good"), ("pos", "fun fun good"),
    ("neg", "the bad sad"), ("neg", "awful bad"), ("neg", "sad the awful"),
]


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text("".join(f"{c}\t{t}\n" for c, t in LABELLED), encoding="utf-8")
    model = tmp_path / "m.npz"
    assert main(["train", "random", "--kind", "unigram", "--level", "word", "--labelled", str(train),
                 "-o", str(model)]) == 0
    return {"train": train, "model": model, "tmp": tmp_path}


def _run(capsys, *argv):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out, out.err


def test_generate_with_a_label_follows_that_label(files, capsys):
    model = scratchgen.load(files["model"])
    neg, pos = {"bad", "sad", "awful"}, {"good", "fun", "great"}
    for label, own, other in (("neg", neg, pos), ("pos", pos, neg)):
        out, _ = _run(capsys, "generate", files["model"], "--label", label, "-n", "100", "--seed", "1", "--json")
        samples = [row["tokens"] for row in json.loads(out)["samples"]]
        assert samples == model.generate(100, seed=1, label=label)  # the same draws as the API
        words = [w for s in samples for w in s]
        # add-1 smoothing: own words 3 x 3/20 of the mass, the other label's 3 x 1/20 (eq. 3 of baseline)
        assert sum(w in own for w in words) > 2 * sum(w in other for w in words)


def test_beam_search_with_a_label_maximises_log_p_given_the_label(files, capsys):
    model = scratchgen.load(files["model"])
    words = ["the", "good", "fun", "great", "bad", "sad", "awful"]
    for label in ("pos", "neg"):
        out, _ = _run(capsys, "generate", files["model"], "--beam", "3", "--label", label, "--min-tokens", "1",
                      "--max-tokens", "1", "--json")
        row = json.loads(out)["samples"][0]
        # one token, cut there (no </s>): the label's most probable word, scored by log P(w | label)
        first = {w: float(model.token_logprobs([model.vocab_.encode([w])], labels=label)[0][0]) for w in words}
        assert row["logprob"] == pytest.approx(max(first.values()), abs=1e-12)
        assert first[row["tokens"][0]] == pytest.approx(max(first.values()), abs=1e-12)
    assert row["tokens"] != ["fun"]  # neg's best word is not pos's: "fun" (3 of pos's 10 words) is neg's rarest


def test_score_labelled_is_log_p_given_each_label_and_plain_score_is_the_marginal(files, capsys):
    model = scratchgen.load(files["model"])
    texts = [t for _, t in LABELLED]
    labels = [c for c, _ in LABELLED]
    out, _ = _run(capsys, "score", files["model"], files["train"], "--labelled", "--json")
    given = json.loads(out)
    expected = sum(model.logprob(t, label=c) for c, t in LABELLED)
    assert given["logprob_nats"] == pytest.approx(expected, rel=1e-12)
    assert given["labels"] == "given"
    assert given["tokens"] == sum(len(t.split()) + 1 for t in texts)
    assert given["cross_entropy_nats"] == pytest.approx(-expected / given["tokens"])
    plain = files["tmp"] / "plain.txt"
    plain.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out, _ = _run(capsys, "score", files["model"], plain, "--json")
    marginal = json.loads(out)
    assert marginal["labels"] == "marginal"
    assert marginal["logprob_nats"] == pytest.approx(sum(model.logprob(t) for t in texts), rel=1e-12)
    assert model.score(texts, labels=labels).logprob == pytest.approx(expected)
    out, _ = _run(capsys, "score", files["model"], plain)
    assert "marginal" in out


def test_classify_prints_one_label_a_line_and_the_posterior_in_json(files, capsys):
    model = scratchgen.load(files["model"])
    texts = ["good fun", "awful sad bad", "the"]
    corpus = files["tmp"] / "texts.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out, _ = _run(capsys, "classify", files["model"], corpus)
    assert out.splitlines() == model.classify(texts).labels
    assert out.splitlines()[:2] == ["pos", "neg"]
    out, _ = _run(capsys, "classify", files["model"], corpus, "--json")
    result = json.loads(out)
    assert result["labels"] == ["neg", "pos"]
    expected = model.classify(texts)
    for row, label, posterior in zip(result["predictions"], expected.labels, expected.posterior):
        assert row["label"] == label
        assert [row["posterior"][n] for n in result["labels"]] == pytest.approx(posterior.tolist(), abs=1e-15)
        assert math.fsum(row["posterior"].values()) == pytest.approx(1.0)


def test_classify_labelled_reports_accuracy_per_label_and_confusion(files, capsys):
    test = files["tmp"] / "test.txt"
    # two right, one pos text that looks negative (a mistake the model must make), one neg right
    test.write_text("pos\tgood great\npos\tfun\npos\tbad sad awful\nneg\tawful\n", encoding="utf-8")
    out, err = _run(capsys, "classify", files["model"], test, "--labelled")
    assert out.splitlines() == ["pos", "pos", "neg", "neg"]
    assert "accuracy 0.7500 (3 of 4)" in err
    out, _ = _run(capsys, "classify", files["model"], test, "--labelled", "--json")
    report = json.loads(out)
    assert report["accuracy"] == 0.75 and report["sequences"] == 4
    assert report["per_label"]["pos"] == {"examples": 3, "correct": 2, "predicted": 2, "accuracy": 2 / 3}
    assert report["per_label"]["neg"] == {"examples": 1, "correct": 1, "predicted": 2, "accuracy": 1.0}
    assert report["confusion"] == {"labels": ["neg", "pos"], "matrix": [[1, 0], [1, 2]]}


def test_classify_streams_in_chunks_with_the_same_result(files, capsys, monkeypatch):
    import scratchgen.cli.classify as classify_cli

    texts = [t for _, t in LABELLED] * 3
    corpus = files["tmp"] / "many.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    whole, _ = _run(capsys, "classify", files["model"], corpus, "--json")
    monkeypatch.setattr(classify_cli, "CHUNK", 4)
    chunked, _ = _run(capsys, "classify", files["model"], corpus, "--json")
    assert json.loads(chunked) == json.loads(whole)
    assert len(json.loads(whole)["predictions"]) == len(texts)


def test_eval_labelled_reports_per_label_figures(files, capsys):
    out, _ = _run(capsys, "eval", files["model"], "--train", files["train"], "--labelled", "-n", "30",
                  "--max-tokens", "10", "--json")
    report = json.loads(out)["labels"]
    assert report["labels"] == ["neg", "pos"] and report["data"] == "train"
    for name in ("neg", "pos"):
        ce = report["cross_entropy"][name]
        assert ce["gain_nats"] == pytest.approx(ce["unlabelled_nats"] - ce["labelled_nats"])
        assert ce["gain_nats"] > 0  # the labels' words differ: knowing the label helps
        assert 0.0 <= report["fidelity"][name] <= 1.0
    assert report["classification"]["accuracy"] == 1.0
    assert report["samples_per_label"] == 30
    out, _ = _run(capsys, "eval", files["model"], "--train", files["train"], "--labelled", "-n", "5",
                  "--max-tokens", "10")
    assert "labels: 2; as a classifier" in out and "fidelity" in out and "gain" in out


def test_label_is_an_option_of_export_arpa_not_of_train_ngram(files, capsys):
    # export-arpa --label writes one label of a labelled n-gram; train ngram has --labelled and no --label
    # (an option accepted there and ignored would train a model the user did not ask for, silently).
    ngram = files["tmp"] / "n.npz"
    assert main(["train", "ngram", "--level", "word", "--order", "2", "--labelled", str(files["train"]),
                 "-o", str(ngram)]) == 0
    _run(capsys, "export-arpa", ngram, files["tmp"] / "pos.arpa", "--label", "pos")
    assert (files["tmp"] / "pos.arpa").read_text(encoding="utf-8").startswith("\\data\\")
    capsys.readouterr()
    with pytest.raises(SystemExit) as usage:
        main(["train", "ngram", "--level", "word", str(files["train"]), "-o", str(files["tmp"] / "x.npz"),
              "--label", "pos"])
    assert usage.value.code == 2 and not (files["tmp"] / "x.npz").exists()
