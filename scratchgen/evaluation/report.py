"""One call that measures a model's generated text: :func:`evaluate` -> :class:`EvalReport`.

It draws ``n`` samples with :func:`scratchgen.decoding.generate` (or takes them ready-made) and
reports, side by side:

- held-out cross-entropy and perplexity from the protocol (``model.score``), when held-out text is given;
- the text measures of :mod:`scratchgen.metrics`: average length, distinct-n, repetition rate, novelty;
- with a reference grammar: the exact log-probability of the samples under it
  (:mod:`.reference`), and of the held-out text too, the floor a model is compared with;
- the adversarial test (:mod:`.discriminator`): held-out accuracy of a classifier telling real
  text (the held-out set, else a sample of the training set) from the samples;
- for a labelled model given the labels of its training (and held-out) text: the per-label figures
  of :mod:`.labels` (classification accuracy, cross-entropy given the label against an unlabelled
  twin, label fidelity).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from .. import metrics
from ..errors import ScratchgenError
from .discriminator import discriminator_accuracy
from .labels import LabelEvaluation, evaluate_labels
from .reference import ReferenceScore, reference_logprob

__all__ = ["EvalReport", "evaluate", "comparison_table", "json_safe"]

Tokens = Sequence[Hashable]


@dataclasses.dataclass
class EvalReport:
    """Everything :func:`evaluate` measured; ``to_dict`` gives JSON-able values.

    Attributes
    ----------
    model : str
        The model's class name.
    seed : int or None
    samples : list of token lists
    average_length : float
        Tokens a sample.
    distinct : dict int -> float
        distinct-n for each order n (eq. 4 of :mod:`scratchgen.metrics`).
    repetition_rate : float
        Within-sample repetition of n-grams of order ``order`` (eq. 5).
    novelty : Novelty
        Shares of samples and of ``order``-grams absent from the training set (eq. 6, 7).
    order : int
    heldout : Score or None
        The model's cross-entropy on the held-out text.
    reference : ReferenceScore or None
        The samples under the reference grammar.
    reference_heldout : ReferenceScore or None
        The held-out text under the reference grammar (the floor of ``heldout``).
    discriminator_accuracy : float or None
        Held-out accuracy of real-vs-generated (0.5: indistinguishable); None when there are too few sequences.
        With n samples (and as many real sequences) it is measured on 2 round(0.3 n) held-out sequences,
        so its standard error is about sqrt(a (1 - a) / (0.6 n)): 0.046 at a = 0.5, n = 200.
    discriminator_real : str
        Which real text the discriminator saw: "heldout" or "train".
    labels : LabelEvaluation or None
        The per-label figures of a labelled model (:mod:`.labels`), when the labels of its text were given.
    """

    model: str
    seed: int | None
    samples: list[list[Any]]
    average_length: float
    distinct: dict[int, float]
    repetition_rate: float
    novelty: metrics.Novelty
    order: int
    heldout: Any = None
    reference: ReferenceScore | None = None
    reference_heldout: ReferenceScore | None = None
    discriminator_accuracy: float | None = None
    discriminator_real: str = "train"
    labels: LabelEvaluation | None = None

    def to_dict(self, samples: bool = True) -> dict:
        """A flat-ish dict for JSON (``samples=False`` leaves the samples out).

        Every value is JSON as the standard defines it: a NaN ("no value", e.g. the mean log-probability
        when every sample is impossible under the reference) is None, an infinity the string "inf" or
        "-inf", as ``scratchgen ... --json`` writes them.
        """
        out: dict[str, Any] = {
            "model": self.model,
            "seed": self.seed,
            "n": len(self.samples),
            "average_length": self.average_length,
            **{f"distinct_{n}": v for n, v in sorted(self.distinct.items())},
            "order": self.order,
            "repetition_rate": self.repetition_rate,
            "novelty_sequences": self.novelty.sequences,
            "novelty_ngrams": self.novelty.ngrams,
            "heldout": self.heldout.to_dict() if self.heldout is not None else None,
            "reference": self.reference.to_dict() if self.reference is not None else None,
            "reference_heldout": self.reference_heldout.to_dict() if self.reference_heldout is not None else None,
            "discriminator_accuracy": self.discriminator_accuracy,
            "discriminator_real": self.discriminator_real,
        }
        if self.labels is not None:
            out["labels"] = self.labels.to_dict()
        if samples:
            out["samples"] = [list(s) for s in self.samples]
        return json_safe(out)

    def to_json(self, samples: bool = True) -> str:
        """:meth:`to_dict` as strict JSON text (no NaN or Infinity, which JSON does not have)."""
        return json.dumps(self.to_dict(samples=samples), ensure_ascii=False, allow_nan=False)

    def summary(self) -> str:
        """A few human-readable lines (what ``scratchgen eval`` prints)."""
        lines = [
            f"{self.model}: {len(self.samples)} samples (seed {self.seed}), "
            f"average length {self.average_length:.2f} tokens"
        ]
        if self.heldout is not None:
            h = self.heldout
            marginal = " (of the marginal P(x) = sum_c P(c) P(x | c))" if self.labels is not None else ""
            lines.append(
                f"held-out cross-entropy {h.bits_per_token:.4f} bits/token, perplexity {h.perplexity:.4f}{marginal}"
            )
        if self.reference_heldout is not None:
            lines.append(
                f"reference on held-out text {self.reference_heldout.bits_per_token:.4f} bits/token "
                "(the floor, when the reference is the true source)"
            )
        if self.reference is not None:
            r = self.reference
            lines.append(
                f"samples under the reference: {r.bits_per_token:.4f} bits/token, "
                f"{r.logprob_per_sample:.4f} nats/sample, impossible {r.impossible:.1%}"
            )
        lines.append(
            "distinct "
            + ", ".join(f"{n}: {v:.3f}" for n, v in sorted(self.distinct.items()))
            + f"; repetition ({self.order}-grams) {self.repetition_rate:.3f}"
        )
        lines.append(
            f"novelty: {self.novelty.sequences:.1%} of samples and {self.novelty.ngrams:.1%} of "
            f"{self.order}-grams not in the training set"
        )
        if self.discriminator_accuracy is not None:
            lines.append(
                f"discriminator accuracy {self.discriminator_accuracy:.1%} against {self.discriminator_real} "
                "text (50% = indistinguishable)"
            )
        if self.labels is not None:
            lines.append(self.labels.summary())
        return "\n".join(lines)


def evaluate(
    model,
    train: Sequence,
    reference=None,
    n: int = 200,
    seed: int | None = 0,
    heldout: Sequence | None = None,
    samples: Sequence[Tokens] | None = None,
    orders: Sequence[int] = (1, 2, 3),
    order: int = 3,
    max_tokens: int = 200,
    discriminator: bool = True,
    reference_heldout: ReferenceScore | None = None,
    labels: Sequence[str] | None = None,
    heldout_labels: Sequence[str] | None = None,
    **decoding,
) -> EvalReport:
    """Sample from ``model`` and measure the samples.

    Parameters
    ----------
    model : LanguageModel (fitted)
    train : corpus (texts or token lists) the model was trained on; texts are tokenized by the model
    reference : object with ``logprob(tokens) -> float`` or None, e.g. the grammar the corpus came from
    n : number of samples to draw (ignored when ``samples`` is given)
    seed : seeds the decoder and the discriminator's split
    heldout : corpus or None; scored by the model (and the reference), and the discriminator's real text
    samples : token lists to measure instead of drawing them (decoding is then not needed)
    orders : the orders of distinct-n
    order : the order of repetition rate and n-gram novelty
    max_tokens, **decoding : passed to ``scratchgen.decoding.generate`` (temperature, top_k, top_p, ...)
    discriminator : False skips the adversarial test (it is the slowest part)
    reference_heldout : the held-out text already scored by the reference (``reference_logprob(heldout,
        reference)``), to reuse when several models are evaluated against the same grammar and held-out set
    labels, heldout_labels : the label of each training (and held-out) text, for a labelled model: adds the
        per-label figures of :func:`scratchgen.evaluation.labels.evaluate_labels` (``n`` samples a label for
        the fidelity, unless ``discriminator`` is False). The other figures are of the marginal P(x).

    >>> from scratchgen import UnigramModel
    >>> m = UnigramModel().fit([["a", "b"], ["b", "a"]])
    >>> r = evaluate(m, [["a", "b"], ["b", "a"]], samples=[["a", "b"], ["a", "a"]], discriminator=False)
    >>> r.distinct[1], r.novelty.sequences   # unigrams a, b, a, a: 2 distinct of 4; "a a" is new
    (0.5, 0.5)
    """
    train_seqs = model.tokenize_corpus(train)
    heldout_seqs = model.tokenize_corpus(heldout) if heldout is not None else None
    token_lists = _sample_lists(model, samples, n, seed, max_tokens, decoding)
    report = EvalReport(
        model=type(model).__name__,
        seed=seed,
        samples=token_lists,
        average_length=metrics.average_length(token_lists),
        distinct={k: metrics.distinct_n(token_lists, k) for k in orders},
        repetition_rate=metrics.repetition_rate(token_lists, order),
        novelty=metrics.novelty(token_lists, train_seqs, order),
        order=order,
    )
    if heldout_seqs:
        report.heldout = model.score(heldout_seqs)
    if reference is not None:
        _score_reference(report, reference, heldout_seqs, reference_heldout)
    if discriminator:
        _discriminate(report, heldout_seqs, train_seqs, seed)
    if labels is not None:
        report.labels = evaluate_labels(
            model,
            train_seqs,
            labels,
            heldout=heldout_seqs,
            heldout_labels=heldout_labels,
            samples_per_label=n,
            seed=seed,
            fidelity=discriminator,
            max_tokens=max_tokens,
            **decoding,
        )
    return report


def _sample_lists(model, samples: Sequence[Tokens] | None, n: int, seed, max_tokens: int, decoding: dict) -> list:
    """The samples to measure, each a list of tokens as the report keeps them: given, or drawn from ``model``."""
    if samples is None:
        from ..decoding import generate

        samples = generate(model, n=n, seed=seed, max_tokens=max_tokens, **decoding)
    token_lists = [list(s) for s in samples]
    if not token_lists:
        raise ScratchgenError("no samples to evaluate (n must be >= 1)")
    return token_lists


def _discriminate(report: EvalReport, heldout_seqs, train_seqs, seed) -> None:
    """How well a discriminator tells real text (the held-out text, else the training text) from the samples."""
    real = heldout_seqs if heldout_seqs else train_seqs
    report.discriminator_real = "heldout" if heldout_seqs else "train"
    if min(len(real), len(report.samples)) >= 2:
        report.discriminator_accuracy = discriminator_accuracy(real, report.samples, seed=seed)


def _score_reference(report: EvalReport, reference, heldout_seqs, reference_heldout) -> None:
    """The samples scored by the reference, and the held-out text too (given already scored, or scored here)."""
    report.reference = reference_logprob(report.samples, reference)
    if reference_heldout is not None:
        report.reference_heldout = reference_heldout
    elif heldout_seqs:
        report.reference_heldout = reference_logprob(heldout_seqs, reference)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN replaced by None and every infinity by "inf" or "-inf" (in dicts, lists).

    >>> json_safe({"a": float("nan"), "b": [1.5, float("-inf")]})
    {'a': None, 'b': [1.5, '-inf']}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _cell(value: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def comparison_table(reports: Mapping[str, EvalReport]) -> str:
    """One plain-text table, a row a model, of the figures that compare models at a glance.

    Columns: held-out bits/token (the protocol's score), "ref bits": bits/token of the samples under the
    reference, and the share of samples it cannot generate, distinct-2, repetition rate, novelty of
    samples and of n-grams, discriminator accuracy. When a report has ``reference_heldout``, a first row
    "reference (floor)" gives the reference's own bits/token on the held-out text. A missing figure is "-".

    >>> r = EvalReport(model="M", seed=0, samples=[["a"]], average_length=1.0, distinct={2: 0.5},
    ...                repetition_rate=0.0, novelty=metrics.Novelty(1.0, 0.25, 3), order=3)
    >>> print(comparison_table({"mine": r}))
    model  held-out bits  ref bits  impossible  distinct-2  repetition  novel seq  novel 3-gr  discrim acc
    mine               -         -           -       0.500       0.000      1.000       0.250            -
    """
    header = [
        "model",
        "held-out bits",
        "ref bits",
        "impossible",
        "distinct-2",
        "repetition",
        "novel seq",
        "novel {}-gr",
        "discrim acc",
    ]
    rows = []
    floor = next((r.reference_heldout for r in reports.values() if r.reference_heldout is not None), None)
    if floor is not None:
        rows.append(["reference (floor)", _cell(floor.bits_per_token, ".4f")] + ["-"] * 7)
    order = next((r.order for r in reports.values()), 3)
    header[7] = header[7].format(order)
    for name, r in reports.items():
        ref = r.reference
        rows.append(
            [
                name,
                _cell(r.heldout.bits_per_token if r.heldout is not None else None, ".4f"),
                _cell(ref.bits_per_token if ref is not None else None, ".4f"),
                _cell(ref.impossible if ref is not None else None, ".1%"),
                _cell(r.distinct.get(2), ".3f"),
                _cell(r.repetition_rate, ".3f"),
                _cell(r.novelty.sequences, ".3f"),
                _cell(r.novelty.ngrams, ".3f"),
                _cell(r.discriminator_accuracy, ".3f"),
            ]
        )
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = []
    for row in [header] + rows:
        cells = [str(row[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
