"""The fast scoring path of the n-gram model equals its plain forms, to the last bit.

- :mod:`scratchgen.ngram.lookup`: the direct table and the hash table find exactly what the binary search over
  the sorted keys finds (counting.py's ``_find``), on random key sets and queries (absent contexts, absent words,
  crowded hash tables);
- ``sequence_sums`` equals ``values[a:a + n].sum()`` of every sequence, bit for bit, at every length;
- ``NGramModel.token_logprobs`` (every position at once, with each kind of table) equals
  :func:`scratchgen.ngram.scoring_reference.token_logprobs_reference` (one token at a time, dicts) on random
  models and sentences, with unknown words and sentences shorter than the order;
- ``_score_encoded`` (what ``scratchgen score`` runs on a file read into ids) equals ``score`` of the texts.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.corpus import EncodedCorpus
from scratchgen.ngram import NGramModel, lookup
from scratchgen.ngram import model as ngram_model
from scratchgen.ngram.counting import _find
from scratchgen.ngram.model import sequence_sums
from scratchgen.ngram.scoring_reference import token_logprobs_reference
from scratchgen.ngram.smoothing import SMOOTHINGS


@st.composite
def key_sets(draw):
    """(sorted unique keys, contexts, V, query contexts, query words): keys i(h) V + w, queries half of them."""
    V = draw(st.integers(1, 40))
    contexts = draw(st.integers(1, 60))
    cells = st.integers(0, contexts * V - 1)
    keys = np.unique(np.array(draw(st.lists(cells, max_size=300)), dtype=np.int64))
    P = draw(st.integers(0, 200))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ctx = rng.integers(-1, contexts, size=P)
    words = rng.integers(0, V, size=P)
    if len(keys) and P:  # half the queries stored n-grams
        pick = rng.integers(0, len(keys), size=P // 2)
        ctx[: P // 2], words[: P // 2] = keys[pick] // V, keys[pick] % V
    return keys, contexts, V, ctx.astype(np.int64), words.astype(np.int64)


@settings(max_examples=200, deadline=None)
@given(key_sets(), st.sampled_from([0.25, 0.9, 1.0]))
def test_every_table_finds_what_the_binary_search_finds(case, load):
    keys, contexts, V, ctx, words = case
    expected = _find(keys, ctx, words, V)
    saved = lookup.LOAD
    lookup.LOAD = load  # 0.9 and 1.0: long runs of taken slots
    try:
        tables = [lookup._Direct(keys, contexts, V), lookup._Hash(keys, V), lookup._Sorted(keys, V)]
    finally:
        lookup.LOAD = saved
    for table in tables:
        np.testing.assert_array_equal(table.find(ctx.copy(), words), expected, err_msg=table.kind)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(8, 400))
def test_hash_of_keys_too_long_to_pack_with_their_index(seed, U):
    """Keys near 2^60 leave no room for the index beside them: two arrays a slot, the same answers."""
    rng = np.random.default_rng(seed)
    V, contexts = 1 << 40, 1 << 20
    keys = np.unique(np.append(rng.integers(0, contexts * V, size=U), contexts * V - 1))  # 60 bits + 3 or more
    table = lookup._Hash(keys, V)
    assert not table.packed
    ctx = np.concatenate([keys // V, rng.integers(-1, contexts, size=50)])
    words = np.concatenate([keys % V, rng.integers(0, V, size=50)])
    np.testing.assert_array_equal(table.find(ctx, words), _find(keys, ctx, words, V))


def test_child_table_picks_direct_when_small_and_hash_when_not():
    keys = np.array([0, 5, 17], dtype=np.int64)
    assert lookup.child_table(keys, 3, 10).kind == "direct"
    table = lookup.child_table(keys, 10**6, 10**4)  # 10^10 cells for 3 keys
    assert table.kind == "hash" and table.packed


def test_a_table_that_finds_a_wrong_index_is_caught():
    """The comparison can fail: a table built from other keys answers differently."""
    keys = np.array([1, 4, 9, 12], dtype=np.int64)
    other = np.array([1, 4, 10, 12], dtype=np.int64)
    ctx, words = np.array([2, 3]), np.array([1, 0])  # keys 9 and 12 with V = 4
    assert not np.array_equal(lookup._Hash(other, 4).find(ctx.copy(), words), _find(keys, ctx, words, 4))


@settings(max_examples=100, deadline=None)
@given(key_sets(), st.integers(0, 2**32 - 1))
def test_direct_find_next_finds_what_find_finds_after_each_context(case, seed):
    """The direct table's stream form (int32 cells, no context array) against ``find`` of the contexts built by
    hand: the previous position's index, none at position 0 and at each <s>."""
    keys, contexts, V, _, _ = case
    rng = np.random.default_rng(seed)
    P = int(rng.integers(0, 50))
    ids = rng.integers(0, V, size=P)
    previous = rng.integers(-1, contexts, size=P)
    starts = np.flatnonzero(rng.random(P) < 0.2)
    context = np.concatenate([[-1], previous[:-1]])[:P]
    context[starts] = -1
    table = lookup._Direct(keys, contexts, V)
    np.testing.assert_array_equal(table.find_next(previous, ids, starts), _find(keys, context, ids, V))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=12), st.integers(0, 2**32 - 1))
def test_sequence_sums_equal_numpy_sums_bit_for_bit(lengths, seed):
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths, dtype=np.int64)
    values = -rng.exponential(size=int(lengths.sum())) * 10.0 ** rng.uniform(-4, 4, size=int(lengths.sum()))
    if len(values) and seed % 3 == 0:
        values[rng.integers(0, len(values))] = -np.inf
    starts = np.cumsum(lengths) - lengths
    got = sequence_sums(values, starts, lengths)
    expected = np.array([values[a : a + n].sum() for a, n in zip(starts, lengths)])
    np.testing.assert_array_equal(got, expected)
    assert got.tobytes() == expected.tobytes()


def test_sequence_sums_differ_from_a_plain_running_sum():
    """Why the order matters: 8 or more terms summed left to right can round otherwise than np.sum."""
    rng = np.random.default_rng(1)
    values = -rng.exponential(size=1000) * 10.0 ** rng.uniform(-8, 8, size=1000)
    lengths = np.full(10, 100)
    starts = np.arange(10) * 100
    running = np.array([np.cumsum(values[a : a + 100])[-1] for a in starts])
    assert not np.array_equal(running, sequence_sums(values, starts, lengths))


ALPHABET = ("a", "b", "c", "d", "xy")


@st.composite
def models_and_sentences(draw):
    order = draw(st.integers(1, 5))
    smoothing = draw(st.sampled_from(SMOOTHINGS))
    sentence = st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=10)
    corpus = draw(st.lists(sentence, min_size=1, max_size=8))
    tests = draw(st.lists(st.lists(st.sampled_from(ALPHABET + ("zz",)), max_size=9), min_size=1, max_size=6))
    return order, smoothing, corpus, tests  # "zz" never in a corpus: an unknown word


def _fit(order, smoothing, corpus):
    try:
        return NGramModel(order=order, smoothing=smoothing).fit(corpus)
    except Exception:  # discounts that lmplz would refuse on a tiny corpus: another example
        return None


@settings(max_examples=120, deadline=None)
@given(models_and_sentences(), st.sampled_from(["direct", "hash", "sorted"]), st.sampled_from([0.0, 0.5, 2.0]))
def test_vectorised_scorer_equals_the_per_token_reference(case, kind, share):
    order, smoothing, corpus, tests = case
    model = _fit(order, smoothing, corpus)
    if model is None:
        return
    keys, V = model.keys_, len(model.vocab_)
    make = {
        "direct": lambda n: lookup._Direct(keys[n], len(keys[n - 1]), V),
        "hash": lambda n: lookup._Hash(keys[n], V),
        "sorted": lambda n: lookup._Sorted(keys[n], V),
    }[kind]
    model._child_cache = (keys, [None] + [make(n) for n in range(1, len(keys))])
    ids, _ = model.encode_corpus(tests + corpus)
    with walk_share(share):  # 0: always the top-down walk; 2: always bottom-up; 0.5: as scoring chooses
        got = model.token_logprobs(ids)
    expected = token_logprobs_reference(model, ids)
    for g, e in zip(got, expected):
        assert g.tobytes() == e.tobytes(), (g, e)


@contextlib.contextmanager
def walk_share(share):
    """``TOP_DOWN_SHARE`` (which walk the scorer takes) set inside the block."""
    saved = ngram_model.TOP_DOWN_SHARE
    ngram_model.TOP_DOWN_SHARE = share
    try:
        yield
    finally:
        ngram_model.TOP_DOWN_SHARE = saved


# Three words of which "a b c" is stored but its suffix "b c" is not: an ARPA file may say so (a fitted model
# never does), and the longest stored n-gram ending at "c" is then found by neither walk order's shortcut.
GAPPED_ARPA = """\\data\\
ngram 1=6
ngram 2=4
ngram 3=1

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t-0.3
-0.5\t</s>
-0.6\ta\t-0.2
-0.7\tb\t-0.25
-0.8\tc\t-0.1

\\2-grams:
-0.3\t<s> a\t-0.15
-0.4\ta b\t-0.05
-0.2\tc </s>
-0.35\tb a

\\3-grams:
-0.1\ta b c

\\end\\
"""


@pytest.mark.parametrize("share", [0.0, 2.0])
def test_both_walks_equal_the_reference_where_a_suffix_is_missing(tmp_path, share):
    path = tmp_path / "gapped.arpa"
    path.write_text(GAPPED_ARPA, encoding="utf-8")
    model = NGramModel.from_arpa(path)
    ids, _ = model.encode_corpus([["a", "b", "c"], ["b", "c"], ["a", "b", "a", "b", "c", "c"], ["c"]])
    with walk_share(share):
        got = model.token_logprobs(ids)
    expected = token_logprobs_reference(model, ids)
    for g, e in zip(got, expected):
        assert g.tobytes() == e.tobytes(), (g, e)
    # "a b c" after <s>: log p(a b c) itself, no backoff (natural logs: the file's log10 times ln 10)
    assert got[0][2] == pytest.approx(-0.1 * np.log(10))


def test_the_reference_comparison_can_fail():
    """A model whose stored log-probabilities were changed after the reference read them is caught."""
    model = NGramModel(order=3).fit(["abcab", "bca"])
    ids, _ = model.encode_corpus(["abcab"])
    expected = token_logprobs_reference(model, ids)
    model.logp_[2] = model.logp_[2] + 1e-12
    assert not all(g.tobytes() == e.tobytes() for g, e in zip(model.token_logprobs(ids), expected))


@settings(max_examples=60, deadline=None)
@given(models_and_sentences(), st.integers(1, 40))
def test_score_of_encoded_ids_equals_score_of_texts(case, chunk):
    order, smoothing, corpus, tests = case
    model = _fit(order, smoothing, corpus)
    if model is None:
        return
    sequences = tests + corpus  # empty sentences too
    ids, oov = model.encode_corpus(sequences)
    encoded = EncodedCorpus(np.concatenate(ids), np.array([len(s) for s in ids], dtype=np.int64), model.vocab_, oov)
    saved = ngram_model.STREAM_CHUNK
    ngram_model.STREAM_CHUNK = chunk  # many chunks, and sequences longer than one
    try:
        got = model._score_encoded(encoded)
    finally:
        ngram_model.STREAM_CHUNK = saved
    assert got == model.score(sequences)


def test_score_of_encoded_ids_refuses_lengths_that_do_not_add_up():
    model = NGramModel(order=2).fit(["abab"])
    encoded = EncodedCorpus(np.array([3, 4]), np.array([3]), model.vocab_, 0)
    with pytest.raises(ValueError, match="sum to 3 for 2 ids"):
        model._score_encoded(encoded)


def test_an_order_above_127_scores_as_the_reference():
    """The bottom-up walk holds L(p), the longest stored n-gram's length, in int16: an order of 128 or more (up
    to MAX_ORDER) does not overflow an int8 (it raised OverflowError)."""
    model = NGramModel(order=130, smoothing="witten-bell").fit(["a b c a b".split(), ["b", "c"]])
    ids, _ = model.encode_corpus([["a", "b", "x"], ["a", "b", "c", "a", "b"]])
    with walk_share(2.0):  # bottom-up
        got = model.token_logprobs(ids)
    for g, e in zip(got, token_logprobs_reference(model, ids)):
        assert g.tobytes() == e.tobytes(), (g, e)
