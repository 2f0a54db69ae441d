"""``scratchgen train mlp`` and ``scratchgen gradcheck --model mlp``: Bengio's MLP on the command line.

    scratchgen train mlp [--context N] [--embedding E] [--hidden H] [--labelled] [the training options of
                         train rnn: --seq-len --batch --lr --epochs --optimizer ... --resume --curve] CORPUS -o MODEL

The training options, the run (corpus reading, checkpoints, Ctrl-C and SIGTERM, the summary line) are
those of ``train rnn`` (:func:`scratchgen.cli.options.add_training_options`,
:func:`scratchgen.cli.rnn.train_network`); only the architecture is the MLP's own.
"""

from __future__ import annotations

import argparse

import numpy as np

from .options import add_text_options, add_training_options, declare_files, int_in, positive_int


def gradcheck_mlp(args: argparse.Namespace) -> int:
    """The MLP network's gradients (context 3, a padding mask, a carried window or C labels' slot) against
    central differences in float64, reported as ``gradcheck`` reports the RNN's."""
    from ..errors import ScratchgenError
    from ..nn.gradcheck import gradcheck
    from ..nn.mlp import MLPNetwork, init_mlp_params, label_mlp_params
    from .rnn import report_gradcheck

    if not args.embedding:
        raise ScratchgenError("the MLP needs an embedding table: --embedding must be at least 1 with --model mlp")
    rng = np.random.default_rng(args.seed)
    V, B, T, N, E, H = 7, 3, 5, 3, args.embedding, args.hidden
    params = init_mlp_params(V, N, E, H, rng)
    if args.labels:  # the label's slot: L_in and W_c (nn/mlp.py, eq. 3)
        params.update(label_mlp_params(args.labels, E, H, args.seed))
    params = {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in params.items()}  # no zero biases or rows
    ids = rng.integers(0, V, size=(B, T))  # (B, T)
    targets = rng.integers(0, V, size=(B, T))  # (B, T)
    mask = rng.random((B, T)) < 0.75  # (B, T) some padding
    window = rng.integers(0, V, size=(B, N))  # (B, N) a carried-in window
    inputs: tuple = (ids, targets, mask, window)
    if args.labels:
        inputs += (None, rng.integers(0, args.labels, size=B))
    net = MLPNetwork(N)

    def loss_and_grads(p: dict):
        (loss, _), cache = net.forward(p, inputs)
        return loss, net.backward(p, cache)[0]

    errors = gradcheck(loss_and_grads, params, seed=args.seed)
    state = f"{args.labels} labels (their slot: L_in, W_c)" if args.labels else "a carried window"
    return report_gradcheck(
        args,
        errors,
        f"gradient check: MLP, context {N}, embedding {E}, hidden {H}, V {V}, B {B}, T {T}, "
        f"with padding mask and {state} (float64, central differences)",
    )


def _train_mlp(args: argparse.Namespace) -> int:
    from ..nn.mlp import MLPModel
    from .rnn import train_network

    def make(tokenizer):
        return MLPModel(
            context=args.context, embedding=args.embedding, hidden=args.hidden, dtype=args.dtype, tokenizer=tokenizer
        )

    shape = f"context {args.context}, embedding {args.embedding}, hidden {args.hidden}"
    return train_network(args, make, "MLP", shape)


def register(commands, train) -> None:
    """Add ``train mlp`` (``gradcheck --model mlp`` is an option of ``gradcheck``, in :mod:`.rnn`)."""
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
