"""The multi-class discriminator (eq. 6-9 of scratchgen.evaluation.discriminator): loss, gradient check,
agreement with the plain-loop reference, the binary case as its special case, and training."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchgen.errors import ScratchgenError
from scratchgen.evaluation.discriminator import (
    TextClassifier,
    fit_logistic,
    fit_softmax,
    forward,
    predict_class_proba,
    predict_proba,
    softmax_backward,
    softmax_forward,
    softmax_gradient_error,
)
from scratchgen.evaluation.reference import softmax_loss_by_loops


def _problem(seed, M, D, C):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(M, D))  # (M, D)
    y = rng.integers(0, C, size=M)  # (M,)
    params = {"W": rng.normal(size=(D, C)), "b": rng.normal(size=C)}
    return X, y, params


def test_forward_worked_example():
    # One row x = (1), W = (0, ln 3), b = 0: z = (0, ln 3), p = (1/4, 3/4). Class 1: loss -ln 3/4.
    params = {"W": np.array([[0.0, math.log(3.0)]]), "b": np.zeros(2)}
    loss, _ = softmax_forward(params, np.array([[1.0]]), np.array([1]), l2=0.0)
    assert loss == pytest.approx(-math.log(0.75))
    # the penalty: 0.5 * 2 * (ln 3)^2 added
    loss2, _ = softmax_forward(params, np.array([[1.0]]), np.array([1]), l2=2.0)
    assert loss2 == pytest.approx(-math.log(0.75) + math.log(3.0) ** 2)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12), st.integers(1, 6), st.integers(1, 5), st.sampled_from([0.0, 0.3]))
def test_gradient_matches_central_differences(seed, M, D, C, l2):
    X, y, params = _problem(seed, M, D, C)
    assert softmax_gradient_error(params, X, y, l2) < 1e-6


@pytest.mark.parametrize("seed", range(4))
def test_a_wrong_gradient_fails_the_check(seed):
    X, y, params = _problem(seed, 8, 3, 3)

    def forgot_the_penalty(p, cache):
        g = softmax_backward(p, cache)
        return {"W": g["W"] - cache["l2"] * p["W"], "b": g["b"]}

    assert softmax_gradient_error(params, X, y, 0.5, backward_fn=forgot_the_penalty) > 1e-3


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4), st.sampled_from([0.0, 0.7]))
def test_the_vectorised_loss_and_gradient_equal_the_reference_loops(seed, M, D, C, l2):
    X, y, params = _problem(seed, M, D, C)
    loss, cache = softmax_forward(params, X, y, l2)
    grads = softmax_backward(params, cache)
    ref_loss, ref_dW, ref_db = softmax_loss_by_loops(params["W"].tolist(), params["b"].tolist(), X.tolist(),
                                                     y.tolist(), l2)
    assert loss == pytest.approx(ref_loss, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grads["W"], np.array(ref_dW), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["b"], np.array(ref_db), rtol=1e-10, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 10), st.integers(1, 5), st.sampled_from([0.0, 0.2]))
def test_two_classes_with_the_first_column_at_zero_is_the_binary_discriminator(seed, M, D, l2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(M, D))
    y = rng.integers(0, 2, size=M)
    w, b = rng.normal(size=D), rng.normal()
    binary, _ = forward({"w": w, "b": np.array(b)}, X, y.astype(np.float64), l2)
    two = {"W": np.stack([np.zeros(D), w], axis=1), "b": np.array([0.0, b])}
    multi, _ = softmax_forward(two, X, y, l2)
    assert multi == pytest.approx(binary, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(predict_class_proba(two, X)[:, 1], predict_proba({"w": w, "b": np.array(b)}, X),
                               rtol=1e-12)


def test_fit_reaches_the_minimum_and_agrees_with_the_binary_fit():
    X, y, _ = _problem(3, 40, 5, 3)
    params = fit_softmax(X, y, 3, l2=0.1)
    loss, cache = softmax_forward(params, X, y, 0.1)
    g = softmax_backward(params, cache)
    assert max(np.abs(g["W"]).max(), np.abs(g["b"]).max()) < 1e-5
    # two classes: the same decisions as the logistic regression (each minimises its own convex loss;
    # the L2 penalty differs (it sees both columns), so only the decisions are compared, on a clear problem)
    rng = np.random.default_rng(1)
    X2 = np.concatenate([rng.normal(2.0, 1.0, size=(30, 2)), rng.normal(-2.0, 1.0, size=(30, 2))])
    y2 = np.array([1] * 30 + [0] * 30)
    soft = predict_class_proba(fit_softmax(X2, y2, 2, l2=0.01), X2).argmax(axis=1)
    logi = (predict_proba(fit_logistic(X2, y2.astype(float), l2=0.01), X2) >= 0.5).astype(int)
    assert np.array_equal(soft, logi)


def test_probabilities_sum_to_one_and_bad_arguments_are_refused():
    X, y, params = _problem(0, 6, 3, 4)
    p = predict_class_proba(params, X * 1000)  # large logits do not overflow
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1.0)
    with pytest.raises(ScratchgenError, match="classes"):
        fit_softmax(X, np.array([0, 1, 2, 3, 4, 0]), 4)
    with pytest.raises(ScratchgenError, match="n_classes"):
        fit_softmax(X, y, 0)
    with pytest.raises(ScratchgenError, match="l2"):
        fit_softmax(X, y, 4, l2=-1.0)


def test_text_classifier_tells_three_alphabets_apart():
    rng = np.random.default_rng(0)
    alphabets = ["abc", "def", "ghi"]
    texts = [list(rng.choice(list(alphabets[c]), size=rng.integers(2, 8))) for c in (0, 1, 2) for _ in range(20)]
    classes = np.repeat([0, 1, 2], 20)
    clf = TextClassifier.fit(texts, classes, 3, dim=256)
    test = [list("abca"), list("feed"), list("highhi")]
    assert clf.predict(test).tolist() == [0, 1, 2]
    assert np.allclose(clf.predict_proba(test).sum(axis=1), 1.0)
