"""Grammar benchmark: sentences scored and sampled per second, against NLTK and the tracery package.

Same grammar for everyone: scratchgen's built-in English grammar (138 rules, 103 terminals, left- and
right-branching PPs and relative clauses, so long sentences are ambiguous). Scoring uses sentences of
18-22 tokens sampled from it (seed 0).

- scoring: scratchgen's ChartParser.logprob (the exact sum over all trees) and .viterbi (best tree)
  vs NLTK's InsideChartParser (first parse: the best tree, NLTK does not sum over trees) and
  ViterbiParser, parsing the same sentences;
- sampling: scratchgen's Sampler vs the tracery package on the grammar turned into Tracery (uniform
  choices, since Tracery has no weights; scratchgen samples the identical grammar from_tracery), and
  scratchgen on the weighted grammar. (NLTK's generate enumerates sentences, it does not sample.)

Run: ``python -m benchmarks.bench_grammar [--quick]`` (peers: ``pip install nltk tracery``).
"""

from __future__ import annotations

import random
import sys
import time

from benchmarks.common import Section, Timer, module_available, table, write_section

from scratchgen.grammar import ChartParser, Sampler, builtin, from_tracery
from scratchgen.grammar.rules import Terminal


def _sentences(grammar, count: int, lo: int = 18, hi: int = 22) -> list[list[str]]:
    out = []
    for s in Sampler(grammar).sample(20000, seed=0):
        if lo <= len(s) <= hi:
            out.append(s)
            if len(out) == count:
                break
    return out


def _rate(fn, items, budget: float, min_time: float = 3.0) -> tuple[float, int]:
    """Items per second of fn, cycling over items for at least ``min_time`` seconds (whole passes, at
    least one), stopping early after ``budget`` seconds. The same rule for every implementation.

    One untimed call first (warm caches and lazy set-up, for every implementation alike).
    """
    fn(items[0])
    done = 0
    with Timer() as t:
        while True:
            for item in items:
                fn(item)
                done += 1
                if time.perf_counter() - t.start > budget:
                    break
            elapsed = time.perf_counter() - t.start
            if elapsed > min_time or elapsed > budget:
                break
    return done / t.seconds, done


def _tracery_rules(grammar) -> dict:
    rules: dict[str, list[str]] = {}
    for r in grammar.rules:
        parts = [str(s) if isinstance(s, Terminal) else f"#{s}#" for s in r.rhs]
        rules.setdefault(r.lhs, []).append(" ".join(parts))
    rules["origin"] = [f"#{grammar.start}#"]
    return rules


def run(quick: bool = False) -> Section:
    grammar = builtin("english")
    n_score = 10 if quick else 40
    budget = 15.0 if quick else 60.0
    sents = _sentences(grammar, n_score)
    mean_len = sum(map(len, sents)) / len(sents)
    rows = []

    with Timer() as t:
        parser = ChartParser(grammar)
    ours_inside, k1 = _rate(parser.logprob, sents, budget)
    ours_viterbi, k2 = _rate(parser.viterbi, sents, budget)
    ours_logps = parser.logprobs(sents)
    ours_batched, k3 = _rate(lambda batch: parser.logprobs(batch), [sents], budget)
    ours_batched *= len(sents)  # batches/s to sentences/s
    rows.append(["scoring", "scratchgen ChartParser.logprob, one sentence at a time", ours_inside, k1, "1"])
    rows.append(["scoring", "scratchgen ChartParser.logprobs, batched corpus scoring", ours_batched,
                 k3 * len(sents), ""])
    rows.append(["scoring", "scratchgen ChartParser.viterbi (best tree)", ours_viterbi, k2, "1"])
    check = ""
    if module_available("nltk"):
        import math

        import nltk

        nltk_grammar = nltk.PCFG.fromstring(grammar.to_text())
        inside = nltk.InsideChartParser(nltk_grammar)
        viterbi = nltk.ViterbiParser(nltk_grammar)
        nltk_logps = []

        def nltk_sentence_prob(s):  # NLTK builds the whole chart, then lists every parse: sum them
            nltk_logps.append(math.log(sum(t.prob() for t in inside.parse(s))))

        r1, j1 = _rate(nltk_sentence_prob, sents, budget)
        nltk_logps = nltk_logps[1:1 + len(sents)]  # after the warm-up call: the first pass
        r2, j2 = _rate(lambda s: next(iter(viterbi.parse(s))), sents, budget)
        rows.append(["scoring", "NLTK InsideChartParser, sum of the probabilities of all parses", r1, j1,
                     f"{ours_inside / r1:.0f}x one at a time, {ours_batched / r1:.0f}x batched"])
        rows.append(["scoring", "NLTK ViterbiParser", r2, j2, f"{ours_viterbi / r2:.0f}x"])
        diff = max(abs(a - b) for a, b in zip(nltk_logps, ours_logps))
        check = (f" On the {len(nltk_logps)} sentences NLTK scored, its sum over parses and scratchgen's inside log-probability "
                 f"differ by at most {diff:.1e} nats.")
    else:
        rows.append(["scoring", "NLTK", float("nan"), 0, "skipped (not installed)"])

    n_sample = 5000 if quick else 50000
    uniform = from_tracery(_tracery_rules(grammar))
    s_weighted = Sampler(grammar)
    s_uniform = Sampler(uniform)
    with Timer() as tw:
        s_weighted.sample(n_sample, seed=1)
    with Timer() as tu:
        out_uniform = s_uniform.sample(n_sample, seed=1)
    ours_uniform = n_sample / tu.seconds
    rows.append(["sampling", "scratchgen Sampler, weighted grammar", n_sample / tw.seconds, n_sample, ""])
    rows.append(["sampling", "scratchgen Sampler, uniform (Tracery) grammar", ours_uniform, n_sample, "1"])
    if module_available("tracery"):
        import tracery

        tg = tracery.Grammar(_tracery_rules(grammar))
        random.seed(1)
        with Timer() as tt:
            for _ in range(n_sample):
                tg.flatten("#origin#")
        rows.append(["sampling", "tracery package, same uniform grammar", n_sample / tt.seconds, n_sample,
                     f"{ours_uniform / (n_sample / tt.seconds):.1f}x"])
    else:
        rows.append(["sampling", "tracery", float("nan"), 0, "skipped (not installed)"])
    mean_uniform = sum(map(len, out_uniform)) / len(out_uniform)

    body = (
        f"Grammar: built-in English, {len(grammar.rules)} rules ({len(parser.labels)} symbols after binarising), "
        f"compiled in {t.seconds * 1000:.0f} ms. Scored: {len(sents)} sampled sentences of 18-22 tokens "
        f"(mean {mean_len:.1f}); each scorer cycles over them for at least 3 s (at most {budget:.0f} s); 'sentences' counts the sentences scored. Sampled: {n_sample} sentences "
        f"(uniform grammar mean length {mean_uniform:.1f} tokens). The last column is scratchgen's speed "
        "divided by the peer's, measured in the same run." + check + "\n\n"
        + table(["task", "implementation", "sentences/s", "sentences", "scratchgen speed-up"], rows)
    )
    command = "python -m benchmarks.bench_grammar" + (" --quick" if quick else "")
    return Section("grammar", "Grammar: exact scoring and sampling", body, command)


if __name__ == "__main__":
    section = run(quick="--quick" in sys.argv)
    print(section.markdown())
    write_section(section)
