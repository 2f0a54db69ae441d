"""The random generators against plain Python: fitting, sampling and scoring, in tokens per second.

The peer is what a learner would write first: ``collections.Counter`` to fit, a ``random.choice``
(uniform) or ``random.choices`` (unigram, cumulative weights) loop that draws one token at a time
until ``</s>`` to sample, and a ``math.log`` lookup a token to score. Both sides do the same work
on the same corpus (names.txt at character level, or a synthetic corpus when the data is absent),
in the same process, so the ratio is what to read.

    python -m benchmarks.bench_baseline [--quick]
"""

from __future__ import annotations

import collections
import math
import random
import sys

import numpy as np

from benchmarks.common import SHARED_DATA, Section, best_of, table, write_section
from scratchgen import UniformModel, UnigramModel, generate
from scratchgen.text import Tokenizer, read_corpus


def _corpus(quick: bool) -> tuple[list[list[str]], str]:
    path = SHARED_DATA / "names.txt"
    if path.exists():
        corpus = read_corpus(path, Tokenizer("char"))
        name = "names.txt"
    else:  # synthetic stand-in: 32k "names" of 3-10 letters
        rng = np.random.default_rng(0)
        letters = list("abcdefghijklmnopqrstuvwxyz")
        corpus = [list(rng.choice(letters, size=rng.integers(3, 11))) for _ in range(32000)]
        name = "synthetic names (names.txt not found)"
    if quick:
        corpus = corpus[:8000]
    return corpus, f"{name}, {len(corpus)} sequences"


def _python_fit(corpus):
    counts = collections.Counter()
    for seq in corpus:
        counts.update(seq)
        counts["</s>"] += 1
    return counts


def _python_sampler(model, kind):
    tokens = model.vocab_.tokens
    probs = np.exp(model.logprobs_).tolist()
    emittable = [t for t, p in zip(tokens, probs) if p > 0]
    cum = list(np.cumsum([p for p in probs if p > 0]))
    rnd = random.Random(0)

    def sample(n, max_tokens):
        out = []
        for _ in range(n):
            seq = []
            while len(seq) < max_tokens:
                t = rnd.choice(emittable) if kind == "uniform" else rnd.choices(emittable, cum_weights=cum)[0]
                if t == "</s>":
                    break
                seq.append(t)
            out.append(seq)
        return out

    return sample


def _python_score(model, corpus):
    logp = dict(zip(model.vocab_.tokens, model.logprobs_.tolist()))
    unk = logp["<unk>"]
    total = 0.0
    for seq in corpus:
        for t in seq:
            total += logp.get(t, unk)
        total += logp["</s>"]
    return total


def run(quick: bool) -> Section:
    corpus, corpus_name = _corpus(quick)
    n_tokens = sum(len(s) + 1 for s in corpus)  # </s> counted, as in scoring
    repeat = 2 if quick else 3
    n_samples, max_tokens = (500, 50) if quick else (2000, 50)
    rows = []
    for kind, cls in (("uniform", UniformModel), ("unigram", UnigramModel)):
        ours = best_of(lambda: cls().fit(corpus), repeat)
        peer = best_of(lambda: _python_fit(corpus), repeat)
        rows.append([f"fit ({n_tokens:,} tokens)", kind, n_tokens / ours, n_tokens / peer, peer / ours])

        model = cls().fit(corpus)
        drawn = {}

        def ours_sample():
            drawn["ours"] = generate(model, n=n_samples, seed=0, max_tokens=max_tokens)

        def peer_sample():
            drawn["peer"] = sampler(n_samples, max_tokens)

        sampler = _python_sampler(model, kind)
        t_ours = best_of(ours_sample, repeat)
        t_peer = best_of(peer_sample, repeat)
        tok_ours = sum(len(s) + 1 for s in drawn["ours"])
        tok_peer = sum(len(s) + 1 for s in drawn["peer"])
        rows.append([f"sample ({n_samples} sequences, batched)", kind, tok_ours / t_ours, tok_peer / t_peer,
                     (tok_ours / t_ours) / (tok_peer / t_peer)])

        ours = best_of(lambda: model.score(corpus), repeat)
        peer = best_of(lambda: _python_score(model, corpus), repeat)
        assert math.isclose(model.score(corpus).logprob, _python_score(model, corpus), rel_tol=1e-9)
        rows.append([f"score ({n_tokens:,} tokens)", kind, n_tokens / ours, n_tokens / peer, peer / ours])
        ids = [model.vocab_.encode(s) for s in corpus]
        ours = best_of(lambda: model.token_logprobs(ids), repeat)
        rows.append(["score, ids already encoded", kind, n_tokens / ours, n_tokens / peer, peer / ours])

    body = (f"Corpus: {corpus_name}, character level. Tokens per second (best of {repeat}); the peer is plain "
            "Python (Counter, a random.choice/choices loop one token at a time, a math.log lookup a token), "
            "measured in the same run. Ratio > 1: scratchgen is faster. These models do almost no "
            "arithmetic, so the figures mostly measure overhead: tokenizing and encoding text into ids (compare "
            "the two score rows) and the decoder's per-step controls.\n\n"
            + table(["task", "model", "scratchgen tokens/s", "plain Python tokens/s", "ratio"], rows))
    command = "python -m benchmarks.bench_baseline" + (" --quick" if quick else "")
    return Section(name="baseline", title="Random generators vs plain Python", body=body, command=command)


if __name__ == "__main__":
    section = run(quick="--quick" in sys.argv[1:])
    print(section.markdown())
    write_section(section)
