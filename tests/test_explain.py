"""scratchgen.explain: the per-token records add up to the model's own numbers, for every family.

- every family (the contract cases): the per-token log P sum to ``model.logprob(text)`` and equal
  ``token_logprobs``; rank and top-K agree with the stepping interface's ``next_logprobs``;
- labelled models: with a label, log P(x | c); without, the marginal;
- n-grams: the unrolled recursion adds up to each token's probability (hypothesis over texts), and
  ``ngram_length`` and log10 P equal KenLM's (the ``kenlm`` module, and the ``query`` binary when on PATH);
- grammar: the prefix probability after each token equals the reference's Jelinek-Lafferty prefix
  probability, and the parse is the model's Viterbi parse;
- random: the counts read back equal the corpus's counts; RNN: the hidden-state norms;
- two models: the second model's records and the difference in bits; bad input, one-line errors.
"""

from __future__ import annotations

import collections
import math
import re
import shutil
import subprocess

import cases_baseline
import cases_grammar
import cases_labelled
import cases_ngram
import cases_nn
import numpy as np
import pytest
from contract_case import rel_tol
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import (
    GrammarModel,
    NGramModel,
    RNNModel,
    Tokenizer,
    UniformModel,
    UnigramModel,
    Vocabulary,
    explain,
)
from scratchgen.errors import LabelError, ScratchgenError
from scratchgen.grammar.explain import ascii_tree, nested
from scratchgen.grammar.reference import prefix_probability
from scratchgen.labels import start_state
from scratchgen.ngram.explain import is_interpolated

CASES = cases_baseline.CASES + cases_grammar.CASES + cases_ngram.CASES + cases_nn.CASES
_FITTED: dict[str, object] = {}


def fitted(case):
    if case.id not in _FITTED:
        _FITTED[case.id] = case.make()
    return _FITTED[case.id]


def texts_of(case) -> list[str]:
    from contract_case import TRAIN_TEXTS

    seen = [] if case.id.startswith("grammar") else [TRAIN_TEXTS[0]]
    return seen + list(case.unseen)


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    return a == b or math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def stepping_rows(model, tokens, label=None) -> np.ndarray:
    """next_logprobs before each token and </s> by the protocol, one row a step: (T + 1, V)."""
    ids = model.vocab_.encode(tokens)
    state = start_state(model, 1, None if label is None else np.array([model.labels_.id(label)]))
    rows = []
    for t in range(len(ids) + 1):
        rows.append(model.next_logprobs(state)[0])
        if t < len(ids):
            state = model.advance(state, ids[t : t + 1])
    return np.array(rows)


# --- every family ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_per_token_log_probabilities_sum_to_the_models_logprob(case):
    model = fitted(case)
    for text in texts_of(case):
        e = explain(model, text)
        tokens = model.tokenize(text)
        assert [r["token"] for r in e["tokens"]] == tokens + ["</s>"]
        per_token = model.token_logprobs([model.vocab_.encode(tokens)])[0]
        for r, lp in zip(e["tokens"], per_token):
            assert close(r["logprob"], float(lp), rel_tol(model)), (text, r["token"], r["logprob"], lp)
            assert close(r["bits"], -r["logprob"] / math.log(2)) or (r["bits"] == math.inf and lp == -np.inf)
        assert close(e["logprob"], model.logprob(text), rel_tol(model)), (text, e["logprob"], model.logprob(text))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rank_and_top_agree_with_next_logprobs(case):
    model = fitted(case)
    names = model.vocab_.tokens
    for text in texts_of(case)[:2]:
        tokens = model.tokenize(text)
        e = explain(model, text, top=4)
        rows = stepping_rows(model, tokens)
        targets = list(model.vocab_.encode(tokens)) + [Vocabulary.eos_id]
        for r, row, w in zip(e["tokens"], rows, targets):
            p = np.exp(row)
            assert r["rank"] == 1 + int(np.sum(p > p[w] * (1 + 1e-12))), (r, sorted(p)[-5:])
            shown = [q for _, q in r["top"]]
            assert shown == sorted(shown, reverse=True) and len(shown) <= 4
            for token, q in r["top"]:
                assert math.isclose(q, p[names.index(token)], rel_tol=1e-9)
                assert token != "<s>" and q > 0
            # the tokens above the target in the top list are exactly the first rank - 1 (when they fit)
            above = sum(q > p[w] * (1 + 1e-12) for q in shown)
            assert above == min(r["rank"] - 1, len(shown))
            if r["rank"] == 1 and len(shown):
                assert math.isclose(shown[0], p[w], rel_tol=1e-9)


def test_ties_share_the_best_rank():
    model = UniformModel().fit(["abc"])  # every token 1/V': all tied
    e = explain(model, "cab", top=3)
    assert [r["rank"] for r in e["tokens"]] == [1, 1, 1, 1]
    assert [t for t, _ in e["tokens"][0]["top"]] == ["<unk>", "</s>", "a"]  # ties in order of id


def test_top_lists_at_most_the_tokens_a_model_can_emit():
    model = UnigramModel().fit(["aab"])
    top = explain(model, "a", top=100)["tokens"][0]["top"]
    assert [t for t, _ in top] == ["a", "</s>", "b", "<unk>"]  # counts 2, 1, 1, 0: b and </s> tied, by id
    assert math.isclose(sum(p for _, p in top), 1.0)
    mle = NGramModel(order=2, smoothing="mle").fit(["ab"])
    after_a = explain(mle, "ab", top=10)["tokens"][1]["top"]
    assert after_a == [["b", 1.0]]  # tokens of probability 0 are no alternatives


def test_an_out_of_vocabulary_token_is_scored_as_unk_and_says_so():
    model = UnigramModel(k=1).fit(["ab"])
    e = explain(model, "az")
    assert [r["oov"] for r in e["tokens"]] == [False, True, False]
    assert close(e["tokens"][1]["logprob"], model.logprob(["<unk>"]) - model.logprob([]))


# --- labelled models ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases_labelled.LABELLED_CASES, ids=[c.id for c in cases_labelled.LABELLED_CASES])
def test_a_labelled_model_explains_its_label_or_its_marginal(case):
    model = case.make()
    for text in case.scored[:3]:
        if not text:
            continue
        assert close(explain(model, text)["logprob"], model.logprob(text))  # eq. (5): the marginal
        for label in model.labels_.names:
            e = explain(model, text, label=label)
            assert close(e["logprob"], model.logprob(text, label=label)), (text, label)
            rows = stepping_rows(model, model.tokenize(text), label)
            assert [r["rank"] for r in e["tokens"]][:1] == [1 + int(np.sum(rows[0] > e["tokens"][0]["logprob"]))]


def test_a_label_given_to_an_unlabelled_model_is_a_label_error():
    with pytest.raises(LabelError, match="has no labels"):
        explain(UnigramModel().fit(["ab"]), "ab", label="pos")
    labelled = UnigramModel().fit(["ab", "ba"], labels=["x", "y"])
    with pytest.raises(LabelError, match="unknown label 'z'"):
        explain(labelled, "ab", label="z")


# --- n-grams: the recursion adds up; KenLM agrees ----------------------------------------------------------

NGRAM_TRAIN = ["abcab", "bca", "aab", "cabbage", "abc abc"]
NGRAMS = {
    (smoothing, order): NGramModel(order=order, smoothing=smoothing).fit(NGRAM_TRAIN)
    for smoothing in ("mle", "add-k", "absolute", "witten-bell", "kneser-ney", "modified-kneser-ney", "stupid-backoff")
    for order in (1, 2, 4)
}


def unrolled(steps) -> float:
    """P_N by eq. (1) of ngram/explain.py, from the unigram up: the sum a learner does by hand."""
    p = None
    for step in reversed(steps):
        p = step["alpha"] if step["order"] == 1 else step["alpha"] + step["gamma"] * p
    return p


@settings(max_examples=40, deadline=None)
@given(text=st.text(alphabet="abcegz ", max_size=12), key=st.sampled_from(sorted(NGRAMS)))
def test_the_unrolled_recursion_adds_up_to_the_tokens_probability(text, key):
    model = NGRAMS[key]
    e = explain(model, text)
    for t, r in enumerate(e["tokens"]):
        steps = r["steps"]
        assert [s["order"] for s in steps] == list(range(min(model.order, t + 2), 0, -1))  # <s> and t tokens
        assert all(s["ngram"][-1] == steps[-1]["ngram"][-1] for s in steps)
        assert math.isclose(unrolled(steps), math.exp(r["logprob"]), rel_tol=1e-9, abs_tol=1e-300)
        for upper, lower in zip(steps, steps[1:]):  # each order's "lower" is the next order's P
            assert upper["lower"] == lower["p"]
        stored = [s["order"] for s in steps if s["stored"]]
        assert r["ngram_length"] == max(stored)
        if is_interpolated(model) and model.cutoffs is None:  # alpha is a discounted share: never negative
            assert all(s["alpha"] >= 0 for s in steps), steps


def test_the_recursion_reads_as_a_sum_in_the_why_line():
    model = NGramModel(order=3, tokenizer=Tokenizer("word")).fit(["the cat sat", "the dog sat", "a cat ran"])
    r = explain(model, "the cat sat")["tokens"][1]
    s3, s2, s1 = r["steps"]
    assert r["ngram_length"] == 3 and s3["ngram"] == ["<s>", "the", "cat"]
    # P = alpha_3 + gamma_3 (alpha_2 + gamma_2 P_1), the numbers of the why line
    assert f"{s3['alpha']:.4g} + {s3['gamma']:.4g}*({s2['alpha']:.4g} + {s2['gamma']:.4g}*({s1['p']:.4g}))" in r["why"]


WORD_TRAIN = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the end", "a dog sat"]
KENLM_TEXTS = ["the cat sat on the log", "a dog sat", "zebra the cat", "the mat mat zebra zebra", "cat", "dog dog the"]


@pytest.fixture(scope="module")
def word_arpa(tmp_path_factory):
    model = NGramModel(order=3, tokenizer=Tokenizer("word")).fit(WORD_TRAIN)
    path = tmp_path_factory.mktemp("explain") / "model.arpa"
    model.to_arpa(path)
    return model, str(path)


def test_ngram_length_and_log10_p_equal_kenlms(word_arpa):
    kenlm = pytest.importorskip("kenlm")
    model, path = word_arpa
    lm = kenlm.Model(path)
    for text in KENLM_TEXTS:
        ours = explain(model, text)["tokens"]
        theirs = list(lm.full_scores(text))
        assert len(ours) == len(theirs)
        for r, (log10p, length, oov) in zip(ours, theirs):
            assert r["ngram_length"] == length, (text, r["token"])
            assert math.isclose(r["logprob"] / math.log(10), log10p, abs_tol=1e-5), (text, r["token"])
            assert r["oov"] == oov


def test_ngram_length_equals_what_kenlms_query_prints(word_arpa, tmp_path):
    query = shutil.which("query")
    if query is None:
        pytest.skip("KenLM's query binary is not on PATH")
    model, path = word_arpa
    text = "\n".join(KENLM_TEXTS) + "\n"
    # newer KenLM takes -v word (one record a word, its default); an older one has no -v and prints words anyway
    run = subprocess.run([query, "-v", "word", path], input=text, capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        run = subprocess.run([query, path], input=text, capture_output=True, text=True, timeout=60, check=True)
    lines = [line for line in run.stdout.splitlines() if "Total:" in line]
    assert len(lines) == len(KENLM_TEXTS), run.stdout
    for text, line in zip(KENLM_TEXTS, lines):
        printed = re.findall(r"(\S+)=(\d+) (\d+) (-?[\d.]+(?:e-?\d+)?)", line)  # word=id ngram_length log10p
        ours = explain(model, text)["tokens"]
        assert [int(n) for _, _, n, _ in printed] == [r["ngram_length"] for r in ours], line
        for (_, _, _, log10p), r in zip(printed, ours):
            assert math.isclose(r["logprob"] / math.log(10), float(log10p), abs_tol=1e-4)


def test_a_labelled_ngram_models_marginal_gets_no_family_keys():
    model = NGramModel(order=2)
    model.fit(NGRAM_TRAIN)
    model.labels_ = cases_labelled_set()  # as a labelled model would carry; with a label: tests/ngram/test_labelled
    keys, sentence = model._explain(model.vocab_.encode(list("ab")), None)
    assert keys == [{}, {}, {}] and sentence == {}


def cases_labelled_set():
    from scratchgen.labels import LabelSet

    return LabelSet(["a"], [1])


# --- grammar: prefix probabilities and the parse ----------------------------------------------------------


def test_the_grammars_prefix_probabilities_match_the_references():
    model = fitted(cases_grammar.CASES[0])
    for text in ["the cat sat on the dog", "a dog and the cat sat", "the cat", "sat the"]:
        tokens = text.split()
        e = explain(model, text)
        for t, r in enumerate(e["tokens"][:-1]):
            pre = prefix_probability(model.grammar_, tokens[: t + 1])
            assert math.isclose(math.exp(r["prefix_logprob"]), pre, rel_tol=1e-8, abs_tol=1e-300), (text, t)
        assert close(e["tokens"][-1]["prefix_logprob"], model.logprob(text))  # after </s>: P(x)


def test_the_grammars_parse_is_its_viterbi_parse():
    model = fitted(cases_grammar.CASES[0])
    text = "the dog and a cat sat on the mat"
    e = explain(model, text)
    logprob, tree = model.parse(text)
    assert e["parse"] == nested(tree) and close(e["parse_logprob"], logprob)
    leaves, stack = [], [e["parse"]]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            leaves.append(node)
        else:
            stack.extend(reversed(node[1:]))
    assert leaves == text.split()
    drawn = ascii_tree(e["parse"])
    assert drawn.splitlines()[0] == "S" and all(f"'{w}'" in drawn for w in set(text.split()))
    assert explain(model, "sat sat")["parse"] is None


def test_a_labelled_grammar_explains_with_its_labels_grammar():
    case = cases_labelled.grammar_cases()[0]
    model = case.make()
    e = explain(model, "the cat runs", label="en")
    assert close(e["tokens"][-1]["prefix_logprob"], model.logprob("the cat runs", label="en"))
    assert e["parse"][0] == "en" or e["parse"][1][0] == "en"
    marginal = explain(model, "the cat runs")
    assert close(marginal["tokens"][-1]["prefix_logprob"], model.logprob("the cat runs"))


# --- random and RNN ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("min_count", [1, 2])
def test_the_unigram_counts_read_back_are_the_corpus_counts(min_count):
    corpus = ["abcab", "bca", "aab", "xyz"]
    model = UnigramModel(k=0.5, min_count=min_count).fit(corpus)
    counts = collections.Counter(c for s in corpus for c in s)
    e = explain(model, "abz")
    for r in e["tokens"]:
        if r["token"] == "</s>":
            assert r["count"] == len(corpus)
        elif r["oov"]:
            assert r["count"] == sum(n for c, n in counts.items() if n < min_count)
        else:
            assert r["count"] == counts[r["token"]]
        assert r["total"] == sum(counts.values()) + len(corpus)
        assert math.isclose((r["count"] + r["k"]) / (r["total"] + r["k"] * r["types"]), math.exp(r["logprob"]))


def test_the_uniform_model_explains_by_its_number_of_types():
    model = UniformModel().fit(["abc"])
    for r in explain(model, "ab")["tokens"]:
        assert r["types"] == len(model.vocab_) - 1 and math.isclose(math.exp(r["logprob"]), 1 / r["types"])


def test_the_rnn_gives_the_norm_of_the_state_that_predicted_each_token():
    model = fitted(cases_nn.CASES[1])  # two layers
    e = explain(model, "the cat")
    state = model.initial_state(1)
    assert math.isclose(e["tokens"][0]["hidden_norm"], float(np.linalg.norm(state[-1])))
    for r in e["tokens"]:
        assert len(r["hidden_norms"]) == model.layers and r["hidden_norm"] == r["hidden_norms"][-1]
        assert 0 <= r["hidden_norm"] <= math.sqrt(model.hidden)
    # the state after the first token predicts the second
    state = model.advance(state, model.vocab_.encode(model.tokenize("the cat")[:1]))
    assert math.isclose(e["tokens"][1]["hidden_norm"], float(np.linalg.norm(state[-1])))


# --- two models ------------------------------------------------------------------------------------------------


def test_two_models_side_by_side_with_the_difference_in_bits():
    a = NGramModel(order=3).fit(NGRAM_TRAIN)
    b = UnigramModel().fit(NGRAM_TRAIN)
    e = explain(a, "cabbage", other=b, top=2)
    assert close(e["other"]["logprob"], b.logprob("cabbage"))
    for r in e["tokens"]:
        assert "token" not in r["other"] and "count" in r["other"] and "ngram_length" in r
        assert close(r["bits_difference"], r["other"]["bits"] - r["bits"])


def test_two_models_whose_tokenizers_differ_are_refused_naming_both():
    a = UnigramModel().fit(["the cat"])
    b = UnigramModel(tokenizer=Tokenizer("word")).fit(["the cat"])
    with pytest.raises(ScratchgenError, match=r"UnigramModel: char level, UnigramModel: word level"):
        explain(a, "the cat", other=b)


def test_a_bad_top_is_a_one_line_error_and_the_empty_text_is_one_token():
    model = UnigramModel().fit(["ab"])
    assert [r["token"] for r in explain(model, "")["tokens"]] == ["</s>"]
    for top in (-1, 2.5, True):
        with pytest.raises(ScratchgenError, match="top must be an integer >= 0"):
            explain(model, "ab", top=top)
    assert explain(model, [], top=0)["tokens"][0]["top"] == []  # an empty token list is the empty sequence


def test_every_family_model_works_with_the_other_families():
    texts = ["the cat sat", "a dog"]
    models = [UniformModel(tokenizer=Tokenizer("word")).fit(texts),
              NGramModel(order=2, tokenizer=Tokenizer("word")).fit(texts),
              RNNModel(hidden=4, max_steps=2, valid_fraction=0.0, tokenizer=Tokenizer("word")).fit(texts),
              GrammarModel.from_grammar("S -> 'the' 'cat' 'sat' [0.5] | 'a' 'dog' [0.5]")]
    for a in models:
        for b in models:
            e = explain(a, "the cat sat", other=b)
            assert len(e["tokens"]) == 4 and close(e["other"]["logprob"], b.logprob("the cat sat"))


def test_the_transformer_shows_where_each_head_looked():
    """Each token's attention: one row a layer and head over the positions of its window (<s> first), each a
    distribution; the last position is the token before it; past the context, the window of eq. (T4)."""
    from scratchgen import TransformerModel
    from scratchgen.nn.transformer import window_starts

    model = TransformerModel(
        layers=2, heads=2, embedding=8, context=4, epochs=2, batch_size=4, lr=1e-2, valid_fraction=0.0, seed=0
    ).fit(["the cat sat", "a dog ran"])
    text = "the cat sat on"
    records = explain(model, text)["tokens"]
    tokens = ["<s>"] + list(text)
    starts = {i: s for s, first, stop in window_starts(len(tokens), 4) for i in range(first, stop)}
    for i, r in enumerate(records):
        attention = np.array(r["attention"])  # (layers, heads, window)
        assert attention.shape == (2, 2, i - starts[i] + 1)
        np.testing.assert_allclose(attention.sum(axis=-1), 1.0, rtol=1e-6)
        assert r["context"] == tokens[starts[i] : i + 1]  # what it could see, the token before it last
        assert r["hidden_norm"] > 0 and "head 1" in r["why"]
