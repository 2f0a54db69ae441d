"""``scratchgen generate``: sample (or beam-search) text from a saved model.

    scratchgen generate MODEL [--label L] [--prompt TEXT] [-n N] [--max-tokens N] [--temperature T] ...
    scratchgen generate MODEL --grammar GRAMMAR [--exact [--particles N]]

A model trained with ``--labelled`` draws from P(x | L) with ``--label L``; without it, each sequence's
label is drawn from the prior P(c) first (samples of the marginal P(x)). Beam search needs a label.
Samples are printed as each batch is done (``--json`` writes them row by row), so memory stays flat
in ``-n``; ``--beam WIDTH`` prints the best sequences with their log-probabilities instead.

``--grammar`` holds the samples to a grammar's language (a grammar file, a Tracery .json or
``builtin:NAME``): masked decoding (:mod:`scratchgen.constraint`), or with ``--exact`` the exact
conditional by sequential Monte Carlo (:mod:`scratchgen.smc`), whose estimate of P_model(L(G)) is
printed on stderr as one line (and is ``language_prob`` in ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import ScratchgenError
from .options import add_decoding_options, check_label, declare_files, positive_int


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
    if args.exact and args.grammar is None:
        raise ScratchgenError("--exact samples P(x | x in L(G)): it needs --grammar")
    if args.particles is not None and not args.exact:
        raise ScratchgenError("--particles is the number of particles of --exact: give --exact too")
    if args.exact and args.beam is not None:
        raise ScratchgenError("--exact samples; --beam searches: give one of them")
    grammar = None
    if args.grammar is not None:
        from ..constraint import GrammarConstraint

        grammar = GrammarConstraint.for_model(args.grammar, model)  # made once, checked before any output
    extra: dict[str, float] = {}
    note = ""  # one line for stderr, after the samples
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
            grammar=grammar,
        )
        batches = iter([[{"text": tok.detokenize(t), "tokens": t, "logprob": lp} for t, lp in results]])
    elif args.exact:
        batches, extra, note = _exact(args, model, grammar, prompt, unk)
    else:
        samples = iter_generate(model, grammar=grammar, **_sampling_options(args, prompt, unk))
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
        tail = "".join(f", {json.dumps(k)}: {_json_number(v)}" for k, v in extra.items())
        sys.stdout.write(f"]{tail}}}\n")
    if note:
        sys.stdout.flush()
        print(note, file=sys.stderr)
    return 0


def _sampling_options(args: argparse.Namespace, prompt, unk: str) -> dict:
    """The decoding options sampling takes from the command line (plain and exact sampling alike)."""
    return {
        "n": 5 if args.n is None else args.n,
        "prompt": prompt,
        "max_tokens": args.max_tokens,
        "min_tokens": args.min_tokens,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "repetition_penalty": args.repetition_penalty,
        "banned": args.ban,
        "stop": args.stop,
        "allow_unk": args.allow_unk,
        "seed": args.seed,
        "prompt_oov": unk,
        "label": args.label,
    }


def _beam_label(model, label: str | None) -> str | None:
    """Beam search maximises log P(x | c): a labelled model needs ``--label`` (one line naming the labels)."""
    from ..errors import LabelError

    known = getattr(model, "labels_", None)
    if label is None and known is not None:
        raise LabelError(f"--beam on a labelled model needs --label, one of: {', '.join(known.names)}")
    return label


def _exact(args: argparse.Namespace, model, grammar, prompt, unk: str):
    """``--exact``: the samples (one batch of rows), the JSON keys of the P(L(G)) estimate, its stderr line."""
    from ..smc import sample_exact

    tok = model.tokenizer_
    exact = sample_exact(
        model,
        grammar=grammar,
        particles=64 if args.particles is None else args.particles,
        **_sampling_options(args, prompt, unk),
    )
    error = "" if exact.standard_error != exact.standard_error else f" +- {exact.standard_error:.3g}"
    note = (
        f"P_model(L(G)) estimate: {exact.estimate:.6g}{error} (mean of {len(exact.log_estimates)} sequential "
        f"Monte Carlo runs of {exact.particles} particles)"
    )
    extra = {"language_prob": exact.estimate, "language_prob_stderr": exact.standard_error}
    return iter([[{"text": tok.detokenize(t), "tokens": t} for t in exact.sequences]]), extra, note


def _json_number(value: float) -> str:
    """A float as JSON: null for a NaN (no value, e.g. the standard error of one run)."""
    return "null" if value != value else json.dumps(value)


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
    group = p.add_argument_group("grammar constraint")
    group.add_argument(
        "--grammar",
        default=None,
        metavar="GRAMMAR",
        help="only sentences of this grammar (a grammar file, a Tracery .json or builtin:NAME); every token of "
        "the grammar must be in the model's vocabulary",
    )
    group.add_argument(
        "--exact",
        action="store_true",
        help="sample P(x | x in the grammar) exactly by sequential Monte Carlo (masking alone does not) and "
        "print the estimate of P(grammar) on stderr; temperature 1, no top-k/top-p/repetition penalty",
    )
    group.add_argument(
        "--particles",
        type=positive_int,
        default=None,
        metavar="N",
        help="particles of each --exact run, one run a sample (default 64)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object with the samples")
    declare_files(p, inputs=("model", "grammar"))
    p.set_defaults(func=_generate)
