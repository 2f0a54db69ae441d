"""evaluate() and ``scratchgen eval``: one report of every measure."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from scratchgen import UnigramModel
from scratchgen.cli import eval as eval_cli
from scratchgen.cli import main
from scratchgen.errors import ScratchgenError
from scratchgen.evaluation import EvalReport, comparison_table, evaluate, reference_logprob

TRAIN = [["a", "b"], ["b", "a"], ["a", "a", "b"], ["b"]]
HELDOUT = [["a", "b", "b"], ["a"]]


class OnlyAB:
    """Stand-in grammar: only "a b" and "b a", probability 1/2 each."""

    def logprob(self, tokens):
        return math.log(0.5) if list(tokens) in (["a", "b"], ["b", "a"]) else -math.inf


def _model():
    return UnigramModel(k=1.0).fit(TRAIN)


def test_evaluate_with_given_samples():
    model = _model()
    samples = [["a", "b"], ["a", "b"], ["b", "b", "b"], ["a", "c"]]
    r = evaluate(model, TRAIN, reference=OnlyAB(), heldout=HELDOUT, samples=samples, seed=1)
    assert isinstance(r, EvalReport) and r.model == "UnigramModel" and r.seed == 1
    assert r.average_length == pytest.approx(9 / 4)
    # unigrams a b a b b b b a c: 9, distinct a b c: 3/9. bigrams ab ab bb bb ac: 5, distinct ab bb ac: 3/5.
    assert r.distinct[1] == pytest.approx(3 / 9)
    assert r.distinct[2] == pytest.approx(3 / 5)
    # trigrams: only "b b b" has one; no repeat within it.
    assert r.repetition_rate == 0.0
    # "a b" (twice) is copied, "b b b" and "a c" are new: 2/4; the one trigram bbb is new: 1/1.
    assert r.novelty.sequences == pytest.approx(0.5) and r.novelty.ngrams == 1.0
    # held-out score is the protocol's
    assert r.heldout == model.score(HELDOUT)
    # reference: "a b" twice possible at ln(1/2) each over 3 tokens each; the other two impossible
    assert r.reference.impossible == pytest.approx(0.5)
    assert r.reference.logprob_per_token == pytest.approx(math.log(0.5) / 3)
    assert r.reference_heldout.impossible == 1.0
    # 2 held-out sequences are the discriminator's real text: 2 of each class, 1 of each held out
    assert r.discriminator_real == "heldout"
    assert r.discriminator_accuracy in (0.0, 0.5, 1.0)
    d = r.to_dict()
    assert d["distinct_1"] == pytest.approx(1 / 3) and d["n"] == 4 and d["samples"][3] == ["a", "c"]
    assert "samples" not in r.to_dict(samples=False)
    json.dumps(d)  # JSON-able (no inf here)
    assert "discriminator accuracy" in r.summary() and "impossible 50.0%" in r.summary()


def test_a_precomputed_reference_heldout_is_reused():
    class Counting(OnlyAB):
        calls = 0

        def logprob(self, tokens):
            Counting.calls += 1
            return super().logprob(tokens)

    model, reference = _model(), Counting()
    floor = reference_logprob(HELDOUT, reference)
    assert Counting.calls == len(HELDOUT)
    r = evaluate(model, TRAIN, reference=reference, heldout=HELDOUT, samples=[["a", "b"]], reference_heldout=floor,
                 discriminator=False)
    assert r.reference_heldout is floor and Counting.calls == len(HELDOUT) + 1  # only the one sample scored


def test_evaluate_without_extras_and_with_texts():
    model = UnigramModel().fit(["ab", "ba"])  # character level: texts are tokenized by the model
    r = evaluate(model, ["ab", "ba"], samples=[["a", "b"], ["b", "b"]], discriminator=False)
    assert r.novelty.sequences == 0.5 and r.heldout is None and r.reference is None
    assert r.discriminator_accuracy is None
    r = evaluate(model, ["ab", "ba"], samples=[["a", "b"], ["b", "b"]])
    assert r.discriminator_real == "train" and r.discriminator_accuracy is not None
    with pytest.raises(ScratchgenError, match="no samples"):
        evaluate(model, ["ab"], samples=[])


def _decoding_available() -> bool:
    from scratchgen.decoding import generate

    try:
        generate(UnigramModel().fit([["a"]]), n=1, seed=0, max_tokens=3)
    except NotImplementedError:
        return False
    return True


needs_decoding = pytest.mark.skipif(not _decoding_available(), reason="scratchgen.decoding.generate not written yet")


@needs_decoding
def test_evaluate_samples_with_the_decoder_and_is_seeded():
    model = _model()
    a = evaluate(model, TRAIN, n=30, seed=3, max_tokens=20)
    b = evaluate(model, TRAIN, n=30, seed=3, max_tokens=20)
    assert len(a.samples) == 30 and a.samples == b.samples
    assert a.to_dict() == b.to_dict()
    assert all(len(s) <= 20 for s in a.samples)


@pytest.fixture
def files(tmp_path):
    corpus = tmp_path / "train.txt"
    corpus.write_text("ab\nba\naab\nb\n")
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("abb\na\n")
    model = UnigramModel().fit(corpus.read_text().split())
    path = tmp_path / "m.npz"
    model.save(path)
    return str(path), str(corpus), str(heldout)


@needs_decoding
def test_cli_eval_json(files, capsys):
    model, corpus, heldout = files
    assert main(["eval", model, "--train", corpus, "--heldout", heldout, "--reference", model,
                 "-n", "20", "--seed", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 20 and out["seed"] == 4 and "samples" not in out
    # the model as its own reference: held-out text under it scores what `score` says
    assert out["reference_heldout"]["bits_per_token"] == pytest.approx(out["heldout"]["bits_per_token"])
    assert main(["eval", model, "--train", corpus, "-n", "5", "--samples"]) == 0
    assert "distinct" in capsys.readouterr().out


def test_cli_errors_are_one_line(files, capsys):
    model, corpus, _ = files
    with pytest.raises(SystemExit) as exit_:  # a bad option value is a usage error (exit 2)
        main(["eval", model, "--train", corpus, "-n", "0"])
    assert exit_.value.code == 2
    assert "argument -n: must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(ScratchgenError, match="no_such_grammar"):
        eval_cli._load_reference("builtin:no_such_grammar")


def test_load_reference_takes_a_builtin_grammar_with_its_own_weights():
    from scratchgen.grammar import GrammarModel

    reference = eval_cli._load_reference("builtin:english")
    direct = GrammarModel.from_grammar("builtin:english")
    assert reference.logprob("the dog sleeps .") == direct.logprob("the dog sleeps .")
    assert np.isfinite(reference.logprob("the dog sleeps ."))
    assert reference.logprob("sleeps the dog .") == -math.inf  # not in the language


def test_load_reference_reads_a_model_file(files):
    model, _, _ = files
    reference = eval_cli._load_reference(model)
    assert np.isfinite(reference.logprob(["a", "b"]))


def test_comparison_table_puts_the_floor_first():
    model = _model()
    r = evaluate(model, TRAIN, reference=OnlyAB(), heldout=[["a", "b"]], samples=[["a", "b"], ["b", "b"]],
                 discriminator=False)
    lines = comparison_table({"unigram": r}).splitlines()
    assert lines[0].startswith("model") and "novel 3-gr" in lines[0]
    # floor: "a b" has probability 1/2 under OnlyAB over 3 tokens: log2(2) / 3 = 0.3333 bits/token
    assert lines[1].split()[:3] == ["reference", "(floor)", "0.3333"]
    cells = lines[2].split()
    assert cells[0] == "unigram"
    assert cells[1] == f"{model.score([['a', 'b']]).bits_per_token:.4f}"
    assert cells[2:4] == ["0.3333", "50.0%"]  # the samples under the reference: "b b" is impossible
    assert cells[4] == "1.000"  # bigrams ab, bb: 2 distinct of 2
    assert cells[-1] == "-"  # no discriminator asked for
