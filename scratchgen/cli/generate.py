"""``scratchgen generate``: sample (or beam-search) text from a saved model.

    scratchgen generate MODEL [--label L] [--prompt TEXT] [-n N] [--max-tokens N] [--temperature T] ...

A model trained with ``--labelled`` draws from P(x | L) with ``--label L``; without it, each sequence's
label is drawn from the prior P(c) first (samples of the marginal P(x)). Beam search needs a label.
Samples are printed as each batch is done (``--json`` writes them row by row), so memory stays flat
in ``-n``; ``--beam WIDTH`` prints the best sequences with their log-probabilities instead.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ScratchgenError
from .options import add_decoding_options, check_label, declare_files


def _generate(args: argparse.Namespace) -> int:
    """Print samples as each batch is done, so memory stays flat in -n (JSON too: written row by row)."""
    from ..decoding import beam_search, iter_generate
    from ..io import load

    model = load(args.model)
    tok = model.tokenizer_
    prompt = tok.tokenize(args.prompt) if args.prompt else None
    unk = "unk" if args.unk_prompt else "error"
    if args.label is not None:
        check_label(model, args.label)
    if args.min_tokens > args.max_tokens:
        raise ScratchgenError(f"--min-tokens {args.min_tokens} is more than --max-tokens {args.max_tokens}")
    if args.beam is not None:
        if args.n is not None and args.n > args.beam:
            raise ScratchgenError(f"-n {args.n} asks for more sequences than the beam keeps (--beam {args.beam})")
        results = beam_search(
            model,
            width=args.beam,
            prompt=prompt,
            max_tokens=args.max_tokens,
            min_tokens=args.min_tokens,
            banned=args.ban,
            n=args.n or 1,
            prompt_oov=unk,
            allow_unk=args.allow_unk,
            label=_beam_label(model, args.label),
        )
        batches = iter([[{"text": tok.detokenize(t), "tokens": t, "logprob": lp} for t, lp in results]])
    else:
        samples = iter_generate(
            model,
            n=5 if args.n is None else args.n,
            prompt=prompt,
            max_tokens=args.max_tokens,
            min_tokens=args.min_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            repetition_penalty=args.repetition_penalty,
            banned=args.ban,
            stop=args.stop,
            allow_unk=args.allow_unk,
            seed=args.seed,
            prompt_oov=unk,
            label=args.label,
        )
        batches = ([{"text": tok.detokenize(t), "tokens": t} for t in batch] for batch, _ in samples)
    first = True
    if args.json:
        sys.stdout.write('{"samples": [')
    for batch in batches:
        for row in batch:
            if args.json:
                sys.stdout.write(("" if first else ", ") + json.dumps(row, ensure_ascii=False))
            else:
                print(row["text"] if "logprob" not in row else f"{row['logprob']:.4f}\t{row['text']}")
            first = False
        sys.stdout.flush()
    if args.json:
        sys.stdout.write("]}\n")
    return 0


def _beam_label(model, label: str | None) -> str | None:
    """Beam search maximises log P(x | c): a labelled model needs ``--label`` (one line naming the labels)."""
    from ..errors import LabelError

    known = getattr(model, "labels_", None)
    if label is None and known is not None:
        raise LabelError(f"--beam on a labelled model needs --label, one of: {', '.join(known.names)}")
    return label


def register(commands, train) -> None:
    """Add ``generate``: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = commands.add_parser(
        "generate",
        help="sample text from a saved model",
        description="Sample (or beam-search) sequences from a saved model.",
    )
    p.add_argument("model", metavar="MODEL")
    add_decoding_options(p)
    p.add_argument(
        "--label",
        default=None,
        metavar="L",
        help="a model trained with --labelled: draw from P(text | L) (default: a label drawn from the prior "
        "for each sequence; --beam needs one)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object with the samples")
    declare_files(p, inputs=("model",))
    p.set_defaults(func=_generate)
