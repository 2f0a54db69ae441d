"""``scratchgen train mlp`` and ``scratchgen gradcheck --model mlp``: Bengio's MLP on the command line.

    scratchgen train mlp [--context N] [--embedding E] [--hidden H] [--labelled] [the training options of
                         train rnn: --seq-len --batch --lr --epochs --optimizer ... --resume --curve] CORPUS -o MODEL

The training options and the run (corpus reading, checkpoints, Ctrl-C and SIGTERM, the summary line) are
those of ``train rnn`` (:func:`scratchgen.cli.options.add_training_options`,
:func:`scratchgen.cli.options.train_network`); only the architecture is the MLP's own.
``gradcheck --model mlp`` is an option of ``gradcheck`` (:mod:`.rnn`), which checks
:func:`scratchgen.nn.mlp.network_gradcheck`.
"""

from __future__ import annotations

import argparse

from .options import add_text_options, add_training_options, declare_files, int_in, positive_int, train_network


def _train_mlp(args: argparse.Namespace) -> int:
    from ..nn.mlp import MLPModel

    def make(tokenizer):
        return MLPModel(
            context=args.context, embedding=args.embedding, hidden=args.hidden, dtype=args.dtype, tokenizer=tokenizer
        )

    shape = f"context {args.context}, embedding {args.embedding}, hidden {args.hidden}"
    return train_network(args, make, "MLP", shape)


def register(commands, train) -> None:
    """Add ``train mlp``."""
    p = train.add_parser(
        "mlp",
        help="Bengio et al. 2003's MLP language model (a window of N tokens)",
        description="Train the neural twin of an order-(N+1) n-gram: the N previous tokens, embedded side by "
        "side, one tanh hidden layer, a softmax (hand-written forward and backward passes). Running text "
        "carries the window across chunks; a line corpus starts each line from N <s>. The training options "
        "are those of train rnn (no --dropout).",
    )
    p.add_argument("corpus", metavar="CORPUS", help="text file")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to save the model (.npz)")
    p.add_argument(
        "--labelled",
        action="store_true",
        help="CORPUS is one example a line, LABEL<TAB>TEXT: learn P(text | label), the label read as one more "
        "slot of the window (padded batches of lines)",
    )
    p.add_argument(
        "--context", type=int_in(1, 4096), default=3, metavar="N", help="tokens the next is predicted from (default 3)"
    )
    p.add_argument("--embedding", type=positive_int, default=64, help="embedding width E (default 64)")
    p.add_argument("--hidden", type=positive_int, default=256, help="hidden width H (default 256)")
    add_training_options(p)
    add_text_options(p)
    declare_files(p, inputs=("corpus",), outputs=("output", "curve", "plot", "checkpoint"))
    p.set_defaults(func=_train_mlp, mode=None)
