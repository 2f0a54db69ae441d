"""The decoder: every control, greedy decoding and beam search, on a model with a known table."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markov import MarkovModel, chi2_critical, chi2_statistic

from scratchgen import CorpusError, DecodingError, UnigramModel, beam_search, generate
from scratchgen.decoding import filter_logits
from scratchgen.text import Vocabulary

EOS = Vocabulary.eos_id


def chain(seed=0, **kw):
    return MarkovModel.random(np.random.default_rng(seed), **kw)


def seq_logprob(model, tokens, ended=True):
    ids = [Vocabulary.bos_id] + list(model.vocab_.encode(tokens)) + ([EOS] if ended else [])
    return float(sum(np.log(model.table_[a, b]) for a, b in zip(ids, ids[1:])))


def test_sample_frequencies_match_the_model():
    """Temperature 1, no filters: whole short sequences drawn as often as the chain says (chi-square)."""
    model = chain(1, n_tokens=3, eos_weight=1.5)
    n = 20000
    samples = generate(model, n, seed=2024, max_tokens=3)
    counts: dict[tuple, int] = {}
    for s in samples:
        counts[tuple(s)] = counts.get(tuple(s), 0) + 1
    # Every sequence of up to 2 letters ends with </s>; 3-letter ones are cut by max_tokens.
    outcomes = [()] + [p for k in (1, 2) for p in itertools.product("abc", repeat=k)]
    probs = [np.exp(seq_logprob(model, list(o))) for o in outcomes]
    cut = 1 - sum(probs)  # mass of the sequences that reach 3 letters
    observed = np.array([counts.get(o, 0) for o in outcomes] + [sum(c for o, c in counts.items() if len(o) == 3)])
    expected = np.array(probs + [cut])
    assert observed.sum() == n
    assert chi2_statistic(observed, expected) < chi2_critical(len(expected) - 1)


def test_temperature_zero_is_greedy():
    model = chain(3)
    out, lp = generate(model, 2, temperature=0, max_tokens=10, return_logprobs=True)
    state, expected = Vocabulary.bos_id, []
    for _ in range(10):
        nxt = int(np.argmax(model.table_[state]))
        if nxt == EOS:
            break
        expected.append(nxt)
        state = nxt
    assert out == [model.vocab_.decode(expected)] * 2
    assert lp[0] == pytest.approx(seq_logprob(model, out[0], ended=len(expected) < 10))


@given(seed=st.integers(0, 10_000), k=st.integers(1, 5))
@settings(max_examples=30, deadline=None)
def test_top_k_never_emits_outside_the_k_most_probable(seed, k):
    model = chain(seed, n_tokens=6)
    for s in generate(model, 20, seed=seed, top_k=k, max_tokens=8):
        prev = Vocabulary.bos_id
        for tok in model.vocab_.encode(s) :
            row = model.table_[prev]
            assert row[tok] >= np.sort(row)[-k], (s, k)
            prev = tok


@given(probs=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12).filter(lambda p: sum(p) > 0.01),
       p=st.floats(0.01, 1.0))
@settings(max_examples=200, deadline=None)
def test_top_p_keeps_the_smallest_set_whose_mass_reaches_p(probs, p):
    probs = np.array(probs) / sum(probs)
    with np.errstate(divide="ignore"):
        logits = np.log(probs)[None, :]
    kept = np.isfinite(filter_logits(logits.copy(), None, p)[0])
    mass = probs[kept].sum()
    assert mass >= p - 1e-9  # the kept set reaches p ...
    smallest_kept = probs[kept].min()
    assert mass - smallest_kept < p + 1e-9  # ... and without its least probable member it would not
    # the most probable tokens are the ones kept (up to rounding: log and exp may swap near-ties)
    assert probs[~kept].max(initial=0) <= smallest_kept * (1 + 1e-12)


def test_top_p_sampling_stays_in_the_nucleus():
    model = chain(5, n_tokens=6)
    for s in generate(model, 30, seed=1, top_p=0.5, max_tokens=8):
        prev = Vocabulary.bos_id
        for tok in model.vocab_.encode(s):
            with np.errstate(divide="ignore"):
                logits = np.log(model.table_[prev])[None, :]
            assert np.isfinite(filter_logits(logits, None, 0.5)[0, tok])
            prev = tok


def test_banned_tokens_never_appear():
    model = chain(7, n_tokens=4, eos_weight=0.05)
    samples = generate(model, 200, seed=3, banned=["a", "c"], max_tokens=15)
    assert not any(t in ("a", "c") for s in samples for t in s)
    assert any(len(s) for s in samples)


def test_min_tokens_stop_tokens_and_max_tokens():
    model = chain(8, n_tokens=4, eos_weight=5.0)  # </s> very likely: sequences would be short
    samples = generate(model, 100, seed=1, min_tokens=4, max_tokens=6)
    assert all(4 <= len(s) <= 6 for s in samples)
    stopped = generate(chain(8, eos_weight=0.0), 100, seed=1, stop=["b"], max_tokens=30)
    assert all("b" not in s[:-1] for s in stopped)  # a stop token ends the sequence and stays at its end
    assert any(s and s[-1] == "b" for s in stopped)


def test_repetition_penalty_discourages_repeats():
    model = chain(9, n_tokens=5, eos_weight=0.0)
    plain = generate(model, 200, seed=4, max_tokens=5)
    penalised = generate(model, 200, seed=4, max_tokens=5, repetition_penalty=1e9)
    def repeats(samples):
        return sum(len(s) - len(set(s)) for s in samples)

    assert repeats(plain) > 0
    assert repeats(penalised) == 0  # 5 letters, 5 tokens: with a huge penalty no letter comes twice


def test_prompt_conditions_the_sequence():
    model = chain(10)
    out = generate(model, 50, prompt=["b", "a"], seed=0, max_tokens=1)
    assert all(s[:2] == ["b", "a"] for s in out)
    # the first generated token follows 'a': its frequency matches row a of the table
    nxt = [model.vocab_.index(s[2]) if len(s) > 2 else EOS for s in out]
    assert all(model.table_[model.vocab_.index("a"), i] > 0 for i in nxt)


def test_prompt_out_of_vocabulary_names_the_token():
    model = chain(11)
    with pytest.raises(DecodingError, match="'z'"):
        generate(model, 1, prompt=["a", "z"])
    # this chain never emits <unk>, so a prompt mapped to it has probability 0 ...
    with pytest.raises(DecodingError, match="probability 0"):
        generate(model, 1, prompt=["a", "z"], prompt_oov="unk")
    # ... while add-k smoothing gives <unk> some mass
    out = generate(UnigramModel().fit(["ab"]), 1, prompt=["a", "z"], prompt_oov="unk", max_tokens=2, seed=0)
    assert out[0][:2] == ["a", "<unk>"]
    with pytest.raises(CorpusError, match="</s>"):  # the one token rule, as for any sequence
        generate(model, 1, prompt=["a", "</s>"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": -1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"min_tokens": 5, "max_tokens": 3}, "min_tokens"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"banned": ["zz"]}, "'zz'"),
        ({"seed": -3}, "seed"),
        ({"seed": "abc"}, "seed"),
        ({"banned": ["a", "b", "c", "d", "</s>", "<unk>"]}, "banned"),
    ],
)
def test_bad_settings_are_decoding_errors(kwargs, match):
    with pytest.raises(DecodingError, match=match):
        generate(chain(0), 2, max_tokens=kwargs.pop("max_tokens", 5), **kwargs)


def test_beam_width_one_is_greedy():
    for seed in range(20):
        model = chain(seed, n_tokens=5, sharp=2.0)
        greedy, glp = generate(model, 1, temperature=0, max_tokens=12, return_logprobs=True)
        (tokens, lp), = beam_search(model, width=1, max_tokens=12)
        assert tokens == greedy[0]
        assert lp == pytest.approx(glp[0])


@given(seed=st.integers(0, 100_000), width=st.integers(1, 6), max_tokens=st.integers(1, 10))
@settings(max_examples=60, deadline=None)
def test_beam_search_is_never_less_probable_than_greedy(seed, width, max_tokens):
    model = chain(seed, n_tokens=4, sharp=2.0, eos_weight=0.2)
    _, glp = generate(model, 1, temperature=0, max_tokens=max_tokens, return_logprobs=True)
    results = beam_search(model, width=width, max_tokens=max_tokens, n=width)
    (best, lp) = results[0]
    assert lp >= glp[0] - 1e-12
    # each returned log-probability is the model's own
    for tokens, l in results:
        ended = len(tokens) < max_tokens or l == pytest.approx(seq_logprob(model, tokens, True))
        assert l == pytest.approx(seq_logprob(model, tokens, ended=ended))
    assert [l for _, l in results] == sorted([l for _, l in results], reverse=True)


def test_beam_search_finds_the_most_probable_sequence_when_wide_enough():
    model = chain(42, n_tokens=3, eos_weight=0.5)
    # Brute force over all sequences of up to 4 letters that end with </s>.
    best = max((list(p) for k in range(5) for p in itertools.product("abc", repeat=k)),
               key=lambda s: seq_logprob(model, s))
    tokens, lp = beam_search(model, width=40, max_tokens=5)[0]
    assert tokens == best and lp == pytest.approx(seq_logprob(model, best))


def test_beam_search_with_prompt_and_length_penalty():
    model = chain(13)
    results = beam_search(model, width=3, prompt=["a"], max_tokens=6, length_penalty=1.0, n=2)
    assert len(results) == 2 and all(t[0] == "a" for t, _ in results)
    with pytest.raises(DecodingError, match="width"):
        beam_search(model, width=0)
    with pytest.raises(DecodingError, match="n must"):
        beam_search(model, width=2, n=3)


def test_generate_draws_with_a_generator_and_advances_it():
    model = UnigramModel().fit(["abcabc"])
    rng = np.random.default_rng(0)
    first, second = generate(model, 3, seed=rng), generate(model, 3, seed=rng)
    assert first != second  # the generator moved on
    assert first == generate(model, 3, seed=np.random.default_rng(0))


def test_a_prompt_of_probability_zero_is_refused():
    from scratchgen import GrammarModel

    grammar = GrammarModel.from_grammar("builtin:english")
    with pytest.raises(DecodingError, match="probability 0"):
        generate(grammar, 2, prompt=["dog", "the"])
    with pytest.raises(DecodingError, match="probability 0"):
        beam_search(grammar, width=2, prompt=["dog", "the"])
    assert all(s[:2] == ["the", "dog"] for s in generate(grammar, 3, prompt=["the", "dog"], seed=0))


class PublicOnly:
    """A model seen only through its public protocol: any private attribute is refused."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(f"the decoder read the private attribute {name!r}")
        return getattr(self._model, name)


def test_the_decoder_uses_only_the_public_protocol():
    """Tokenization (``tokenize``) and the vocabulary (``fitted_vocab``) are public: the decoder needs no
    private method, so a model written outside scratchgen can be decoded (issue 10)."""
    model = UnigramModel().fit(["abc", "abd", "ba"])
    public = PublicOnly(model)
    kw = {"prompt": "ab", "seed": 3, "max_tokens": 6, "top_p": 0.9, "repetition_penalty": 1.5, "stop": ["d"]}
    assert generate(public, 5, **kw) == generate(model, 5, **kw)
    assert beam_search(public, width=3, prompt="a", max_tokens=4, n=2) == \
        beam_search(model, width=3, prompt="a", max_tokens=4, n=2)


def test_tokenize_and_fitted_vocab_are_the_public_protocol():
    from scratchgen import NotFittedError

    model = UnigramModel()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.fitted_vocab()
    assert model.tokenize("héllo") == ["h", "é", "l", "l", "o"]
    assert model.tokenize(["<unk>", "b"]) == ["<unk>", "b"]  # a token list is kept, <unk> allowed
    with pytest.raises(CorpusError, match="<s>"):
        model.tokenize(["a", "<s>"])  # the one token rule
    model.fit(["ab"])
    assert model.fitted_vocab() is model.vocab_


def test_a_step_with_nothing_left_names_what_the_model_allowed_there():
    """Found by the slow fuzz test: a grammar in which <unk> (an ordinary terminal there) is the only way on
    could not be sampled with the defaults (which never emit <unk>), and the error did not say why."""
    from scratchgen import GrammarModel

    model = GrammarModel.from_grammar("S -> 'a' '<unk>' [0.5] | 'b' [0.5]")
    with pytest.raises(DecodingError, match=r"allows only '<unk>', and it is banned or excluded \(allow_unk=True"):
        generate(model, 20, seed=0)
    samples = generate(model, 20, seed=0, allow_unk=True)
    assert sorted({tuple(s) for s in samples}) == [("a", "<unk>"), ("b",)]
    with pytest.raises(DecodingError, match=r"allows only 'a', 'b', and they are banned or excluded$"):
        generate(model, 2, seed=0, banned=["a", "b"])
