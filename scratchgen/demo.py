"""``scratchgen demo``: train the generators on one corpus and compare them side by side."""

from __future__ import annotations

import sys

from .baseline import UniformModel, UnigramModel
from .text import Tokenizer, read_corpus, split_text

_FALLBACK = """the cat sat on the mat
the dog sat on the log
a cat saw a dog
the dog saw the cat on the mat
a bird sat on the dog
"""


def run_demo(args) -> int:
    level = args.level or ("word" if args.corpus is None else "char")
    tokenizer = Tokenizer(level)
    corpus = read_corpus(args.corpus, tokenizer) if args.corpus else split_text(_FALLBACK, tokenizer)
    print("scratchgen demo: trains each generator on a corpus and compares held-out cross-entropy.")
    cut = max(1, len(corpus) * 4 // 5)
    train, held = corpus[:cut], corpus[cut:] or corpus[-1:]
    for name, model in (("uniform", UniformModel(tokenizer=tokenizer)), ("unigram", UnigramModel(tokenizer=tokenizer))):
        model.fit(train)
        score = model.score(held)
        samples = model.generate_text(2, seed=args.seed, max_tokens=12)
        print(f"{name:8s} {score.bits_per_token:6.3f} bits/token   e.g. {samples[0]!r}")
    sys.stdout.flush()
    return 0
