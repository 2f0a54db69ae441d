"""``scratchgen demo``: four families of generators trained on one corpus and compared side by side.

By default the corpus comes from a built-in grammar (the rule generator), which is then the *true
source*: its exact cross-entropy on the held-out sentences,

    H_floor = -(1/N) sum_s log P_grammar(x^(s)),                                               (1)

is the floor that no model trained on its samples can beat in expectation (the cross-entropy of a
model q on samples of p is H(p) + KL(p || q) >= H(p)). The demo samples a training set and a
held-out set from the grammar, trains the uniform and unigram random generators, a modified
Kneser-Ney n-gram model and a small RNN on the training set, and prints for each: samples, held-out
bits per token beside the floor, and the quality figures of :mod:`scratchgen.evaluation`.

With ``--corpus FILE`` it runs the same comparison on the user's text, without the grammar's row.
Everything is seeded: the table on stdout is the same on every run; progress goes to stderr.

Then (with the built-in corpus) two kinds of **control** (:func:`_control`): the n-gram held to the
grammar it was trained on, sampled token by token under the grammar's mask and exactly by sequential
Monte Carlo, with the estimate of P_model(L(G)); and a labelled n-gram trained on the shipped labelled
corpus (:mod:`scratchgen.datasets`), sampled for each label and used as a classifier, beside the
Bayes-optimal accuracy of the true labelled grammar.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import numpy as np

from .baseline import UniformModel, UnigramModel
from .corpus import read_corpus
from .errors import CorpusError, OutputError
from .model import LanguageModel
from .progress import Progress
from .text import Tokenizer

__all__ = ["run_demo", "DemoSettings"]


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; the defaults finish well within 2 minutes on 2 cores."""

    n_train: int = 10000  # sentences sampled from the grammar for training
    n_heldout: int = 500  # and for the held-out score
    n_samples: int = 200  # samples per model for the quality figures
    order: int = 4  # n-gram order
    rnn_hidden: int = 128
    rnn_embedding: int = 48
    rnn_steps: int = 3000  # a fixed number of updates, not a time limit, so every run is the same
    max_tokens: int = 60  # longest sample
    n_exact: int = 20  # sequential Monte Carlo runs for the exact constrained samples and P(L(G))

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(n_train=1000, n_heldout=200, n_samples=100, rnn_steps=300, n_exact=5)


def _progress(message: str) -> None:
    """A line on stderr that does not break a progress bar (tqdm's ``write``)."""
    if _BAR is not None:
        _BAR.write(message)
    else:
        print(message, file=sys.stderr, flush=True)


_BAR: Progress | None = None  # the demo's bar over the four models, while it runs


def _split(corpus: list, rng: np.random.Generator, heldout_fraction: float = 0.1) -> tuple[list, list]:
    order = rng.permutation(len(corpus))
    n_held = max(1, int(round(len(corpus) * heldout_fraction)))
    if len(corpus) < 2:
        raise CorpusError("the demo needs a corpus of at least 2 sequences (one to train, one held out)")
    held = set(order[:n_held].tolist())
    return [s for i, s in enumerate(corpus) if i not in held], [corpus[i] for i in sorted(held)]


def _models(settings: DemoSettings, tokenizer: Tokenizer, seed: int) -> list[tuple[str, str, str, LanguageModel]]:
    """(family, name, file stem, unfitted model) for each generator the demo trains."""
    from .ngram import NGramModel
    from .nn import RNNModel, ShowProgress

    rnn = RNNModel(
        hidden=settings.rnn_hidden,
        embedding=settings.rnn_embedding,
        layers=1,
        batch_size=32,
        seq_len=64,
        lr=3e-3,
        optimizer="adam",
        lr_schedule="cosine",
        epochs=1000,
        max_steps=settings.rnn_steps,
        valid_fraction=0.05,
        patience=None,
        seed=seed,
        dtype="float32",
        callbacks=[ShowProgress()],
        tokenizer=tokenizer,
    )
    return [
        ("random", "uniform", "uniform", UniformModel(tokenizer=tokenizer)),
        ("random", "unigram (add-1)", "unigram", UnigramModel(k=1.0, tokenizer=tokenizer)),
        (
            "statistical",
            f"{settings.order}-gram, modified Kneser-Ney",
            "ngram",
            NGramModel(order=settings.order, smoothing="modified-kneser-ney", tokenizer=tokenizer),
        ),
        ("deep", f"RNN, hidden {settings.rnn_hidden}", "rnn", rnn),
    ]


def run_demo(args) -> int:
    """The demo, step by step: the corpus, the models trained and scored, the table, the saved files."""
    from .evaluation import reference_logprob

    if args.out is not None:
        _check_out(args.out)  # before the training, not after it
    settings = DemoSettings.quick() if getattr(args, "quick", False) else DemoSettings()
    seed = args.seed
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    train, heldout, tokenizer, grammar, source = _corpus(args, settings, rng)
    print(f"scratchgen demo: four families of text generators trained on {len(train)} sequences from {source},")
    print(f"scored on {len(heldout)} held-out sequences (seed {seed}).")
    floor = reference_logprob(heldout, grammar) if grammar is not None else None
    reports, samples, models = _train_and_score(settings, tokenizer, seed, train, heldout, grammar, floor)
    _print_results(reports, samples, tokenizer, grammar, floor, seed)
    if grammar is not None:
        _control(settings, models["ngram"], reports, seed)
    if args.out:
        _save(args.out, models, reports, floor)
    _point_at_explain(args, grammar is not None, heldout, tokenizer)
    _progress(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def _corpus(args, settings: DemoSettings, rng: np.random.Generator):
    """The training and held-out sequences, their tokenizer, the grammar (None for ``--corpus``) and a
    description of the source: sampled from the built-in grammar, or split from the user's file."""
    grammar = None
    if args.corpus is None:
        from .grammar import GrammarModel

        level = args.level or "word"
        if level != "word":
            raise CorpusError("the built-in grammar's corpus is word-level; use --level word or --corpus FILE")
        grammar = GrammarModel.from_grammar("builtin:english")
        tokenizer = grammar.tokenizer_
        source = "the built-in English grammar (scratchgen/grammars/english.cfg)"
        _progress(f"sampling {settings.n_train} training and {settings.n_heldout} held-out sentences from {source}")
        # Top-down expansion draws from the same distribution as stepping the decoder, 50 times faster.
        train = grammar.sample(settings.n_train, seed=rng)
        heldout = grammar.sample(settings.n_heldout, seed=rng)
    else:
        level = args.level or "char"
        tokenizer = Tokenizer(level)
        source = f"{args.corpus} ({level} level)"
        train, heldout = _split(read_corpus(args.corpus, tokenizer, encoding=getattr(args, "encoding", "utf-8")), rng)
        _progress(f"read {source}")
    return train, heldout, tokenizer, grammar, source


def _train_and_score(settings: DemoSettings, tokenizer: Tokenizer, seed: int, train, heldout, grammar, floor):
    """Fit each family on ``train`` and evaluate it: the reports by row name, three samples by model name,
    and the fitted models by file stem."""
    from .evaluation import evaluate

    reports, samples, models = {}, {}, {}
    global _BAR
    families = _models(settings, tokenizer, seed)
    with Progress(total=len(families), desc="demo", unit="models") as _BAR:
        for family, name, stem, model in families:
            t0 = time.perf_counter()
            _progress(f"training {name} ...")
            model.fit(train)
            report = evaluate(
                model,
                train,
                reference=grammar,
                n=settings.n_samples,
                seed=seed,
                heldout=heldout,
                max_tokens=settings.max_tokens,
                reference_heldout=floor,
            )
            reports[f"{family}: {name}"] = report
            samples[name] = report.samples[:3]
            models[stem] = model
            _progress(
                f"  {name}: {report.heldout.bits_per_token:.3f} bits/token held out ({time.perf_counter() - t0:.1f} s)"
            )
            _BAR.update(1)
    _BAR = None
    return reports, samples, models


def _print_results(reports: dict, samples: dict, tokenizer: Tokenizer, grammar, floor, seed: int) -> None:
    """The floor and the legend, the comparison table, then a few samples of the source and of each model."""
    from .evaluation import comparison_table

    print()
    if floor is not None:  # there is a grammar
        print(
            f"The floor: the grammar's own exact cross-entropy on the held-out sentences is "
            f"{floor.bits_per_token:.3f} bits/token (eq. (1) of scratchgen/demo.py)."
        )
        print("'ref bits' scores each model's samples under the grammar; 'impossible' is the share it cannot generate.")
    print("'discrim acc' is a logistic-regression discriminator's held-out accuracy, real vs generated (0.5 = fooled).")
    print()
    print(comparison_table(reports))
    print()
    if grammar is not None:
        print("grammar (the source):")
        for s in grammar.sample(3, seed=np.random.default_rng(seed + 1)):
            print("    " + tokenizer.detokenize(s))
    for name, rows in samples.items():
        print(f"{name}:")
        for s in rows:
            print("    " + (tokenizer.detokenize(s) or "(empty)"))


def _control(settings: DemoSettings, ngram, reports: dict, seed: int) -> None:
    """Control, both kinds: the n-gram held to the grammar, then a labelled n-gram on the labelled corpus."""
    from . import datasets
    from .decoding import generate
    from .ngram import NGramModel
    from .smc import sample_exact

    tok = ngram.tokenizer_
    outside = next(r for name, r in reports.items() if name.startswith("statistical")).reference.impossible
    _progress("control: sampling the n-gram held to the grammar ...")
    print()
    print(
        f"Control 1: the {settings.order}-gram held to the grammar. Left alone, {outside:.1%} of its samples are "
        "outside the grammar."
    )
    masked = generate(ngram, 3, grammar="builtin:english", seed=seed, max_tokens=settings.max_tokens)
    print("  masked (each token restricted to what the grammar can continue):")
    for s in masked:
        print("    " + tok.detokenize(s))
    exact = sample_exact(
        ngram, settings.n_exact, grammar="builtin:english", particles=64, seed=seed, max_tokens=settings.max_tokens
    )
    print("  exact (sequential Monte Carlo, 64 particles: samples of P(x | x in the grammar)):")
    for s in exact.sequences[:3]:
        print("    " + tok.detokenize(s))
    print(
        f"  P_model(L(G)), the n-gram's probability of the grammar's sentences: {exact.estimate:.3f} "
        f"+- {exact.standard_error:.3f} ({settings.n_exact} runs)"
    )
    _progress("control: training a labelled n-gram on the labelled corpus ...")
    (train_labels, train_texts), (test_labels, test_texts) = datasets.standard_split()
    word = Tokenizer(level="word")
    labelled = NGramModel(order=3, tokenizer=word).fit(train_texts, labels=train_labels)
    names = labelled.labels_.names if labelled.labels_ is not None else ()
    plain = NGramModel(order=3, tokenizer=word).fit(train_texts)
    given = labelled.score(test_texts, labels=test_labels).cross_entropy_nats
    result = labelled.classify(test_texts)
    accuracy = float(np.mean([a == b for a, b in zip(result.labels, test_labels)]))
    bayes = datasets.bayes_optimal(test_labels, test_texts)
    print()
    print(
        f"Control 2: a labelled 3-gram, P(x | c), trained on {len(train_texts)} sentences of the shipped labelled "
        f"corpus (topics {', '.join(names)})."
    )
    for k, label in enumerate(names):
        for s in labelled.generate(2, label=label, seed=seed + k, max_tokens=settings.max_tokens):
            print(f"  {label:>8}: {word.detokenize(s)}")
    print(
        f"  held out: {given:.3f} nats/token given the label, {plain.score(test_texts).cross_entropy_nats:.3f} without "
        f"(the true grammar: {bayes.cross_entropy:.3f}); as a classifier, argmax_c P(x | c) P(c): accuracy "
        f"{accuracy:.1%} (Bayes-optimal: {bayes.accuracy:.1%})"
    )


def _point_at_explain(args, builtin: bool, heldout: list, tokenizer: Tokenizer) -> None:
    """The last lines: one ``scratchgen explain`` command, token by token, on the demo's own models."""
    import shlex

    out = args.out or "models"
    if builtin:  # the agreement across a relative clause: the RNN sees it, the 4-gram's window does not
        text = "printf 'the kings that the dog sees sleep.\\nthe kings that the dog sees sleeps.\\n' | "
        line = "-"
    else:
        text, line = "", shlex.quote(tokenizer.detokenize(heldout[0]))
    models = f"{out}/ngram.npz {out}/rnn.npz"
    print()
    print("See why, token by token (log P, surprisal, rank, alternatives, and each family's reason):")
    if not args.out:
        print(f"    scratchgen demo --out {out}")
    print(f"    {text}scratchgen explain {models} {line} --html {out}/explain.html")


def _check_out(out: str) -> None:
    """``--out DIR`` must be a folder or a new path whose parent folder exists."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise OutputError(f"--out {out!r} is a file, not a folder: give a folder for the models and the report")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise OutputError(f"cannot create --out {out!r}: the folder {parent!r} does not exist")


def _save(out: str, models: dict, reports: dict, floor) -> None:
    from .evaluation import save_curve
    from .io import atomic_write

    os.makedirs(out, exist_ok=True)
    import importlib.util

    for stem, model in models.items():
        model.save(os.path.join(out, f"{stem}.npz"))
        history = getattr(model, "history_", None)
        if history:
            png = os.path.join(out, f"{stem}_curve.png") if importlib.util.find_spec("matplotlib") else None
            save_curve(history, os.path.join(out, f"{stem}_curve.csv"), png_path=png, title=f"{stem}: training curve")
    report = {name: r.to_dict(samples=True) for name, r in reports.items()}
    if floor is not None:
        report["floor"] = dataclasses.asdict(floor)  # a ReferenceScore
    text = json.dumps(report, ensure_ascii=False, indent=1, default=str)
    atomic_write(os.path.join(out, "report.json"), lambda f: f.write(text), mode="w")
    _progress(f"saved the models, training curves and report.json in {out}")
