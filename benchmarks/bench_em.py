"""Benchmark of the grammar's E step (inside-outside), batched over the corpus against one sentence at a time.

Sentences sampled from the built-in English grammar (2,000; quick: 300), the E step of one EM pass over
them, timed in CPU seconds of this process, the two contestants interleaved (A B A B ..., best of 3):

- one at a time: ``outside.expected_counts`` for each sentence: the readable one-sentence pass, the E step
  as it ran before issue 13 (its outside pass is that of commit 1ef0e98 unchanged; its inside chart is
  today's ``inside.chart_batch`` with a batch of one);
- batched: ``outside.expected_counts_batch`` on the whole corpus (sentences of similar length share a
  chart and one outside pass, eq. (6) of scratchgen/grammar/outside.py).

Both on one BLAS thread (the batched pass sets it; the per-sentence loop runs inside the same context, so
the ratio is of the algorithms, not of thread contention). The result is checked, not assumed: the
largest relative difference of the expected counts and of the log-likelihoods, and of the rule
probabilities after two EM passes of ``GrammarModel.fit`` with either E step.

Run ``python -m benchmarks --only em [--quick]`` from the repository root.
"""

from __future__ import annotations

import sys
import time
from unittest import mock

import numpy as np

from benchmarks.common import Section, table, write_section


def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)))


def _one_at_a_time(cg, sentences, max_length, progress=None):
    """The E step as it ran before it was batched: the readable pass once per sentence, summed."""
    from scratchgen.grammar.outside import expected_counts

    pairs = [expected_counts(cg, s, max_length) for s in sentences]
    if progress is not None:
        progress.update(len(sentences))
    return sum(c for c, _ in pairs), np.array([lp for _, lp in pairs])


def run(quick: bool = False) -> Section:
    from scratchgen import GrammarModel
    from scratchgen.grammar import model as grammar_model
    from scratchgen.grammar.compile import compile_grammar
    from scratchgen.grammar.outside import expected_counts_batch
    from scratchgen.threads import one_blas_thread

    n, repeat = (300, 2) if quick else (2000, 3)
    model = GrammarModel.from_grammar("builtin:english")
    corpus = model.sample(n, seed=0)
    cg = compile_grammar(model._checked_grammar())

    with one_blas_thread():
        alone, lp_alone = _one_at_a_time(cg, corpus, 400)
        batch, lp_batch = expected_counts_batch(cg, corpus, 400)
        t_alone = t_batch = float("inf")
        for _ in range(repeat):  # interleaved: both see the same load
            t_alone = min(t_alone, _cpu(lambda: _one_at_a_time(cg, corpus, 400)))
            t_batch = min(t_batch, _cpu(lambda: expected_counts_batch(cg, corpus, 400)))

    def fit():
        return GrammarModel(grammar="builtin:english", iterations=2, tol=0).fit(corpus)

    fitted = fit()
    with mock.patch.object(grammar_model, "expected_counts_batch", _one_at_a_time):
        fitted_alone = fit()
    probs = [r.prob for r in fitted.grammar_.rules], [r.prob for r in fitted_alone.grammar_.rules]

    mean_len = float(np.mean([len(s) for s in corpus]))
    ratio = t_alone / t_batch
    rows = [["one sentence at a time (before issue 13)", n / t_alone, 1.0], ["batched", n / t_batch, ratio]]
    body = (
        table(["E step", "sentences/s (CPU)", "speed-up"], rows)
        + f"\n\n- {n} sentences of builtin:english (mean length {mean_len:.1f} tokens, longest "
        f"{max(len(s) for s in corpus)}); CPU seconds (process_time) of one E step, best of {repeat}, the two "
        "interleaved; one BLAS thread for both."
        + f"\n- Target of issue 13 section 5: >= 10x the one-at-a-time sentences/s: "
        f"{'met' if ratio >= 10 else 'NOT met'} ({ratio:.1f}x)."
        + f"\n- Same result: largest relative difference of the expected counts {_relative(alone, batch):.1e}, "
        f"of the log-likelihoods {_relative(lp_alone, lp_batch):.1e} (the same sums in another order); of the "
        f"rule probabilities after two EM passes with either E step {_relative(*probs):.1e}."
    )
    command = "python -m benchmarks --only em" + (" --quick" if quick else "")
    return Section("em", "grammar: the E step of EM, batched", body, command)


if __name__ == "__main__":
    section = run("--quick" in sys.argv[1:])
    print(section.markdown())
    write_section(section)
