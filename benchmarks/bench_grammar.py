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

- incremental parsing: one step of the stepping interface (advance by a token, then the next-token
  distribution) with scratchgen.grammar.earley.EarleyParser after prefixes of 10, 100 and 1,000 tokens,
  against prefix.next_token_probs, which recomputes the prefix chart (the stepping of before), on the
  built-in English and Chinese grammars and two right-recursive grammars.

Run: ``python -m benchmarks.bench_grammar [--quick]`` (peers: ``pip install nltk tracery``).
"""

from __future__ import annotations

import random
import sys
import time

import numpy as np

from benchmarks.common import Section, Timer, best_of, module_available, table, write_section
from scratchgen.grammar import ChartParser, Grammar, Sampler, builtin, from_tracery, prefix
from scratchgen.grammar.compile import compile_grammar
from scratchgen.grammar.earley import EarleyParser
from scratchgen.grammar.rules import Terminal

#: Prefix lengths of the incremental-parsing rows, and the steps timed from each (WINDOW consecutive prefixes).
LENGTHS = (10, 100, 1000)
WINDOW = 28
#: The recomputation is not run beyond this many tokens: its chart grows as the cube of the length (about
#: 0.35 s at 200 tokens with the English grammar, so some 40 s and gigabytes of chart at 1,000).
RECOMPUTE_MAX = 200

# Right recursion inside a left child (the subject's PP chain waits for its VP), a nullable ADJS, and sentences
# nested through VP -> V 'that' S.
NESTED = """
S    -> NP VP [1.0]
NP   -> DET ADJS N [0.6] | DET ADJS N PP [0.25] | DET ADJS N 'that' VP [0.15]
ADJS -> '' [0.6] | 'big' ADJS [0.4]
DET  -> 'the' [0.7] | 'a' [0.3]
N    -> 'dog' [0.5] | 'cat' [0.5]
PP   -> P NP [1.0]
P    -> 'near' [0.5] | 'with' [0.5]
VP   -> V [0.3] | V NP [0.4] | V 'that' S [0.3]
V    -> 'sees' [0.5] | 'knows' [0.5]
"""
# English reaches 1,000 tokens through object relative clauses, each inside the one before.
_CLAUSES = ["that chases a bird", "that likes the old girl", "who feeds every happy king", "that follows some dogs",
            "that see the tired cat", "who sees many small birds", "that help this clever fox", "that knows the queen"]


def _long(start: str, units: list[str], n: int) -> list[str]:
    """``start`` followed by ``units`` in turn, cut at n tokens."""
    tokens, k = start.split(), 0
    while len(tokens) < n:
        tokens += units[k % len(units)].split()
        k += 1
    return tokens[:n]


def _step_ms(parser: EarleyParser, states: list, w: np.ndarray, repeat: int) -> float:
    """ms of one step: for each state of a window of consecutive prefixes, the median of ``repeat`` timings of
    its step (states are immutable, so the same step can be timed again); then the mean over the window, so
    that every kind of token (a noun that closes phrases, a determiner that opens one) counts alike."""
    medians = []
    for state, a in zip(states, w):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            parser.next_probs(parser.advance(state, np.array([a])))
            times.append(time.perf_counter() - t0)
        medians.append(np.median(times))
    return 1000 * float(np.mean(medians))


def incremental_parsing(quick: bool) -> tuple[str, list[list[object]]]:
    """ms per step of EarleyParser and of the recomputed prefix chart at prefix lengths 10, 100, 1000.

    Returns (a paragraph, the table's rows: grammar, length, incremental ms, recomputation ms, speed-up).
    """
    cases = [
        ("builtin:english", builtin("english"), _long("the big dog sees the cat", _CLAUSES, LENGTHS[-1] + WINDOW)),
        ("builtin:chinese", builtin("chinese"), _long("我 喜 欢", ["猫 看 的", "狗 看 的"], LENGTHS[-1] + WINDOW)),
        ("right recursion S -> 'a' S [0.9], S -> 'a' [0.1]", Grammar.fromstring("S -> 'a' S [0.9] | 'a' [0.1]"),
         ["a"] * (LENGTHS[-1] + WINDOW)),
        ("nested right recursion (below)", Grammar.fromstring(NESTED),
         _long("", ["the big dog near a cat knows that"], LENGTHS[-1] + WINDOW)),
    ]
    rows, flat, gain = [], [], []
    repeat = 9 if quick else 51
    for name, grammar, tokens in cases:
        cg = compile_grammar(grammar)
        w = cg.terminal_ids(tokens)
        parser = EarleyParser(cg)
        states = [parser.start(1)]  # states[k]: after k tokens
        cpu = time.process_time()  # CPU time: the whole pass, without the pauses a busy machine inserts
        for k in range(LENGTHS[-1]):
            states.append(parser.advance(states[-1], w[k : k + 1]))
        cpu = time.process_time() - cpu
        for k in range(LENGTHS[-1], len(w) - 1):
            states.append(parser.advance(states[-1], w[k : k + 1]))
        state = states[-1]
        if state[0].dead:
            raise RuntimeError(f"the benchmark's prefix is not a prefix of {name}'s language")
        ms = {}
        for L in LENGTHS:
            ms[L] = _step_ms(parser, states[L : L + WINDOW], w[L : L + WINDOW], repeat)
            if L <= RECOMPUTE_MAX:
                today = 1000 * best_of(lambda: prefix.next_token_probs(cg, w[None, : L + 1], 5000), 3 if quick else 5)
                rows.append([name, L, ms[L], today, f"{today / ms[L]:.0f}x"])
                if L == 100:
                    gain.append(f"{name}: {today / ms[L]:.0f}x")
            else:
                rows.append([name, L, ms[L], float("nan"), "recomputation not run"])
        flat.append(f"{name}: {ms[LENGTHS[-1]] / ms[LENGTHS[0]]:.2f} (reading the whole prefix: "
                    f"{1000 * cpu / LENGTHS[-1]:.3f} CPU ms/token)")
    text = (
        "**Incremental parsing.** One step = advance the state by one token and read the next-token "
        f"distribution; the step at L tokens is the mean over the {WINDOW} steps from the prefixes of L to "
        f"L + {WINDOW - 1} tokens (each the median of {repeat} timings from its immutable state). 'Recomputed' is "
        "prefix.next_token_probs on the prefix of L + 1 tokens (the stepping of before: a chart over the whole "
        f"prefix; best of {3 if quick else 5}), not run beyond "
        f"{RECOMPUTE_MAX} tokens (cubic: about 40 s and gigabytes of chart at 1,000). Target: the step at 1,000 tokens "
        "at most 1.5 times the step at 10, and at least 20 times faster than the recomputation at 100. "
        f"Step at 1,000 / step at 10: {'; '.join(flat)}. Recomputation / incremental at 100 tokens: "
        f"{'; '.join(gain)}. The English prefix is a chain of object relative clauses ('the big dog sees the cat "
        "that chases a bird that likes the old girl who ...'), Chinese a left-recursive chain of relative clauses "
        "('我 喜 欢 猫 看 的 狗 看 的 ...'), the nested grammar repeats 'the big dog near a cat knows that':\n\n"
        "```\n" + NESTED.strip() + "\n```\n"
    )
    return text, rows


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
        check = (f" On the {len(nltk_logps)} sentences NLTK scored, its sum over parses and scratchgen's inside "
                 "log-probability "
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
        f"(mean {mean_len:.1f}); each scorer cycles over them for at least 3 s (at most {budget:.0f} s); "
        f"'sentences' counts the sentences scored. Sampled: {n_sample} sentences "
        f"(uniform grammar mean length {mean_uniform:.1f} tokens). The last column is scratchgen's speed "
        "divided by the peer's, measured in the same run." + check + "\n\n"
        + table(["task", "implementation", "sentences/s", "sentences", "scratchgen speed-up"], rows)
    )
    inc_text, inc_rows = incremental_parsing(quick)
    body += "\n\n" + inc_text + "\n" + table(
        ["grammar", "prefix tokens", "incremental ms/step", "recomputed ms/step", "speed-up"], inc_rows
    )
    command = "python -m benchmarks.bench_grammar" + (" --quick" if quick else "")
    return Section("grammar", "Grammar: exact scoring and sampling", body, command)


if __name__ == "__main__":
    section = run(quick="--quick" in sys.argv)
    print(section.markdown())
    write_section(section)
