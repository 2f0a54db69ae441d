"""The contract suite: the laws every model of scratchgen obeys, written once, run over every model.

The cases come from ``tests/cases_<family>.py``. A case that knowingly breaks a law lists it in
``exempt`` with the reason; the suite then checks the law really does fail for it, so an exemption
cannot hide a bug that was fixed (or a law that silently started to hold).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import cases_baseline
import cases_grammar
import cases_ngram
import cases_nn
import numpy as np
import pytest
from contract_case import rel_tol

import scratchgen
from scratchgen import DecodingError, ModelFileError, NotFittedError, Vocabulary
from scratchgen.errors import CorpusError, ScratchgenError
from scratchgen.registry import MODEL_REGISTRY

CASES = cases_baseline.CASES + cases_grammar.CASES + cases_ngram.CASES + cases_nn.CASES
IDS = [c.id for c in CASES]

_FITTED: dict[str, object] = {}


def fitted(case):
    """Each case's model is fitted once per session (fitting an RNN takes a moment)."""
    if case.id not in _FITTED:
        _FITTED[case.id] = case.make()
    return _FITTED[case.id]


def contexts(model, rng, n=12, length=6):
    """States after random prefixes: seen contexts, unseen ones and <unk>."""
    V = len(model.vocab_)
    choices = np.array([i for i in range(V) if i != Vocabulary.bos_id])
    prefixes = rng.choice(choices[choices != Vocabulary.eos_id], size=(n, length))  # (n, length)
    state = model.initial_state(n)
    states = [state]
    for t in range(length):
        state = model.advance(state, prefixes[:, t])
        states.append(state)
    return states


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_next_token_distributions_sum_to_one(case):
    model = fitted(case)
    rng = np.random.default_rng(0)
    sums = [np.exp(model.next_logprobs(s)).sum(axis=1) for s in contexts(model, rng)]
    sums = np.concatenate(sums)
    rows = np.concatenate([model.next_logprobs(s) for s in contexts(model, rng)])
    assert rows.shape[1] == len(model.vocab_)
    assert np.all(rows[:, Vocabulary.bos_id] == -np.inf), "<s> must never be emitted"
    # The flag the CLI reads to print a score that is not a probability without calling it a perplexity.
    assert model.normalized is ("normalised" not in case.exempt)
    if "normalised" in case.exempt:
        assert not np.allclose(sums, 1.0, atol=1e-9), f"{case.id} is exempt from normalisation but sums to 1"
    else:
        np.testing.assert_allclose(sums, 1.0, atol=1e-9)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_logprob_is_sum_of_step_logprobs(case):
    model = fitted(case)
    texts = list(case.unseen) + ["", "the cat"]
    ids, _ = model.encode_corpus(texts)
    vectorised = model.token_logprobs(ids)
    stepped = scratchgen.LanguageModel.token_logprobs(model, ids)  # the base-class stepping default
    tol = rel_tol(model)
    for v, s, text in zip(vectorised, stepped, texts):
        np.testing.assert_allclose(v, s, rtol=tol, atol=tol, err_msg=text)
        assert model.logprob(text) == pytest.approx(float(s.sum()), rel=tol, abs=tol)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_score_follows_the_convention(case):
    model = fitted(case)
    texts = list(case.unseen)
    score = model.score(texts)
    tokens = model.tokenize_corpus(texts)
    assert score.tokens == sum(len(t) + 1 for t in tokens)  # one </s> a sequence, <s> never
    assert score.oov_tokens == sum(1 for t in tokens for w in t if w not in model.vocab_)
    total = sum(model.logprob(t) for t in texts)
    assert score.logprob == pytest.approx(total, rel=rel_tol(model))
    assert score.cross_entropy_nats == pytest.approx(-total / score.tokens, rel=rel_tol(model))
    assert score.bits_per_token == pytest.approx(score.cross_entropy_nats / np.log(2), rel=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_save_then_load_changes_no_score_and_no_sample(case, tmp_path):
    model = fitted(case)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = scratchgen.load(path)
    assert type(loaded) is type(model)
    assert loaded.vocab_ == model.vocab_
    assert loaded.get_params() == model.get_params()
    assert loaded.tokenizer_ == model.tokenizer_
    for text in case.unseen:
        assert loaded.logprob(text) == model.logprob(text)
    assert scratchgen.generate(loaded, 3, seed=7, max_tokens=20) == scratchgen.generate(model, 3, seed=7, max_tokens=20)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_same_seed_same_text(case):
    model = fitted(case)
    a = scratchgen.generate(model, 4, seed=123, max_tokens=30)
    b = scratchgen.generate(model, 4, seed=np.random.default_rng(123), max_tokens=30)
    assert a == b
    assert all(len(s) <= 30 for s in a)
    assert all(Vocabulary.SPECIALS[1] not in s and Vocabulary.SPECIALS[2] not in s for s in a)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input_raises_the_documented_errors(case):
    model = fitted(case)
    unfitted = type(model)(**model.get_params())
    with pytest.raises(NotFittedError):
        unfitted.logprob("abc")
    with pytest.raises(CorpusError):
        model.score("one string is not a corpus")
    with pytest.raises(CorpusError):
        model.logprob([1, 2, 3])
    with pytest.raises(CorpusError, match="<s>"):
        model.logprob(["<s>", "a"])  # every model adds the boundaries itself
    with pytest.raises(ScratchgenError):
        type(model)(**model.get_params()).fit([])
    with pytest.raises(DecodingError):
        scratchgen.generate(model, 0)
    with pytest.raises(DecodingError):
        scratchgen.generate(model, 1, max_tokens=-1)


def test_every_registered_model_has_a_case():
    covered = {type(fitted(c)).__name__ for c in CASES}
    assert set(MODEL_REGISTRY) <= covered, f"models without a contract case: {set(MODEL_REGISTRY) - covered}"


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_every_registered_model_steps(name):
    """Every model has the stepping interface (so there is no flag saying whether it has one)."""
    cls = MODEL_REGISTRY[name]
    assert cls.__name__ == name and issubclass(cls, scratchgen.LanguageModel)
    for method in ("initial_state", "advance", "next_logprobs"):
        assert getattr(cls, method) is not getattr(scratchgen.LanguageModel, method), f"{name} lacks {method}"
    assert not hasattr(cls, "supports_stepping")


def test_same_seed_same_text_in_a_fresh_process(tmp_path):
    model = fitted(CASES[1])
    path = tmp_path / "m.npz"
    model.save(path)
    code = textwrap.dedent(f"""
        import scratchgen
        m = scratchgen.load({str(path)!r})
        print(scratchgen.generate(m, 3, seed=5, max_tokens=15, top_p=0.9))
    """)
    def run():
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert run() == run() == str(scratchgen.generate(model, 3, seed=5, max_tokens=15, top_p=0.9)) + "\n"


def test_loading_a_missing_file_names_it(tmp_path):
    with pytest.raises(ModelFileError, match="nope.npz"):
        scratchgen.load(tmp_path / "nope.npz")
