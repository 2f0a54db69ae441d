"""``scratchgen train transformer`` and ``scratchgen gradcheck --model transformer``: GPT-2's layout.

    scratchgen train transformer [--layers L] [--heads A] [--embedding E] [--context T] [--untied] [--labelled]
                                 [the training options of train rnn: --batch --lr --epochs --optimizer ...
                                 --resume --curve] CORPUS -o MODEL

The training options and the run (corpus reading, checkpoints, Ctrl-C and SIGTERM, the summary line) are
those of ``train rnn`` (:func:`scratchgen.cli.options.add_training_options`,
:func:`scratchgen.cli.rnn.train_network`); only the architecture is the Transformer's. A chunk is one
window of ``--context`` tokens (``--seq-len`` is ignored), and there is no dropout.
"""

from __future__ import annotations

import argparse

from .options import add_text_options, add_training_options, declare_files, int_in, positive_int, train_network


def _train_transformer(args: argparse.Namespace) -> int:
    from ..nn.transformer import TransformerModel

    def make(tokenizer):
        return TransformerModel(
            layers=args.layers,
            heads=args.heads,
            embedding=args.embedding,
            context=args.context,
            tie_weights=not args.untied,
            dtype=args.dtype,
            tokenizer=tokenizer,
        )

    shape = f"{args.layers} block(s), {args.heads} heads, embedding {args.embedding}, context {args.context}"
    return train_network(args, make, "Transformer", shape)


def register(commands, train) -> None:
    """Add ``train transformer`` (``gradcheck --model transformer`` is an option of ``gradcheck``, in :mod:`.rnn`)."""
    p = train.add_parser(
        "transformer",
        help="a small decoder-only Transformer (GPT-2's layout)",
        description="Train a GPT-2-style Transformer (token and position embeddings, pre-LN blocks of causal "
        "multi-head attention and a GELU MLP, hand-written forward and backward passes). Each chunk is one "
        "window of --context tokens; text longer than the context is read through windows that slide by half "
        "of it. The training options are those of train rnn (no --dropout; --seq-len is the context).",
    )
    p.add_argument("corpus", metavar="CORPUS", help="text file")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to save the model (.npz)")
    p.add_argument(
        "--labelled",
        action="store_true",
        help="CORPUS is one example a line, LABEL<TAB>TEXT: learn P(text | label), a label vector added to the "
        "token embeddings at every position (padded batches of lines)",
    )
    p.add_argument("--layers", type=int_in(1, 1000), default=4, help="blocks L (default 4)")
    p.add_argument("--heads", type=positive_int, default=4, help="attention heads A, dividing --embedding (default 4)")
    p.add_argument("--embedding", type=positive_int, default=64, help="model width E (default 64)")
    p.add_argument(
        "--context", type=int_in(1, 65536), default=32, metavar="T", help="positions seen at once (default 32)"
    )
    p.add_argument("--untied", action="store_true", help="a separate output matrix (default: tied to the embedding)")
    add_training_options(p)
    add_text_options(p)
    declare_files(p, inputs=("corpus",), outputs=("output", "curve", "plot", "checkpoint"))
    p.set_defaults(func=_train_transformer, mode=None)
