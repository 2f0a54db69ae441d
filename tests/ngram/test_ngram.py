"""Tests of the n-gram family: counting, every smoothing, ARPA, scoring, stepping, the command line.

The exactness tests against KenLM use the reference models in ../shared/data/kenlm (made by lmplz, see
SOURCES.md there) and skip when that folder is absent.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen import ArpaError, Tokenizer, Vocabulary, load
from scratchgen.cli import main
from scratchgen.errors import CorpusError, ScratchgenError
from scratchgen.ngram import NGramCounts, NGramModel, read_arpa
from scratchgen.ngram.arpa import escape_token, unescape_token
from scratchgen.ngram.counting import _unique_inverse_first, unique_inverse
from scratchgen.ngram.smoothing import kenlm_discounts

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kenlm"
NORMALISED = ["mle", "add-k", "absolute", "witten-bell", "kneser-ney", "modified-kneser-ney"]
ALL = NORMALISED + ["stupid-backoff"]


def lp(model, tokens):
    return model.logprob(list(tokens))


# --- counting ---------------------------------------------------------------------------------------------


def test_counts_by_hand():
    # "a b a" and "b": streams <s> a b a </s> and <s> b </s>; ids a=3, b=4.
    c = NGramCounts.from_sequences([np.array([3, 4, 3]), np.array([4])], order=3, vocab_size=5)
    # unigram targets: a 2, b 2, </s> 2; <s> is never a target
    assert c.counts[0].tolist() == [0, 0, 2, 2, 2]
    bigrams = {tuple(r): n for r, n in zip(c.words(2).tolist(), c.counts[1].tolist())}
    assert bigrams == {(1, 3): 1, (1, 4): 1, (3, 4): 1, (4, 3): 1, (3, 2): 1, (4, 2): 1}
    trigrams = {tuple(r): n for r, n in zip(c.words(3).tolist(), c.counts[2].tolist())}
    assert trigrams == {(1, 3, 4): 1, (3, 4, 3): 1, (4, 3, 2): 1, (1, 4, 2): 1}
    adj = c.adjusted_counts()
    # unigrams: distinct left words: a after {<s>, b} = 2, b after {a, <s>} = 2, </s> after {a, b} = 2
    assert adj[0].tolist() == [0, 0, 2, 2, 2]
    adj2 = {tuple(r): n for r, n in zip(c.words(2).tolist(), adj[1].tolist())}
    # <s>-initial bigrams keep raw counts; others: left words: (a b) after <s>; (b a) after a; (a </s>) after b;
    # (b </s>) after <s>
    assert adj2 == {(1, 3): 1, (1, 4): 1, (3, 4): 1, (4, 3): 1, (3, 2): 1, (4, 2): 1}
    assert adj[2].tolist() == c.counts[2].tolist()  # the highest order keeps raw counts


def test_merged_counts_equal_counts_of_the_whole():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(3, 9, size=rng.integers(0, 8)) for _ in range(40)]
    whole = NGramCounts.from_sequences(seqs, 4, 9)
    merged = NGramCounts.from_sequences(seqs[:15], 4, 9).merge(NGramCounts.from_sequences(seqs[15:], 4, 9))
    for n in range(1, 5):
        assert np.array_equal(whole.keys[n - 1], merged.keys[n - 1])
        assert np.array_equal(whole.counts[n - 1], merged.counts[n - 1])
        if n > 1:
            assert np.array_equal(whole.suffix[n - 1], merged.suffix[n - 1])
    vocab = Vocabulary([chr(ord("a") + i) for i in range(6)])
    a = NGramModel(order=4).fit_counts(whole, vocab)
    b = NGramModel(order=4).fit_counts(merged, vocab)
    assert np.allclose(a.token_logprobs(seqs[:5])[0], b.token_logprobs(seqs[:5])[0])


@given(keys=st.lists(st.integers(0, 50), max_size=60), key_range=st.sampled_from([50, 2**40, 2**62]))
def test_unique_inverse_is_numpys_unique(keys, key_range):
    # The readable reference: np.unique's sorted distinct values and inverse, with the value key_range
    # (a left-out element) dropped and its inverse -1. A key_range of 2**62 cannot be packed: the argsort path.
    key = np.array([key_range if k == 50 else k for k in keys], dtype=np.int64)
    uniq, inverse = unique_inverse(key, key_range)
    ref_uniq, ref_inverse = np.unique(key, return_inverse=True)
    keep = ref_uniq != key_range
    ref_index = np.where(keep, np.cumsum(keep) - 1, -1)
    assert uniq.tolist() == ref_uniq[keep].tolist()
    assert inverse.tolist() == ref_index[ref_inverse.reshape(-1)].tolist()


def _same_counts(a: NGramCounts, b: NGramCounts) -> None:
    assert (a.order, a.vocab_size) == (b.order, b.vocab_size)
    for name in ("keys", "counts", "suffix", "bos_start"):
        for n, (x, y) in enumerate(zip(getattr(a, name), getattr(b, name)), start=1):
            assert np.array_equal(x, y), (name, n)


sequences = st.lists(
    st.lists(st.integers(3, 8), max_size=9).map(lambda s: np.array(s, dtype=np.int64)), min_size=2, max_size=25
)


@given(seqs=sequences, cut=st.integers(1, 24), order=st.integers(1, 5))
def test_any_split_merged_equals_the_count_of_the_whole(seqs, cut, order):
    cut = min(cut, len(seqs) - 1)
    whole = NGramCounts.from_sequences(seqs, order, 9)
    left, right = NGramCounts.from_sequences(seqs[:cut], order, 9), NGramCounts.from_sequences(seqs[cut:], order, 9)
    _same_counts(left.merge(right), whole)
    _same_counts(right.merge(left), whole)


@given(seqs=sequences, order=st.integers(1, 5), seed=st.integers(0, 99))
def test_renumbered_counts_equal_the_count_of_renumbered_ids(seqs, order, seed):
    table = np.concatenate([[0, 1, 2], 3 + np.random.default_rng(seed).permutation(8)])  # ids 3 .. 10 of 11
    expected = NGramCounts.from_sequences([table[s] for s in seqs], order, 11)
    _same_counts(NGramCounts.from_sequences(seqs, order, 9).renumber(table[:9], 11), expected)


@settings(deadline=None)
@given(seqs=sequences, order=st.integers(1, 5), spread=st.sampled_from([1, 10**5]))
def test_counts_sorted_or_tabled_equal_the_reference_count(seqs, order, spread):
    # spread 10**5: ids far apart, so every order's keys are numbered by sorting (with the suffix read
    # from the positions); spread 1: by the dense table. Both against the dict count of ngram/reference.py.
    from scratchgen.ngram.reference import count_ngrams

    def rename(i):
        return i if i < 3 else 3 + (i - 3) * spread

    V = rename(8) + 1
    counts = NGramCounts.from_sequences([np.array([rename(i) for i in s], dtype=np.int64) for s in seqs], order, V)
    expected = count_ngrams([[rename(i) for i in s] for s in seqs], order)
    words = {"<s>": Vocabulary.bos_id, "</s>": Vocabulary.eos_id}
    expected = {tuple(words.get(w, w) for w in g): c for g, c in expected.items()}
    got = {(int(i),): int(counts.counts[0][i]) for i in np.flatnonzero(counts.counts[0])}
    for n in range(2, order + 1):
        got.update({tuple(r): int(c) for r, c in zip(counts.words(n).tolist(), counts.counts[n - 1].tolist())})
    assert got == expected
    for n in range(3, order + 1):  # the suffix of each n-gram is its last n - 1 words (n = 2: the id itself)
        assert counts.words(n - 1)[counts.suffix[n - 1]].tolist() == counts.words(n)[:, 1:].tolist()
    if order > 1:
        assert counts.suffix[1].tolist() == counts.words(2)[:, 1].tolist()


def test_renumber_refuses_a_table_that_is_not_one_to_one():
    c = NGramCounts.from_sequences([np.array([3, 4])], 2, 5)
    with pytest.raises(ScratchgenError, match="one-to-one"):
        c.renumber(np.array([0, 1, 2, 3, 3]), 5)
    with pytest.raises(ScratchgenError, match="<unk>, <s> and </s>"):
        c.renumber(np.array([1, 0, 2, 3, 4]), 5)


# --- smoothing by hand -------------------------------------------------------------------------------------

# Corpus "ab", "a": streams <s> a b </s>, <s> a </s>; V = {<unk>, <s>, </s>, a, b}, V' = V - 1 = 4.


def test_mle_by_hand():
    m = NGramModel(order=2, smoothing="mle").fit(["ab", "a"])
    # P(a|<s>) = 2/2, P(b|a) = 1/2, P(</s>|b) = 1/1
    assert lp(m, "ab") == pytest.approx(math.log(0.5))
    # "b" first: P(b|<s>) = 0 -> -inf (MLE's documented price)
    assert lp(m, "b") == -math.inf


def test_add_k_by_hand():
    m = NGramModel(order=2, smoothing="add-k", k=1).fit(["ab", "a"])
    # P(a|<s>) = (2+1)/(2+4), P(b|a) = (1+1)/(2+4), P(</s>|b) = (1+1)/(1+4)
    assert lp(m, "ab") == pytest.approx(math.log(3 / 6 * 2 / 6 * 2 / 5))
    # an unseen context (<unk>) gives the uniform 1/V' = 1/4 to </s>: P(<unk>|<s>) = 1/6
    assert lp(m, "z") == pytest.approx(math.log(1 / 6 * 1 / 4))


def test_witten_bell_by_hand():
    m = NGramModel(order=2, smoothing="witten-bell").fit(["ab", "a"])
    # unigrams: c(a)=2 c(b)=1 c(</s>)=2, N=5, T=3: p(w) = (c + T/V')/(N + T) = (c + 0.75)/8
    p_b, p_end = 1.75 / 8, 2.75 / 8
    # context <s>: c(<s> a) = 2, d = 2, T = 1: P(a|<s>) = (2 + 1 p(a)) / 3
    p_a_bos = (2 + 2.75 / 8) / 3
    # context a: c(a b) = c(a </s>) = 1, d = 2, T = 2: P(b|a) = (1 + 2 p(b)) / 4
    p_b_a = (1 + 2 * p_b) / 4
    # context b: c(b </s>) = 1, d = 1, T = 1: P(</s>|b) = (1 + p(</s>)) / 2
    p_end_b = (1 + p_end) / 2
    assert lp(m, "ab") == pytest.approx(math.log(p_a_bos * p_b_a * p_end_b))


def test_absolute_and_kneser_ney_by_hand():
    # Order 1: unigrams interpolated with the uniform 1/V'. Counts a:2 b:1 </s>:2 (N = 5):
    # n1 = 1 (b), n2 = 2 (a, </s>): D = 1 / (1 + 4) = 0.2, gamma = D T / N = 0.2 * 3 / 5 = 0.12
    m = NGramModel(order=1, smoothing="absolute").fit(["ab", "a"])
    p = lambda c: (c - 0.2) / 5 + 0.12 / 4  # noqa: E731
    assert lp(m, "ab") == pytest.approx(math.log(p(2) * p(1) * p(2)))
    assert lp(m, "z") == pytest.approx(math.log(0.12 / 4 * p(2)))  # <unk> has only its uniform share
    # Kneser-Ney order 2: unigram adjusted counts are the distinct left words: a {<s>} = 1, b {a} = 1,
    # </s> {a, b} = 2; n1 = 2, n2 = 1: D1 = 2/4 = 0.5, sum = 4, gamma = 0.5 * 3 / 4 = 0.375
    kn = NGramModel(order=2, smoothing="kneser-ney").fit(["ab", "a"])
    u = lambda a: (a - 0.5) / 4 + 0.375 / 4  # noqa: E731
    # bigrams (raw counts at the top order): (<s> a) 2, (a b) 1, (a </s>) 1, (b </s>) 1: n1 = 3, n2 = 1, D = 0.6
    p_a = (2 - 0.6) / 2 + 0.6 * 1 / 2 * u(1)  # context <s>: d = 2, one word
    p_b = (1 - 0.6) / 2 + 0.6 * 2 / 2 * u(1)  # context a: d = 2, two words
    p_e = (1 - 0.6) / 1 + 0.6 * 1 / 1 * u(2)  # context b: d = 1, one word
    assert lp(kn, "ab") == pytest.approx(math.log(p_a * p_b * p_e))


def test_kenlm_discounts_formula_and_fallback():
    # n1..n4 = 4, 2, 1, 1: Y = 4/8; D1 = 1 - 2 Y 2/4 = 0.5, D2 = 2 - 3 Y 1/2 = 1.25, D3 = 3 - 4 Y 1/1 = 1
    a = np.array([1, 1, 1, 1, 2, 2, 3, 4, 7])
    assert np.allclose(kenlm_discounts(a), (0.5, 1.25, 1.0))
    assert kenlm_discounts(np.array([2, 2, 3])) == (0.5, 1.0, 1.5)  # no n1: lmplz --discount_fallback
    # n1..n4 = 1, 1, 1, 0: D1 = 1 - 2 (1/3) 1/1 = 1/3, D2 = 2 - 3 (1/3) = 1, D3 = 3 - 4 (1/3) 0 = 3: valid
    assert np.allclose(kenlm_discounts(np.array([1, 2, 3])), (1 / 3, 1.0, 3.0))


def test_stupid_backoff_by_hand():
    m = NGramModel(order=2, smoothing="stupid-backoff").fit(["ab", "a"])
    # "ba": P(b|<s>) unseen -> 0.4 * S(b), S(b) = (1+1)/(5+4); S(a|b) unseen -> 0.4 (3/9); S(</s>|a) = 1/2
    assert lp(m, "ba") == pytest.approx(math.log(0.4 * 2 / 9 * 0.4 * 3 / 9 * 0.5))


# --- laws ---------------------------------------------------------------------------------------------------

corpora = st.lists(st.text(alphabet="abcd", max_size=8), min_size=1, max_size=12)


def _states(model, rng, n=10):
    """States after random prefixes (seen and unseen contexts, <unk> included)."""
    V = len(model.vocab_)
    choices = np.array([i for i in range(V) if i not in (Vocabulary.bos_id, Vocabulary.eos_id)])
    state = model.initial_state(n)
    out = [state]
    for _ in range(4):
        state = model.advance(state, rng.choice(choices, size=n))
        out.append(state)
    return out


@settings(max_examples=25, deadline=None)
@given(corpus=corpora, order=st.integers(1, 4), smoothing=st.sampled_from(ALL), seed=st.integers(0, 99))
def test_rows_sum_to_one_and_vectorised_equals_stepped(corpus, order, smoothing, seed):
    m = NGramModel(order=order, smoothing=smoothing, k=0.5).fit(corpus)
    rng = np.random.default_rng(seed)
    for state in _states(m, rng):
        rows = m.next_logprobs(state)
        assert rows.shape == (len(state), len(m.vocab_))
        assert np.all(rows[:, Vocabulary.bos_id] == -np.inf)
        if smoothing != "stupid-backoff":
            assert np.allclose(np.exp(rows).sum(axis=1), 1.0, atol=1e-9)
    seqs = [m.vocab_.encode(list(t)) for t in corpus + ["dcba", "zz"]]
    fast = m.token_logprobs(seqs)
    slow = super(NGramModel, m).token_logprobs(seqs)
    for a, b in zip(fast, slow):
        assert np.allclose(a, b, equal_nan=False) or np.array_equal(a, b)


@settings(max_examples=25, deadline=None)
@given(corpus=st.lists(st.text(alphabet="abcdefg", min_size=1, max_size=12), min_size=3, max_size=30),
       order=st.integers(1, 4))
def test_kneser_ney_discounts_lie_in_their_ranges(corpus, order):
    mkn = NGramModel(order=order).fit(corpus)
    for d in mkn.discounts_:
        assert 0 <= d[0] <= 1 and 0 <= d[1] <= 2 and 0 <= d[2] <= 3
    kn = NGramModel(order=order, smoothing="kneser-ney").fit(corpus)
    assert all(0 < d <= 1 for d in kn.discounts_)  # n1 / (n1 + 2 n2) is 1 when n2 = 0


@settings(max_examples=15, deadline=None)
@given(corpus=corpora, smoothing=st.sampled_from(NORMALISED))
def test_cutoffs_keep_rows_normalised(corpus, smoothing):
    m = NGramModel(order=3, smoothing=smoothing, cutoffs=[1, 2, 2]).fit(corpus)
    full = NGramModel(order=3, smoothing=smoothing).fit(corpus)
    assert m.num_ngrams()[1] <= full.num_ngrams()[1]
    for state in _states(m, np.random.default_rng(0)):
        assert np.allclose(np.exp(m.next_logprobs(state)).sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("smoothing", ALL)
def test_unseen_words_have_finite_scores_except_under_mle(smoothing):
    m = NGramModel(order=3, smoothing=smoothing).fit(["the cat", "a dog"])
    value = m.score(["zebra qq"]).perplexity
    assert (value == math.inf) if smoothing == "mle" else math.isfinite(value)


def test_bad_settings_raise_errors_naming_them():
    for kwargs, word in [({"order": 0}, "order"), ({"smoothing": "foo"}, "smoothing"),
                         ({"k": 0, "smoothing": "add-k"}, "k"), ({"cutoffs": [2, 2, 2]}, "cutoffs"),
                         ({"discount": (1, 2)}, "discounts")]:
        with pytest.raises(ScratchgenError, match=word):
            NGramModel(**kwargs).fit(["ab"])
    with pytest.raises(CorpusError):
        NGramModel().fit([])
    with pytest.raises(CorpusError):
        NGramModel().fit([["a", 3]])


# --- generation, Chinese, words, files ------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", ALL)
def test_the_shared_decoder_samples_every_smoothing(smoothing):
    m = NGramModel(order=3, smoothing=smoothing).fit(["我爱北京天安门", "北京的猫", "猫爱鱼"])
    a = m.generate(n=3, seed=5, max_tokens=20, top_k=3, temperature=0.8)
    assert a == m.generate(n=3, seed=5, max_tokens=20, top_k=3, temperature=0.8)
    assert all(t in m.vocab_ for s in a for t in s)
    assert m.generate(n=1, prompt=["北"], seed=0, max_tokens=5)[0][0] == "北"


def test_word_level_save_and_load(tmp_path):
    m = NGramModel(order=3, tokenizer=Tokenizer("word")).fit(["The cat sat.", "The dog sat on the cat."])
    m.save(tmp_path / "m.npz")
    back = load(tmp_path / "m.npz")
    assert back.get_params() == m.get_params() and back.tokenizer == m.tokenizer
    assert back.logprob("The cat sat on the dog.") == m.logprob("The cat sat on the dog.")


# --- ARPA ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token,spelled", [(" ", "\u2581"), ("\t", "\u2409"), ("\n", "\u240a"), ("\r", "\u240d"),
                                           ("\0", "\u2400"), ("\\", "\\"), ("\u3000", "\u3000"), ("é", "é")])
def test_character_tokens_are_spelled_raw_or_by_their_stand_in(token, spelled):
    # Only the five characters KenLM splits at get a stand-in; a backslash or U+3000 is written as it is.
    assert escape_token(token) == spelled
    assert unescape_token(spelled) == token


@pytest.mark.parametrize("smoothing", ALL)
def test_arpa_round_trip_scores_the_same(smoothing, tmp_path):
    texts = ["a b\tc", "b  a", "\\s c"]  # character level: spaces, a tab and a backslash are tokens
    m = NGramModel(order=3, smoothing=smoothing).fit(texts)
    m.to_arpa(tmp_path / "m.arpa")
    back = NGramModel.from_arpa(tmp_path / "m.arpa")
    assert back.vocab_.tokens[:3] == m.vocab_.tokens[:3] and set(back.vocab_.tokens) == set(m.vocab_.tokens)
    for text in texts + ["zz b", ""]:
        assert back.logprob(text) == pytest.approx(m.logprob(text), rel=1e-12, abs=1e-12)
    back.save(tmp_path / "b.npz")
    assert load(tmp_path / "b.npz").logprob("a b") == back.logprob("a b")


MALFORMED = [
    ("ngram 1=1\n", 1, "starts with"),
    ("\\data\\\nngram 1=x\n", 2, "ngram N=COUNT"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n", 6, "declares 2"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\nfoo\t</s>\n", 6, "not a number"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n0.5\t</s>\n", 6, "not <= 0"),
    ("\\data\\\nngram 1=2\nngram 2=1\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n\n\\2-grams:\n-1\t<s> x\n", 10, "not among"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n", 7, "\\\\end"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n-1\t<s>\n\\end\\\n", 6, "twice"),
]


@pytest.mark.parametrize("text,line,problem", MALFORMED)
def test_malformed_arpa_names_line_and_problem(text, line, problem, tmp_path):
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(ArpaError, match=rf"line {line}: .*{problem}"):
        read_arpa(path)


# --- exactness against KenLM ------------------------------------------------------------------------------------

needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data/kenlm is not beside the checkout")
REFERENCES = [("names_chars.txt", "names_chars_o5.arpa", 5),
              ("shakespeare10k_words.txt", "shakespeare10k_words_o3.arpa", 3)]


def _read_lines(name):
    return [line.split() for line in (DATA / name).read_text(encoding="utf-8").split("\n") if line.strip()]


@needs_data
@pytest.mark.parametrize("text,arpa,order", REFERENCES)
def test_modified_kneser_ney_equals_lmplz(text, arpa, order):
    model = NGramModel(order=order).fit(_read_lines(text))
    tokens, rows, logp10, bow10 = read_arpa(DATA / arpa)
    ours_index = {t: i for i, t in enumerate(model.vocab_.tokens)}
    remap = np.array([ours_index[t] for t in tokens])
    for n in range(1, order + 1):
        stored = {tuple(r): i for i, r in enumerate(model.ngrams(n).tolist())}
        assert len(stored) == len(rows[n - 1]) or n == 1  # the same n-grams, no more, no fewer
        at = np.array([stored[tuple(r)] for r in remap[rows[n - 1]].tolist()])
        ours_p = model.logp_[n - 1][at] / np.log(10)
        keep = remap[rows[n - 1][:, -1]] != Vocabulary.bos_id  # <s> is never predicted (lmplz writes 0)
        assert np.max(np.abs(ours_p[keep] - logp10[n - 1][keep])) < 1e-5
        if n < order:
            assert np.max(np.abs(model.bow_[n - 1][at] / np.log(10) - bow10[n - 1])) < 1e-5


@needs_data
@pytest.mark.parametrize("text,arpa,order", REFERENCES)
def test_perplexity_equals_kenlm(text, arpa, order):
    lines = _read_lines(text)
    test = lines[::7] + [["zz", "unseen", "the"], ["a"]]
    fitted = NGramModel(order=order).fit(lines).score(test).perplexity
    loaded = NGramModel.from_arpa(DATA / arpa).score(test).perplexity
    assert fitted == pytest.approx(loaded, rel=1e-6)
    kenlm = pytest.importorskip("kenlm")
    k = kenlm.Model(str(DATA / arpa))
    total = sum(k.score(" ".join(s), bos=True, eos=True) for s in test) * math.log(10)
    expected = math.exp(-total / sum(len(s) + 1 for s in test))
    assert loaded == pytest.approx(expected, rel=1e-6)
    assert fitted == pytest.approx(expected, rel=1e-6)


def test_written_arpa_loads_in_kenlm_and_scores_the_same(tmp_path):
    kenlm = pytest.importorskip("kenlm")
    texts = ["the cat sat on the mat", "the dog sat", "a cat and a dog"]
    for smoothing in ALL:
        m = NGramModel(order=3, smoothing=smoothing, tokenizer=Tokenizer("word")).fit(texts)
        m.to_arpa(tmp_path / "m.arpa")
        k = kenlm.Model(str(tmp_path / "m.arpa"))
        for text in ["the cat sat", "a dog sat on the cat", "zebra the"]:
            theirs, ours = k.score(text, bos=True, eos=True) * math.log(10), m.logprob(text)
            if ours == -math.inf:  # MLE's probability 0 is written as log10 = -99, which KenLM takes literally
                assert smoothing == "mle" and theirs <= -99 * math.log(10)
            else:
                assert theirs == pytest.approx(ours, rel=1e-6)  # KenLM keeps float32


# --- command line -----------------------------------------------------------------------------------------------


def test_cli_train_export_read_back(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat\nthe dog sat\n", encoding="utf-8")
    model, arpa, back = tmp_path / "m.npz", tmp_path / "m.arpa", tmp_path / "b.npz"
    assert main(["train", "ngram", "--order", "2", "--smoothing", "add-k", "--k", "0.5", "--level", "word",
                 str(corpus), "-o", str(model)]) == 0
    assert main(["export-arpa", str(model), str(arpa)]) == 0
    assert main(["train", "ngram", "--from-arpa", str(arpa), "--level", "word", "-o", str(back)]) == 0
    assert load(back).logprob("the cat sat") == pytest.approx(load(model).logprob("the cat sat"))
    assert main(["score", str(back), str(corpus), "--json"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # a usage error, in argparse's words and code
        main(["train", "ngram", "--order", "2", str(corpus), "-o", str(model), "--cutoffs", "2", "2"])
    assert exit_.value.code == 2 and "--cutoffs" in capsys.readouterr().err


def test_ngram_logprobs_follow_the_backoff_rule_and_agree_with_scoring():
    m = NGramModel(order=3, smoothing="witten-bell").fit(["abcab", "bca", "cc"])
    V = len(m.vocab_)
    rows = np.array([[a, b, c] for a in range(V) for b in range(V) for c in range(V)
                     if Vocabulary.bos_id not in (b, c) and Vocabulary.eos_id not in (a, b)])
    states = np.where(rows[:, :2] >= 0, rows[:, :2], -1)
    expected = m.next_logprobs(states)[np.arange(len(rows)), rows[:, 2]]
    assert np.allclose(m.ngram_logprobs(rows), expected)


def test_arpa_file_without_a_context_scores_by_the_backoff_rule(tmp_path):
    # The bigram "a b" is stored but its context "a" only as a unigram, and the trigram "<s> a b" lacks the
    # bigram "<s> a": it is inserted with P(a | <s>) = b(<s>) P(a) = 10^-0.5 * 10^-0.6 and weight 1.
    text = ("\\data\\\nngram 1=4\nngram 2=1\nngram 3=1\n\n\\1-grams:\n-0.6\ta\t-0.2\n-0.4\tb\t0\n0\t<s>\t-0.5\n"
            "-0.5\t</s>\t0\n\n\\2-grams:\n-0.1\ta b\t-0.3\n\n\\3-grams:\n-0.05\t<s> a b\n\n\\end\\\n")
    path = tmp_path / "pruned.arpa"
    path.write_text(text)
    m = NGramModel.from_arpa(path)
    # log10 P(a b </s>) = P(a|<s>) = -0.5 - 0.6; P(b|<s> a) = -0.05; P(</s>|a b): "a b </s>" no, b(a b) = -0.3,
    # "b </s>" no, b(b) = 0, P(</s>) = -0.5
    assert m.logprob(["a", "b"]) == pytest.approx((-1.1 - 0.05 - 0.3 - 0.5) * math.log(10))


def test_arpa_ngram_listed_twice_is_named(tmp_path):
    path = tmp_path / "twice.arpa"
    path.write_text("\\data\\\nngram 1=3\nngram 2=2\n\n\\1-grams:\n-1\t<s>\t0\n-1\t</s>\n-1\ta\t0\n\n\\2-grams:\n"
                    "-1\ta </s>\n-1\ta </s>\n\n\\end\\\n")
    with pytest.raises(ArpaError, match="'a </s>' is listed twice"):
        NGramModel.from_arpa(path)


@needs_data
def test_a_kenlm_model_steps_as_it_scores_and_guesses_its_tokenizer():
    model = NGramModel.from_arpa(DATA / "names_chars_o5.arpa")
    assert model.tokenizer_.level == "char"  # every word of the file is one letter
    assert NGramModel.from_arpa(DATA / "shakespeare10k_words_o3.arpa").tokenizer_.level == "word"
    seqs = [model.vocab_.encode(list(name)) for name in ["emma", "zzyzx", "", "olivia", "q"]]
    fast = model.token_logprobs(seqs)
    slow = super(NGramModel, model).token_logprobs(seqs)
    for a, b in zip(fast, slow):
        assert np.allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_fitting_a_million_tokens_stays_small():
    import tracemalloc

    path = DATA.parent / "tinyshakespeare.txt"
    if not path.exists():
        pytest.skip("../shared/data is not beside the checkout")
    corpus = [list(line) for line in path.read_text(encoding="utf-8").split("\n") if line]
    assert sum(map(len, corpus)) > 1_000_000
    tracemalloc.start()
    model = NGramModel(order=5).fit(corpus)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**30  # under 1 GiB
    assert model.nbytes() / sum(model.num_ngrams()) <= 32  # bytes per stored n-gram


@pytest.mark.parametrize("distinct, key_range", [(70_000, 200_000), (70_000, 2**40), (5_000, 3_000_000)])
def test_unique_inverse_first_on_many_elements_is_numpys_unique(distinct, key_range):
    # Over 2^18 elements (the block loops run more than once); the first case numbers by a dense table whose
    # ranks outgrow uint16, the second sorts packed integers, the third (a range over 4 per element and over
    # _DENSE_LIMIT) sorts too. Reference: np.unique with its inverse and counts, the left-out value dropped.
    rng = np.random.default_rng(7)
    values = rng.choice(key_range, size=distinct, replace=False)
    key = rng.choice(values, size=600_000)
    key[rng.random(len(key)) < 0.1] = key_range  # left out
    uniq, inverse, _, times = _unique_inverse_first(key, key_range, lead=1)
    ref_uniq, ref_inverse, ref_times = np.unique(key, return_inverse=True, return_counts=True)
    keep = ref_uniq != key_range
    ref_index = np.where(keep, np.cumsum(keep) - 1, -1)[ref_inverse.reshape(-1)]
    assert np.array_equal(uniq, ref_uniq[keep]) and np.array_equal(times, ref_times[keep])
    assert inverse is not None and inverse[0] == -1 and np.array_equal(inverse[1:], ref_index)
