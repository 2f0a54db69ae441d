"""Benchmark of the grammar's E step (inside-outside), batched over the corpus against one sentence at a time.

Sentences sampled from the built-in English grammar (2,000; quick: 300), the E step of one EM pass over
them, timed in CPU seconds of this process (best of 3):

- one at a time: ``expected_counts`` for each sentence (a batch of one, as the E step ran before it was
  batched);
- batched: ``expected_counts_batch`` on the whole corpus (sentences of one length share a chart and one
  outside pass, eq. (6) of scratchgen/grammar/outside.py).

Both on one BLAS thread (the batched pass sets it; the per-sentence loop is run inside the same context,
so the ratio is of the algorithms, not of thread contention). The counts agree to rounding (checked here).

Run ``python -m benchmarks.bench_em [--quick]`` from the repository root.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from benchmarks.common import Section, table, write_section


def _cpu(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def run(quick: bool = False) -> Section:
    from scratchgen import GrammarModel
    from scratchgen.grammar.compile import compile_grammar
    from scratchgen.grammar.outside import expected_counts, expected_counts_batch
    from scratchgen.threads import one_blas_thread

    n = 300 if quick else 2000
    model = GrammarModel.from_grammar("builtin:english")
    corpus = model.sample(n, seed=0)
    cg = compile_grammar(model._checked_grammar())

    def alone():
        return sum(expected_counts(cg, s, 400)[0] for s in corpus)

    with one_blas_thread():
        t_alone = _cpu(alone, 1 if not quick else 2)
        t_batch = _cpu(lambda: expected_counts_batch(cg, corpus, 400))
        a, b = alone(), expected_counts_batch(cg, corpus, 400)[0]
    err = float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)))
    mean_len = float(np.mean([len(s) for s in corpus]))
    rows = [["one sentence at a time", n / t_alone, 1.0], ["batched", n / t_batch, t_alone / t_batch]]
    body = (table(["E step", "sentences/s (CPU)", "speed-up"], rows)
            + f"\n\n- {n} sentences of builtin:english (mean length {mean_len:.1f} tokens); CPU seconds, best of 3."
            + f"\n- Largest relative difference of the expected counts: {err:.1e} (the same sums in another order).")
    command = "python -m benchmarks.bench_em" + (" --quick" if quick else "")
    return Section("bench_em", "grammar: the E step of EM, batched", body, command)


if __name__ == "__main__":
    section = run("--quick" in sys.argv[1:])
    print(section.markdown())
    write_section(section)
