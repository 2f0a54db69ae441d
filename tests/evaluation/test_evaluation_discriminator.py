"""The discriminator of the adversarial test: features, loss, gradient check, training, accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.errors import ScratchgenError
from scratchgen.evaluation.discriminator import (
    backward,
    discriminator_accuracy,
    fit_logistic,
    forward,
    gradient_error,
    ngram_features,
    predict_proba,
)


def _problem(seed, M, D):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(M, D))  # (M, D)
    y = rng.integers(0, 2, size=M).astype(np.float64)  # (M,)
    params = {"w": rng.normal(size=D), "b": np.array(rng.normal())}
    return X, y, params


def test_features_worked_example():
    # <s> a b </s>: unigrams <s>, a, b, </s> and bigrams (<s> a), (a b), (b </s>): 7 grams, each once.
    X = ngram_features([["a", "b"]], max_order=2, dim=2 ** 20)
    assert np.count_nonzero(X) == 7  # no collision among 7 grams in 2^20 buckets
    assert X.sum() == pytest.approx(7 * math.log(2))
    # <s> a a a </s> with unigrams only: <s> once, a three times, </s> once -> log 2, log 4, log 2.
    X = ngram_features([["a", "a", "a"]], max_order=1, dim=2 ** 20)
    assert sorted(X[X > 0].tolist()) == pytest.approx([math.log(2), math.log(2), math.log(4)])


def test_features_are_stable_and_bounded():
    a = ngram_features([["x", "y"], ["y"]], max_order=3, dim=64)
    b = ngram_features([["x", "y"], ["y"]], max_order=3, dim=64)
    assert a.shape == (2, 64) and np.array_equal(a, b)
    with pytest.raises(ScratchgenError, match="max_order"):
        ngram_features([["a"]], max_order=0)
    with pytest.raises(ScratchgenError, match="dim"):
        ngram_features([["a"]], dim=0)


def test_forward_worked_example():
    # z = 1 * 2 + 0 = 2, y = 1: log(1 + e^2) - 2 = log(1 + e^-2) = 0.126928; penalty 0.5 * 0.5 * 2^2 = 1.
    params = {"w": np.array([2.0]), "b": np.array(0.0)}
    loss, _ = forward(params, np.array([[1.0]]), np.array([1.0]), l2=0.5)
    assert loss == pytest.approx(math.log1p(math.exp(-2.0)) + 1.0)
    # With w = 0 and b = 0 every p is 1/2: ln 2 for any labels.
    zero = {"w": np.zeros(3), "b": np.array(0.0)}
    assert forward(zero, np.ones((4, 3)), np.array([1.0, 0.0, 0.0, 1.0]), 0.1)[0] == pytest.approx(math.log(2))


def test_forward_does_not_overflow():
    params = {"w": np.array([1.0]), "b": np.array(0.0)}
    X = np.array([[1000.0], [-1000.0]])
    loss, cache = forward(params, X, np.array([0.0, 1.0]), 0.0)
    assert loss == pytest.approx(1000.0)  # both confidently wrong by z = 1000: (1000 + 1000) / 2
    g = backward(params, cache)
    assert np.all(np.isfinite(g["w"]))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), M=st.integers(1, 8), D=st.integers(1, 6), l2=st.floats(0.0, 2.0))
def test_gradient_matches_central_differences(seed, M, D, l2):
    X, y, params = _problem(seed, M, D)
    grads = backward(params, forward(params, X, y, l2)[1])
    assert set(grads) == set(params)
    error = gradient_error(params, X, y, l2)
    assert error < 1e-6


def _wrong_backward_sign(params, cache):
    g = backward(params, cache)  # the data part with the wrong sign: dz = (y - p) / M
    return {"w": -(g["w"] - cache["l2"] * params["w"]) + cache["l2"] * params["w"], "b": -g["b"]}


def _wrong_backward_no_penalty(params, cache):
    g = backward(params, cache)
    return {"w": g["w"] - cache["l2"] * params["w"], "b": g["b"]}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), M=st.integers(1, 8), D=st.integers(1, 6))
def test_a_wrong_gradient_fails_the_check(seed, M, D):
    X, y, params = _problem(seed, M, D)
    # Where either mistake is visible: small inputs, so no p saturates (at |z| = 12 p equals y to 1e-5, the data
    # part of the gradient vanishes and its sign cannot be seen: seed 9930756, M 1, D 3), and weights of at least
    # 1/2, so the penalty's gradient l2 w is not lost beside the data part.
    X = 0.3 * X
    params["w"] = np.copysign(0.5 + np.abs(params["w"]), params["w"])
    assert gradient_error(params, X, y, 0.5, backward_fn=_wrong_backward_sign) > 1e-3
    assert gradient_error(params, X, y, 0.5, backward_fn=_wrong_backward_no_penalty) > 1e-3


def test_gradient_error_leaves_the_parameters_and_checks_float32_in_float64():
    X, y, params = _problem(0, 3, 2)
    before = {k: v.copy() for k, v in params.items()}
    assert gradient_error(params, X, y, 0.1) < 1e-6
    assert all(np.array_equal(before[k], params[k]) for k in params)
    p32 = {"w": params["w"].astype(np.float32), "b": params["b"].astype(np.float32)}
    assert gradient_error(p32, X, y, 0.1) < 1e-6            # the checker works on a float64 copy
    assert p32["w"].dtype == np.float32


def test_the_discriminator_uses_the_one_gradient_checker(monkeypatch):
    import scratchgen.evaluation.discriminator as disc

    calls = []
    real = disc.gradcheck
    monkeypatch.setattr(disc, "gradcheck", lambda *a, **k: calls.append(1) or real(*a, **k))
    X, y, params = _problem(0, 3, 2)
    disc.gradient_error(params, X, y, 0.1)
    assert calls and real is __import__("scratchgen.nn.gradcheck", fromlist=["gradcheck"]).gradcheck


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_reaches_the_minimum(seed):
    # The loss is convex, so the minimum is where the gradient vanishes (checked by backward, not by fit).
    X, y, _ = _problem(seed, 40, 5)
    params = fit_logistic(X, y, l2=0.1)
    g = backward(params, forward(params, X, y, 0.1)[1])
    assert np.max(np.abs(g["w"])) < 1e-5 and abs(float(g["b"])) < 1e-5


def test_fit_separates_a_separable_problem_and_rejects_bad_l2():
    X = np.array([[0.0, 1.0], [0.0, 2.0], [1.0, 0.0], [2.0, 0.0]])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    p = predict_proba(fit_logistic(X, y, l2=0.01), X)
    assert np.all(p[:2] > 0.5) and np.all(p[2:] < 0.5)
    with pytest.raises(ScratchgenError, match="l2"):
        fit_logistic(X, y, l2=-1.0)


def _draw(rng, probs, count):
    letters = list("abcdef")
    return [list(rng.choice(letters, size=rng.integers(3, 12), p=probs)) for _ in range(count)]


def test_accuracy_is_high_for_obvious_fakes_and_near_chance_for_the_same_source():
    rng = np.random.default_rng(7)
    uniform = np.full(6, 1 / 6)
    real = _draw(rng, uniform, 150)
    same = _draw(rng, uniform, 150)
    fakes = [["f"] * len(s) for s in same]  # one letter repeated: trivially told apart
    assert discriminator_accuracy(real, fakes, seed=0) == 1.0
    chance = discriminator_accuracy(real, same, seed=0)
    # 45 + 45 held-out sequences; chance gives 0.5 with standard deviation sqrt(0.25/90) = 0.053.
    assert 0.3 <= chance <= 0.7


def test_accuracy_is_deterministic_and_balanced():
    rng = np.random.default_rng(3)
    real = _draw(rng, np.full(6, 1 / 6), 60)
    fake = _draw(rng, np.array([0.5, 0.1, 0.1, 0.1, 0.1, 0.1]), 200)  # more fakes than reals: cut to 60
    a = discriminator_accuracy(real, fake, seed=5)
    assert a == discriminator_accuracy(real, fake, seed=5)
    # 60 of each, 18 of each held out: the accuracy is a multiple of 1/36.
    assert (a * 36) == pytest.approx(round(a * 36))


@pytest.mark.parametrize("real, fake, kw, match", [
    ([["a"]], [["b"], ["c"]], {}, "at least 2"),
    ([["a"], ["b"]], [["b"], ["c"]], {"test_fraction": 1.0}, "test_fraction"),
    ([["a"], ["b"]], [["b"], ["c"]], {"test_fraction": 0.0}, "test_fraction"),
])
def test_bad_arguments(real, fake, kw, match):
    with pytest.raises(ScratchgenError, match=match):
        discriminator_accuracy(real, fake, **kw)
