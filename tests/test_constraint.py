"""Any model held to a grammar (scratchgen.constraint): the mask, masked decoding, beam search, the CLI."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from grammar_language import chi2_critical, chi2_statistic, counts, language, masked_probs
from markov import MarkovModel

from scratchgen import DecodingError, NGramModel, Tokenizer, VocabularyError, beam_search, generate
from scratchgen.cli import main
from scratchgen.constraint import GrammarConstraint
from scratchgen.grammar import GrammarModel
from scratchgen.text import Vocabulary

GRAMMAR = """S -> 'a' [0.2] | 'a' 'b' 'c' [0.2] | 'b' 'a' [0.2] | 'b' 'b' 'b' [0.2] | 'c' A [0.2]
A -> 'a' [0.4] | 'b' 'c' [0.3] | '' [0.3]"""
LANGUAGE = language(GRAMMAR, 4)


@pytest.fixture(scope="module")
def chain():
    """A Markov chain over a, b, c, d: d is a token the grammar never uses."""
    return MarkovModel.random(np.random.default_rng(1), n_tokens=4)


@pytest.fixture(scope="module")
def english():
    """The built-in English grammar and a word trigram model of 300 of its sentences."""
    grammar = GrammarModel.from_grammar("builtin:english")
    model = NGramModel(order=3, tokenizer=Tokenizer(level="word")).fit(grammar.sample(300, seed=0))
    return grammar, model


def test_the_mask_allows_exactly_the_viable_extensions(chain):
    # Eq. (1) against the listed language: a is allowed after a prefix iff some sentence starts with
    # prefix + a, and </s> iff the prefix is a sentence. Every prefix of up to 3 tokens over a..d.
    constraint = GrammarConstraint(GRAMMAR, chain.vocab_)
    sentences = {tuple(x) for x in LANGUAGE}
    vocab = chain.vocab_
    for k in range(4):
        for prefix in itertools.product("abcd", repeat=k):
            if k and not any(s[:k] == prefix for s in sentences):
                continue  # the decoder never reaches a dead prefix
            state = constraint.initial_state(1)
            for token in vocab.encode(list(prefix)):
                state = constraint.advance(state, [token])
            mask = constraint.allowed(state)[0]
            for token_id, token in enumerate(vocab.tokens):
                if token == "</s>":
                    expected = prefix in sentences
                elif token in ("<s>", "<unk>"):
                    expected = False
                else:
                    expected = any(s[: k + 1] == prefix + (token,) for s in sentences)
                assert mask[token_id] == expected, (prefix, token)


def test_the_mask_of_a_batch_is_the_mask_of_each_row(chain):
    constraint = GrammarConstraint(GRAMMAR, chain.vocab_)
    a, b, c = (chain.vocab_.index(t) for t in "abc")
    batch = constraint.advance(constraint.initial_state(3), [a, b, c])
    rows = [constraint.allowed(constraint.advance(constraint.initial_state(1), [t]))[0] for t in (a, b, c)]
    assert np.array_equal(constraint.allowed(batch), np.stack(rows))
    assert np.array_equal(constraint.allowed(constraint.take_state(batch, np.array([2, 0]))), np.stack(rows)[[2, 0]])


def test_a_model_token_the_grammar_never_uses_is_masked_out(chain):
    samples = generate(chain, 300, grammar=GRAMMAR, seed=0)
    assert all("d" not in s for s in samples)
    assert {tuple(s) for s in samples} <= {tuple(x) for x in LANGUAGE}


def test_a_grammar_terminal_outside_the_model_vocabulary_is_named(chain):
    with pytest.raises(VocabularyError, match="grammar terminal 'e' is not in the model's vocabulary"):
        generate(chain, 1, grammar="S -> 'a' 'e' [1]")
    with pytest.raises(VocabularyError, match=r"'e' \(and 1 more\)"):
        GrammarConstraint("S -> 'e' 'f' [1]", chain.vocab_)


def test_a_char_level_model_cannot_say_the_words_of_a_word_grammar(english):
    grammar, _ = english
    chars = NGramModel(order=2).fit([" ".join(s) for s in grammar.sample(50, seed=1)])
    with pytest.raises(VocabularyError, match="grammar terminal '.*' .* is not in the model's vocabulary"):
        generate(chars, 1, grammar="builtin:english")


def test_a_prompt_the_grammar_cannot_continue_is_one_line(chain):
    with pytest.raises(DecodingError, match="the grammar cannot continue the prompt 'b c'") as info:
        generate(chain, 1, grammar=GRAMMAR, prompt=["b", "c"])
    assert "\n" not in str(info.value)
    assert all(s[:2] == ["b", "b"] for s in generate(chain, 5, grammar=GRAMMAR, prompt=["b", "b"], seed=0))


def test_masked_samples_follow_the_masked_distribution(chain):
    # Eq. (2) of scratchgen.constraint, computed by listing the language; the exact conditional differs
    # (tests/test_smc.py shows the masked sampler fails against it).
    q = masked_probs(chain, GRAMMAR, LANGUAGE)
    observed = counts(generate(chain, 3000, grammar=GRAMMAR, seed=2), LANGUAGE)
    assert chi2_statistic(observed, q) < chi2_critical(len(LANGUAGE) - 1)


CONTROLS = [
    {},
    {"temperature": 0.5},
    {"temperature": 0.0},
    {"top_k": 2},
    {"top_p": 0.5},
    {"repetition_penalty": 2.0},
    {"min_tokens": 5},
    {"max_tokens": 8},
    {"banned": ["the", "a"]},
    {"stop": ["."]},
    {"prompt": "the big dog"},
    {"allow_unk": True},
]


@pytest.mark.parametrize("controls", CONTROLS, ids=lambda c: ",".join(c) or "none")
def test_every_masked_sample_is_a_sentence_of_the_grammar(english, controls):
    grammar, model = english
    samples, logps = generate(model, 8, grammar="builtin:english", seed=3, return_logprobs=True, **controls)
    assert len(samples) == 8
    for sentence in samples:
        assert grammar.logprob(sentence) > -math.inf, sentence
        assert len(sentence) < controls.get("max_tokens", 200) + len(model.tokenize(controls.get("prompt", "")))
        for token in controls.get("banned", ()):
            assert token not in sentence
        if "min_tokens" in controls:
            assert len(sentence) >= 5
    if "prompt" not in controls and "stop" not in controls:  # the log-probabilities are the model's own
        assert logps == pytest.approx([model.logprob(s) for s in samples])


def test_beam_search_returns_sentences_of_the_grammar_ranked_by_the_model(english):
    grammar, model = english
    results = beam_search(model, width=4, n=3, grammar="builtin:english", max_tokens=20)
    assert len(results) == 3
    for sentence, logp in results:
        assert grammar.logprob(sentence) > -math.inf
        assert logp == pytest.approx(model.logprob(sentence))
    assert [lp for _, lp in results] == sorted((lp for _, lp in results), reverse=True)
    prompted = beam_search(model, width=3, grammar="builtin:english", prompt="some", max_tokens=20)
    assert prompted[0][0][0] == "some" and grammar.logprob(prompted[0][0]) > -math.inf


def test_beam_search_finds_the_most_probable_sentence_of_a_small_language(chain):
    from grammar_language import model_probs

    best = LANGUAGE[int(np.argmax(model_probs(chain, LANGUAGE)))]
    assert beam_search(chain, width=8, grammar=GRAMMAR, max_tokens=6)[0][0] == best


def test_a_sample_cut_at_max_tokens_is_redrawn(chain):
    # max_tokens=2: a sentence of at most 1 token then </s>: only "a" and "c" fit.
    samples = generate(chain, 50, grammar=GRAMMAR, max_tokens=2, seed=4)
    assert {tuple(s) for s in samples} <= {("a",), ("c",)}
    with pytest.raises(DecodingError, match="raise max_tokens"):
        generate(chain, 2, grammar="S -> 'a' 'b' [1]", max_tokens=1, seed=0)
    with pytest.raises(DecodingError, match="no sentence of the grammar within max_tokens=2"):
        beam_search(chain, width=2, grammar="S -> 'a' 'b' 'c' [1]", max_tokens=2)


def test_a_stop_token_only_ends_a_complete_sentence(chain):
    # A stop token ends its sequence, so it may appear only where it completes a sentence: "c" (A -> '')
    # and "a b c" end at their c, but "c a" and "c b c" would need to go on after one.
    samples = {tuple(s) for s in generate(chain, 300, grammar=GRAMMAR, stop=["c"], seed=5)}
    assert samples <= {("a",), ("c",), ("b", "a"), ("a", "b", "c"), ("b", "b", "b")}
    assert {("c",), ("a", "b", "c")} <= samples


def test_a_constraint_for_another_vocabulary_is_refused(chain):
    other = GrammarConstraint(GRAMMAR, Vocabulary(["a", "b", "c"]))
    with pytest.raises(VocabularyError, match="another model's vocabulary"):
        generate(chain, 1, grammar=other)


# --- the command line: one test per option ---------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory, english):
    path = tmp_path_factory.mktemp("constraint") / "en3.npz"
    english[1].save(path)
    return path


def run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_grammar(saved, english, tmp_path, capsys):
    grammar_file = tmp_path / "tiny.cfg"
    grammar_file.write_text("S -> NP 'sleeps' '.' [1]\nNP -> 'the' 'dog' [0.5] | 'a' 'cat' [0.5]\n")
    code, out, err = run(["generate", saved, "--grammar", grammar_file, "-n", "6", "--seed", "0", "--json"], capsys)
    assert code == 0, err
    texts = {" ".join(s["tokens"]) for s in json.loads(out)["samples"]}
    assert texts <= {"the dog sleeps .", "a cat sleeps ."}
    code, out, err = run(["generate", saved, "--grammar", "builtin:english", "-n", "4", "--seed", "0"], capsys)
    assert code == 0 and len(out.splitlines()) == 4
    code, out, err = run(["generate", saved, "--grammar", tmp_path / "absent.cfg"], capsys)
    assert code == 1 and len(err.splitlines()) == 1 and "absent.cfg" in err


def test_cli_exact(saved, capsys):
    code, out, err = run(["generate", saved, "--grammar", "builtin:english", "--exact", "-n", "3", "--seed", "1",
                          "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert len(data["samples"]) == 3 and 0 < data["language_prob"] <= 1
    assert len(err.splitlines()) == 1 and err.startswith("P_model(L(G)) estimate: ")
    code, _, err = run(["generate", saved, "--exact"], capsys)
    assert code == 1 and "--exact" in err and "--grammar" in err
    code, _, err = run(["generate", saved, "--grammar", "builtin:english", "--exact", "--top-k", "3"], capsys)
    assert code == 1 and "top_k 3" in err


def test_cli_particles(saved, capsys):
    code, _, err = run(["generate", saved, "--grammar", "builtin:english", "--exact", "--particles", "8", "-n", "1",
                        "--seed", "2"], capsys)
    assert code == 0 and "runs of 8 particles" in err
    code, _, err = run(["generate", saved, "--grammar", "builtin:english", "--particles", "8"], capsys)
    assert code == 1 and "--particles" in err and "--exact" in err
    code, _, err = run(["generate", saved, "--grammar", "builtin:english", "--exact", "--particles", "0"], capsys)
    assert code == 2
