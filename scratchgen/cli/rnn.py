"""``scratchgen gradcheck`` and ``scratchgen train rnn``: the recurrent network on the command line.

    scratchgen gradcheck [--json] [--model rnn|gru|lstm] [--hidden N] [--layers L] [--embedding E] [--labels C]
                         [--seed S]
    scratchgen train rnn [--cell tanh|gru|lstm]
                         [--labelled] [--level char|word] [--hidden N] [--layers L] [--seq-len T] [--batch B] [--lr LR]
                         [--epochs E] [--seed S] [--valid-fraction F] [--dtype float32|float64]
                         [--checkpoint PATH] [--resume CHECKPOINT] [--curve CSV] CORPUS -o MODEL

Every option value is checked where it is parsed (a bad one is a usage error, exit 2). The files
are declared (:func:`scratchgen.cli.options.declare_files`): no output may be the corpus, and ``-o``,
``--curve`` and ``--plot`` may not be the checkpoint being resumed (``--checkpoint CK --resume CK``
is the ordinary way to go on). Ctrl-C (exit 130) and SIGTERM (exit 143) stop training alike: the old
model file stays, and a line says how to resume."""

from __future__ import annotations

import argparse

from .options import (
    add_text_options,
    add_training_options,
    declare_files,
    nonnegative_int,
    positive_float,
    positive_int,
    report_gradcheck,
    train_network,
)


def _gradcheck(args: argparse.Namespace) -> int:
    if args.model == "mlp":
        from ..nn.mlp import network_gradcheck

        errors, what = network_gradcheck(args.embedding, args.hidden, args.labels, args.seed)
        return report_gradcheck(args, errors, what)
    if args.model == "transformer":
        from ..nn.transformer import network_gradcheck as transformer_gradcheck

        errors, what = transformer_gradcheck(args.layers, args.embedding, args.labels, args.seed)
        return report_gradcheck(args, errors, what)
    import numpy as np

    from ..nn.conditioning import input_label_width, label_params
    from ..nn.gradcheck import gradcheck_piece
    from ..nn.layers import network_backward, network_forward
    from ..nn.optim import init_params

    rng = np.random.default_rng(args.seed)
    V, B, T, H, L = 7, 3, 5, args.hidden, args.layers
    forward, backward = network_forward, network_backward
    if args.model == "rnn":
        params = init_params(V, H, L, args.embedding, rng)
        if args.labels:  # the label tables L_in and L_h.l (eqs. L1-L4 of nn/conditioning)
            params.update(label_params(args.labels, input_label_width(V, H, args.embedding), H, L))
        state_shape: tuple = (L, B, H)
    else:  # a GRU or an LSTM (nn/gated.py, nn/cells.py); an LSTM's state is [h, c]
        from ..nn.gated import GatedNetwork, gated_label_params, gated_label_width, init_gated_params

        net = GatedNetwork(args.model, L)
        forward, backward = net.forward, net.backward
        params = init_gated_params(args.model, V, H, L, args.embedding, rng)
        if args.labels:  # L_in, L_h.l and an LSTM's L_c.l
            width = gated_label_width(V, args.embedding)
            params.update(gated_label_params(args.model, args.labels, width, H, L))
        state_shape = (L, B, H) if args.model == "gru" else (2, L, B, H)
    params = {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in params.items()}  # no zero biases
    ids = rng.integers(0, V, size=(B, T))  # (B, T)
    targets = rng.integers(0, V, size=(B, T))  # (B, T)
    mask = rng.random((B, T)) < 0.75  # (B, T) some padding
    h0 = rng.normal(scale=0.5, size=state_shape)  # (L, B, H), or (2, L, B, H): a carried-in state
    inputs: tuple = (ids, targets, mask, h0)
    if args.labels:  # a fresh start from the labels' states: h0 is theirs, its gradient reaches L_h
        inputs = (ids, targets, mask, None, None, rng.integers(0, args.labels, size=B))
    errors = gradcheck_piece(forward, backward, params, inputs, seed=args.seed)
    if not args.labels:
        errors["h0"] = errors.pop("input[3]")
    state = f"{args.labels} labels (their input vectors and start states)" if args.labels else "carried state"
    return report_gradcheck(
        args,
        errors,
        f"gradient check ({args.model}): {L} layer(s), hidden {H}, embedding {args.embedding}, V {V}, B {B}, T {T}, "
        f"with padding mask and {state} (float64, central differences)",
    )


def _train_rnn(args: argparse.Namespace) -> int:
    from ..nn.rnn import RNNModel

    def make(tokenizer):
        return RNNModel(
            cell=args.cell,
            hidden=args.hidden,
            layers=args.layers,
            embedding=args.embedding or None,
            dtype=args.dtype,
            tokenizer=tokenizer,
        )

    return train_network(args, make, "RNN", f"{args.cell}, hidden {args.hidden}, {args.layers} layer(s)")


def register(commands, train) -> None:
    """Add this group's commands: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = commands.add_parser(
        "gradcheck",
        help="check a network's hand-written gradients against finite differences",
        description="Build a small random RNN, GRU, LSTM or MLP (--model; with a padding mask and a carried-in state) "
        "and compare every gradient with central finite differences in float64; "
        "print the relative error of each parameter. Exit 1 if any is too large.",
    )
    p.add_argument(
        "--model",
        choices=("rnn", "gru", "lstm", "mlp", "transformer"),
        default="rnn",
        help="the network: the tanh RNN, a GRU, an LSTM, the MLP (--context 3) or a Transformer (2 heads, context 5) "
        "(default rnn)",
    )
    p.add_argument("--hidden", type=positive_int, default=6, help="hidden width (default 6)")
    p.add_argument("--layers", type=positive_int, default=2, help="layers (default 2)")
    p.add_argument(
        "--embedding",
        type=nonnegative_int,
        default=4,
        help="embedding width; 0 for one-hot inputs (default 4)",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--labels",
        type=nonnegative_int,
        default=0,
        metavar="C",
        help="check a labelled network with C labels: its label vectors and label start states "
        "(instead of a carried-in state); 0: unlabelled (default 0)",
    )
    p.add_argument(
        "--tolerance",
        type=positive_float,
        default=1e-6,
        help="largest accepted relative error (default 1e-6)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object: relative_errors, worst, ok")
    p.set_defaults(func=_gradcheck)

    p = train.add_parser(
        "rnn",
        help="recurrent network (tanh RNN, GRU or LSTM: --cell) trained by backpropagation through time",
        description="Train a recurrent language model, a tanh RNN, a GRU or an LSTM (--cell), with "
        "hand-written forward and backward passes. "
        "A file with blank lines is read as running text (parallel streams, state "
        "carried between chunks), one without as one sequence a line (padded, masked "
        "batches); --mode overrides. Defaults train a sensible character model on "
        "names or on tinyshakespeare.",
    )
    p.add_argument("corpus", metavar="CORPUS", help="text file")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to save the model (.npz)")
    p.add_argument(
        "--labelled",
        action="store_true",
        help="CORPUS is one example a line, LABEL<TAB>TEXT: learn P(text | label) with a label vector added "
        "to every input and a label start state (padded batches of lines)",
    )
    p.add_argument(
        "--cell",
        choices=("tanh", "gru", "lstm"),
        default="tanh",
        help="the recurrent layer: vanilla tanh, GRU or LSTM (default tanh)",
    )
    p.add_argument("--hidden", type=positive_int, default=256, help="hidden width H (default 256)")
    p.add_argument("--layers", type=positive_int, default=1, help="stacked layers L (default 1)")
    p.add_argument(
        "--embedding", type=nonnegative_int, default=None, help="embedding width E; 0 or not given: one-hot inputs"
    )
    add_training_options(p)
    add_text_options(p)
    # --resume is checked against -o, --curve and --plot in _train_rnn, not here: --checkpoint CK
    # --resume CK (the same file, read then rewritten) is the ordinary way to go on
    declare_files(p, inputs=("corpus",), outputs=("output", "curve", "plot", "checkpoint"))
    p.set_defaults(func=_train_rnn, mode=None)
