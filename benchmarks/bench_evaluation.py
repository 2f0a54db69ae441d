"""The evaluation tools: the discriminator's hand-written L-BFGS against SciPy's, evaluate()'s cost, and the
figures of a labelled model (classification accuracy and label fidelity, :func:`label_figures`).

Real text: names.txt (or synthetic names when the data is absent); generated text: samples of a
unigram model fitted on it. The discriminator's loss (eq. 3 of scratchgen.evaluation.discriminator)
is minimised on the same hashed features by our L-BFGS and by ``scipy.optimize.minimize(method=
"L-BFGS-B")`` (the peer, optional) from the same start; both must reach the same minimum.

    python -m benchmarks.bench_evaluation [--quick]
"""

from __future__ import annotations

import sys

import numpy as np

from benchmarks.common import SHARED_DATA, Section, Timer, best_of, module_available, table, write_section
from scratchgen import GrammarModel, UniformModel, UnigramModel, generate
from scratchgen.evaluation import discriminator as D
from scratchgen.evaluation import evaluate, evaluate_labels
from scratchgen.text import Tokenizer, read_corpus


def _names() -> tuple[list[list[str]], str]:
    path = SHARED_DATA / "names.txt"
    if path.exists():
        return read_corpus(path, Tokenizer("char")), "names.txt"
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    return [list(rng.choice(letters, size=rng.integers(3, 11))) for _ in range(32000)], "synthetic names"


def _scipy_fit(X, y, l2):
    from scipy.optimize import minimize

    def f_and_g(theta):
        params = {"w": theta[:-1], "b": np.array(theta[-1])}
        loss, cache = D.forward(params, X, y, l2)
        g = D.backward(params, cache)
        return loss, np.concatenate([g["w"], g["b"].reshape(1)])

    res = minimize(f_and_g, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B",
                   options={"maxiter": 200, "gtol": 1e-6})
    return {"w": res.x[:-1], "b": np.array(res.x[-1])}


def _rule_label(tokens: list[str]) -> str:
    """A label read off a sentence of the built-in English grammar: question, relative clause, or simple."""
    if tokens and tokens[-1] == "?":
        return "question"
    return "relative" if ("that" in tokens or "who" in tokens) else "simple"


def labelled_corpus(n: int, seed: int) -> tuple[list[list[str]], list[str]]:
    """A synthetic labelled corpus: ``n`` sentences of ``builtin:english`` (word level), each labelled by
    :func:`_rule_label`. A stand-in until the shipped labelled corpus (issue 11) replaces it."""
    sentences = GrammarModel.from_grammar("builtin:english").sample(n, seed=seed)
    return sentences, [_rule_label(s) for s in sentences]


def label_figures(quick: bool) -> str:
    """Classification accuracy and label fidelity of the labelled unigram model (add-1) on the synthetic
    labelled corpus, beside two baselines measured in the same run: the majority label (what the prior
    alone classifies) and the labelled uniform model (its rows are the same for every label, so its
    fidelity is what a model that ignores the label gets)."""
    n_train, n_test, S = (1500, 500, 100) if quick else (6000, 2000, 400)
    texts, labels = labelled_corpus(n_train + n_test, seed=0)
    train, train_labels = texts[:n_train], labels[:n_train]
    test, test_labels = texts[n_train:], labels[n_train:]
    rows = []
    reports = {}
    for name, model in (("unigram (k=1)", UnigramModel()), ("uniform", UniformModel())):
        model.fit(train, labels=train_labels)
        with Timer() as t:
            r = evaluate_labels(model, train, train_labels, test, test_labels, samples_per_label=S, seed=0,
                                max_tokens=40)
        reports[name] = (r, t.seconds)
    majority = max(set(train_labels), key=train_labels.count)
    chance = sum(label == majority for label in test_labels) / len(test_labels)
    uni, t_uni = reports["unigram (k=1)"]
    flat, _ = reports["uniform"]
    for label in uni.names:
        ce = uni.cross_entropy[label]
        rows.append([label, uni.classification["per_label"][label]["examples"],
                     f"{ce['labelled_nats']:.4f}" if ce else "n/a", f"{ce['unlabelled_nats']:.4f}" if ce else "n/a",
                     f"{ce['gain_nats']:+.4f}" if ce else "n/a",
                     f"{uni.classification['per_label'][label]['accuracy']:.3f}",
                     f"{uni.fidelity[label]:.3f}", f"{flat.fidelity[label]:.3f}"])
    return (f"**A labelled model** (issue 11). Corpus: {n_train + n_test} sentences of `builtin:english` labelled by "
            "a rule (question: ends in '?'; relative: holds 'that' or 'who'; simple: the rest), "
            f"{n_train} to train, {n_test} held out. Labelled unigram model (add-1), cross-entropy in nats/token "
            "on the held-out text of each label, given the label and under the unlabelled twin (same class and "
            "hyperparameters, fitted on the same text without labels); classification accuracy by Bayes' rule; "
            f"fidelity = share of {S} samples of each label that a softmax discriminator trained on the real "
            "labelled training text assigns to that label (the labelled uniform model, which ignores its label, "
            "as the baseline).\n\n"
            + table(["label", "held-out texts", "H given label", "H unlabelled", "gain", "accuracy",
                     "fidelity (unigram)", "fidelity (uniform)"], rows)
            + f"\n\nOverall held-out classification accuracy {uni.classification['accuracy']:.3f} against "
              f"{chance:.3f} for the majority label ('{majority}'), "
              f"ratio {uni.classification['accuracy'] / chance:.2f}; "
              f"the discriminator's own accuracy on real held-out text {uni.discriminator_accuracy:.3f}; "
              f"evaluate_labels took {t_uni:.2f} s.")


def run(quick: bool) -> Section:
    names, corpus_name = _names()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(names))
    train = [names[i] for i in order[:20000]]
    k = 200 if quick else 1000
    real = [names[i] for i in order[20000:20000 + k]]
    model = UnigramModel().fit(train)
    fake = generate(model, n=k, seed=0, max_tokens=50)
    l2 = 1e-2
    with Timer() as t_feat:
        X = D.ngram_features(real + fake, max_order=3, dim=4096)  # (2k, D)
    y = np.concatenate([np.ones(k), np.zeros(k)])
    test = np.zeros(2 * k, dtype=bool)
    test[: k // 3] = True
    test[k: k + k // 3] = True
    Xtr, ytr = X[~test], y[~test]

    def held_out(params):
        return float(np.mean((D.predict_proba(params, X[test]) >= 0.5) == (y[test] == 1)))

    repeat = 2 if quick else 3
    ours = D.fit_logistic(Xtr, ytr, l2=l2)
    t_ours = best_of(lambda: D.fit_logistic(Xtr, ytr, l2=l2), repeat)
    loss_ours = D.forward(ours, Xtr, ytr, l2)[0]
    rows = []
    if module_available("scipy"):
        peer = _scipy_fit(Xtr, ytr, l2)
        t_peer = best_of(lambda: _scipy_fit(Xtr, ytr, l2), repeat)
        loss_peer = D.forward(peer, Xtr, ytr, l2)[0]
        rows.append([f"fit logistic regression ({len(ytr)} x {X.shape[1]})", f"{t_ours:.3f}", f"{t_peer:.3f}",
                     t_peer / t_ours, f"{loss_ours - loss_peer:+.1e}", f"{held_out(ours):.3f} / {held_out(peer):.3f}"])
    else:
        rows.append([f"fit logistic regression ({len(ytr)} x {X.shape[1]})", f"{t_ours:.3f}",
                     "skipped (scipy not installed)", float("nan"), "n/a", f"{held_out(ours):.3f} / n/a"])

    with Timer() as t_eval:
        report = evaluate(model, train, heldout=real, n=200, seed=0, max_tokens=50)
    body = (f"Real text: {corpus_name} ({k} held-out names); generated: {k} samples of a unigram model fitted on "
            f"20,000 names. Hashed n-gram features (orders 1-3, 4096 buckets) took {t_feat.seconds:.2f} s for "
            f"{2 * k} sequences. Same loss (L2 {l2}), same start, same features; seconds are best of {repeat}. "
            "Ratio > 1: ours is faster. Loss difference < 0: ours reached a lower loss.\n\n"
            + table(["task", "scratchgen s", "SciPy L-BFGS-B s", "ratio", "loss ours - SciPy",
                     "held-out accuracy ours / SciPy"], rows)
            + f"\n\n`evaluate(model, train, heldout=..., n=200)` of that unigram model, every measure included, took "
              f"{t_eval.seconds:.2f} s (discriminator accuracy {report.discriminator_accuracy:.3f}, distinct-2 "
              f"{report.distinct[2]:.3f}, novelty {report.novelty.sequences:.3f}).\n\n" + label_figures(quick))
    command = "python -m benchmarks.bench_evaluation" + (" --quick" if quick else "")
    return Section(name="evaluation", title="Evaluation: the discriminator's L-BFGS vs SciPy", body=body,
                   command=command)


if __name__ == "__main__":
    section = run(quick="--quick" in sys.argv[1:])
    print(section.markdown())
    write_section(section)
