"""Any model held to the built-in English grammar: masked and exact (SMC) decoding against plain decoding.

    python -m benchmarks --only constraint [--quick]         (or: python -m benchmarks.bench_constraint)

Two models of sentences drawn from ``builtin:english`` (GrammarModel.from_grammar(...).sample): a word
trigram (modified Kneser-Ney) and a small word-level RNN trained briefly. For each, in the same run:

- the cost per generated token of unconstrained sampling, and of masked sampling (every step also
  steps the grammar's prefix parser and masks; target <= 3 times), both for the same n samples, in
  batches of the same size, with the same max_tokens (a masked sample cut at max_tokens is redrawn:
  that work is in the masked time, and only the kept samples' tokens are counted);
- masked sampling starts with a new constraint each run (its caches empty, as a ``scratchgen generate
  --grammar`` command's), and is timed again with the caches the first run filled (a long-lived
  constraint), and for 8 times the samples (a new constraint, whose cache then pays for itself);
- the cost of ``exact=True`` with 64 particles per sample, against one masked sample (both per sample
  of a batch of the same size, each with a new constraint; target <= 64 times);
- the fraction of unconstrained samples the grammar cannot generate (the issue's 82.5% for an n-gram),
  the estimate of P_model(L(G)) by SMC with its standard error (restricted to sentences that end within
  max_tokens), which should be near the fraction of unconstrained samples inside the grammar;
- the share of the masked decoding time spent on the grammar's side: every call the constrained model
  makes to the :class:`~scratchgen.constraint.GrammarConstraint` (initial_state, advance, take_state,
  allowed), which steps the yes/no Earley parser (:mod:`scratchgen.grammar.support`) once for each new
  (node, token class) pair, and looks the rest up (:mod:`scratchgen.constraint`); and how many such steps
  (and distinct nodes) the n masked samples needed.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.common import Section, table
from scratchgen import NGramModel, Tokenizer, generate
from scratchgen.constraint import GrammarConstraint
from scratchgen.grammar import GrammarModel
from scratchgen.smc import sample_exact

MAX_TOKENS = 40
PARTICLES = 64


class _Clocks:
    """Adds up the CPU seconds spent in some methods of one object, each call counted once.

    The methods are replaced on the instance by timed wrappers; a call made from inside another timed
    call (the constraint's ``allowed`` advancing the grammar for a stop token) is not counted twice."""

    def __init__(self, obj, names):
        self.seconds, self._depth = 0.0, 0
        for name in names:
            setattr(obj, name, self._timed(getattr(obj, name)))

    def _timed(self, fn):
        def timed(*args, **kwargs):
            self._depth += 1
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.process_time() - start

        return timed


def _models(quick: bool):
    grammar = GrammarModel.from_grammar("builtin:english")
    sentences = grammar.sample(500 if quick else 5000, seed=0)
    word = Tokenizer(level="word")
    ngram = NGramModel(order=3, tokenizer=word).fit(sentences)
    from scratchgen.nn import RNNModel

    rnn = RNNModel(hidden=32 if quick else 128, embedding=16 if quick else 64, tokenizer=word, seq_len=16,
                   batch_size=16, lr=1e-2, epochs=1, max_steps=60 if quick else 1500, seed=0)
    rnn.fit(sentences)
    return grammar, [("word trigram (modified Kneser-Ney)", ngram), (f"word RNN (H={rnn.hidden})", rnn)], len(sentences)


def _tokens(samples) -> int:
    return sum(len(s) + 1 for s in samples)


def _timed(fn, repeat: int):
    """(the fewest CPU seconds of ``repeat`` runs of ``fn()``, its result): the same seed, the same result.

    CPU seconds of this process, on one BLAS thread (see :func:`run`): on a shared machine a neighbour's
    load stretches the wall clock, not the work done, and every ratio here compares work."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def _cold(model, run, repeat: int):
    """(the fewest CPU seconds of ``repeat`` runs of ``run(constraint)``, the seconds of that run spent in the
    constraint, its result, its constraint): each run gets a new constraint, whose caches start empty,
    as a ``scratchgen generate --grammar`` command's does. Building the constraint (compiling the grammar)
    is not timed: it is done once, like loading the model."""
    best: tuple = (float("inf"), 0.0, None, None)
    for _ in range(repeat):
        constraint = GrammarConstraint("builtin:english", model.fitted_vocab())
        # the grammar's side of masked decoding: every call the ConstrainedModel makes to the constraint
        clock = _Clocks(constraint, ("initial_state", "advance", "take_state", "allowed"))
        start = time.process_time()
        result = run(constraint)
        seconds = time.process_time() - start
        if seconds < best[0]:
            best = (seconds, clock.seconds, result, constraint)
    return best


def _measure(name, model, grammar, n, n_exact, repeat):
    generate(model, 4, grammar="builtin:english", seed=0, max_tokens=MAX_TOKENS)  # warm-up (imports, BLAS)
    # allow_unk: the model's own samples, so the fraction inside the grammar estimates P(L(G)) itself
    t_free, free = _timed(lambda: generate(model, n, seed=1, max_tokens=MAX_TOKENS, allow_unk=True), repeat)
    t_masked, grammar_seconds, masked, constraint = _cold(
        model, lambda c: generate(model, n, grammar=c, seed=1, max_tokens=MAX_TOKENS), repeat
    )
    # the same run again with the caches the first one filled (a long-lived constraint)
    t_warm, _ = _timed(lambda: generate(model, n, grammar=constraint, seed=1, max_tokens=MAX_TOKENS), 1)
    # the cache amortised over 8 times the samples: each run with a new constraint again
    t_free_big, free_big = _timed(lambda: generate(model, 8 * n, seed=3, max_tokens=MAX_TOKENS, allow_unk=True), 1)
    t_masked_big, _, masked_big, _ = _cold(
        model, lambda c: generate(model, 8 * n, grammar=c, seed=3, max_tokens=MAX_TOKENS), 1
    )
    t_masked_small, _, _, _ = _cold(
        model, lambda c: generate(model, n_exact, grammar=c, seed=2, max_tokens=MAX_TOKENS), repeat
    )
    t_exact, _, exact, _ = _cold(
        model,
        lambda c: sample_exact(model, n_exact, grammar=c, particles=PARTICLES, seed=2, max_tokens=MAX_TOKENS),
        repeat,
    )
    free_rate = t_free / _tokens(free)
    masked_rate = t_masked / _tokens(masked)
    without_grammar = (t_masked - grammar_seconds) / _tokens(masked)
    outside = float(np.mean([lp == -np.inf for lp in grammar.sentence_logprobs(free)]))
    inside_masked = float(np.mean([lp > -np.inf for lp in grammar.sentence_logprobs(masked + exact.sequences)]))
    warm_rate = t_warm / _tokens(masked)
    nodes = list(constraint._nodes.values())  # the yes/no parser's nodes met by the n masked samples
    steps = f"{sum(len(node.after) for node in nodes)} ({len(nodes)})"
    big_ratio = (t_masked_big / _tokens(masked_big)) / (t_free_big / _tokens(free_big))
    return [name, free_rate * 1e6, masked_rate * 1e6, masked_rate / free_rate, f"{grammar_seconds / t_masked:.0%}",
            without_grammar / free_rate, steps, warm_rate / free_rate, big_ratio, t_exact / n_exact * 1e3,
            t_exact / t_masked_small, f"{outside:.1%}", f"{exact.estimate:.4f} ± {exact.standard_error:.4f}",
            f"{1 - outside:.4f}", f"{inside_masked:.0%}"]


def run(quick: bool = False) -> Section:
    n = 64 if quick else 512
    n_exact = 4 if quick else 32
    grammar, models, n_train = _models(quick)
    with threadpool_limits(limits=1):  # CPU seconds measure work only on one thread
        rows = [_measure(name, model, grammar, n, n_exact, 1 if quick else 3) for name, model in models]
    body = table(
        ["model", "CPU µs/token free", "CPU µs/token masked", "masked / free (target <= 3)", "grammar share of masked",
         "masked / free, grammar side excluded", "grammar steps (nodes)", "masked / free, caches filled",
         f"masked / free, {8 * n} samples",
         f"CPU ms/sample exact ({PARTICLES} particles)", f"exact / masked per sample (target <= {PARTICLES})",
         "free samples outside L(G)", "P(L(G)) by SMC ± s.e.", "fraction of free samples inside",
         "constrained samples inside"],
        rows,
    )
    body += (
        f"\n\nModels trained on {n_train} sentences sampled from builtin:english; {n} samples a mode for the "
        f"per-token costs, {n_exact} for exact against masked (one SMC run of {PARTICLES} particles a sample); "
        f"max_tokens {MAX_TOKENS}; CPU seconds on one BLAS thread, each the fewest of 3 runs (1 with --quick), "
        "every masked and exact run with a new constraint (its caches empty; not the column 'caches filled', "
        f"the same masked run again with the caches of the first; and the column of {8 * n} samples, one run "
        "each). P(L(G)) is the model's probability of the "
        "grammar's sentences that end within max_tokens (eq. (6) of scratchgen.smc), the mean of the runs' "
        "estimates; the fraction of unconstrained samples inside the grammar (drawn with allow_unk=True: the "
        "model's own distribution) estimates the same number by plain Monte Carlo. The grammar share is the "
        "time spent in the constraint's calls: the incremental Earley parser steps once for each new support "
        "of its frame and token class (the constraint's cache, scratchgen.constraint), so that share falls "
        "as the cache fills (with n) and the column 'caches filled' is what masking costs in the long run; "
        "the column with the grammar's side excluded is what the rest of masked decoding (the mask applied, "
        "the redraws of samples cut at max_tokens) costs."
    )
    return Section(name="constraint", title="Grammar-constrained generation (masked and exact)", body=body,
                   command="python -m benchmarks --only constraint" + (" --quick" if quick else ""))


if __name__ == "__main__":
    import sys

    print(run("--quick" in sys.argv).body)
