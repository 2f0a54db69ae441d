"""``scratchgen gradcheck`` and ``scratchgen train rnn``: the recurrent network on the command line.

    scratchgen gradcheck [--json] [--hidden N] [--layers L] [--embedding E] [--labels C] [--seed S]
    scratchgen train rnn [--labelled] [--level char|word] [--hidden N] [--layers L] [--seq-len T] [--batch B] [--lr LR]
                         [--epochs E] [--seed S] [--valid-fraction F] [--dtype float32|float64]
                         [--checkpoint PATH] [--resume CHECKPOINT] [--curve CSV] CORPUS -o MODEL

Every option value is checked where it is parsed (a bad one is a usage error, exit 2). The files
are declared (:func:`scratchgen.cli.options.declare_files`): no output may be the corpus, and ``-o``,
``--curve`` and ``--plot`` may not be the checkpoint being resumed (``--checkpoint CK --resume CK``
is the ordinary way to go on). Ctrl-C (exit 130) and SIGTERM (exit 143) stop training alike: the old
model file stays, and a line says how to resume."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading

import numpy as np

from .options import (
    add_text_options,
    add_training_options,
    declare_files,
    nonnegative_int,
    positive_float,
    positive_int,
    print_json,
    read_corpus_args,
    tokenizer_from_args,
)


def _gradcheck(args: argparse.Namespace) -> int:
    if args.model == "mlp":
        from .mlp import gradcheck_mlp

        return gradcheck_mlp(args)
    if args.model == "transformer":
        from .transformer import gradcheck_transformer

        return gradcheck_transformer(args)
    from ..nn.conditioning import input_label_width, label_params
    from ..nn.gradcheck import gradcheck_piece
    from ..nn.layers import network_backward, network_forward
    from ..nn.optim import init_params

    rng = np.random.default_rng(args.seed)
    V, B, T, H, L = 7, 3, 5, args.hidden, args.layers
    params = init_params(V, H, L, args.embedding, rng)
    if args.labels:  # the label tables L_in and L_h.l (eqs. L1-L4 of nn/conditioning)
        params.update(label_params(args.labels, input_label_width(V, H, args.embedding), H, L))
    params = {k: v + rng.normal(scale=0.1, size=v.shape) for k, v in params.items()}  # no zero biases
    ids = rng.integers(0, V, size=(B, T))  # (B, T)
    targets = rng.integers(0, V, size=(B, T))  # (B, T)
    mask = rng.random((B, T)) < 0.75  # (B, T) some padding
    h0 = rng.normal(scale=0.5, size=(L, B, H))  # (L, B, H) a carried-in state
    inputs: tuple = (ids, targets, mask, h0)
    if args.labels:  # a fresh start from the labels' states: h0 is theirs, its gradient reaches L_h
        inputs = (ids, targets, mask, None, None, rng.integers(0, args.labels, size=B))
    errors = gradcheck_piece(network_forward, network_backward, params, inputs, seed=args.seed)
    if not args.labels:
        errors["h0"] = errors.pop("input[3]")
    state = f"{args.labels} labels (their input vectors and start states)" if args.labels else "carried state"
    return report_gradcheck(
        args,
        errors,
        f"gradient check: {L} layer(s), hidden {H}, embedding {args.embedding}, V {V}, B {B}, T {T}, "
        f"with padding mask and {state} (float64, central differences)",
    )


def report_gradcheck(args: argparse.Namespace, errors: dict, what: str) -> int:
    """Print the relative error of each parameter (or one JSON object with ``--json``); 1 if any is too large."""
    worst = max(errors.values(), key=lambda e: np.inf if np.isnan(e) else e)  # a NaN is the worst
    ok = all(e < args.tolerance for e in errors.values())  # False for NaN too
    if args.json:
        print_json({"relative_errors": errors, "worst": worst, "tolerance": args.tolerance, "ok": ok})
    else:
        print(what)
        for name, err in errors.items():
            print(f"  {name:8s} relative error {err:.2e}")
        print(f"worst {worst:.2e}: {'OK' if ok else 'FAILED'} (tolerance {args.tolerance:g})")
    return 0 if ok else 1


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python is, so it unwinds exactly like Ctrl-C (nothing half-written)."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Within this block SIGTERM stops training the way Ctrl-C does (only in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped_early(args: argparse.Namespace, signal_name: str) -> None:
    """What an interrupted run left behind, and how to go on."""
    print(
        f"scratchgen: {signal_name}: training stopped; {args.output} was not written (any old file there is unchanged)",
        file=sys.stderr,
    )
    if args.checkpoint and os.path.exists(args.checkpoint):
        print(
            f"scratchgen: the last checkpoint is {args.checkpoint}: resume with the same command and "
            f"--resume {args.checkpoint}",
            file=sys.stderr,
        )
    else:
        print(
            "scratchgen: no checkpoint was written, so the progress is lost; use --checkpoint PATH to be able to "
            "resume",
            file=sys.stderr,
        )


def _default_curve(args: argparse.Namespace) -> str:
    """MODEL's name with .curve.csv, refused before training if that is one of the inputs."""
    from ..errors import OutputError
    from ..io import check_output

    curve = os.path.splitext(args.output)[0] + ".curve.csv"
    try:
        check_output(curve, [args.corpus, args.resume])
    except OutputError as e:
        reason = str(e).split(": ", 1)[-1].split("; ")[0]
        raise OutputError(
            f"the learning curve would go to {curve!r} (MODEL's name with .curve.csv), but {reason}; give --curve CSV"
        ) from None
    return curve


def _validation_note(args: argparse.Namespace, corpus) -> str:
    """Why there is no validation loss, in the command line's words."""
    if args.valid_fraction == 0:
        return "no validation data (--valid-fraction 0)"
    note = f"no validation data: {len(corpus)} sequence(s) leave none for --valid-fraction {args.valid_fraction:g}"
    if args.mode != "chunks":
        note += "; --mode chunks cuts a long text into pieces, so that a part can be held out"
    return note


def _train_config(args: argparse.Namespace):
    """The training recipe the options ask for (0 means "none" for --clip and --patience)."""
    from ..nn.config import TrainConfig

    return TrainConfig(
        seq_len=args.seq_len,
        batch_size=args.batch,
        lr=args.lr,
        epochs=args.epochs,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        dropout=args.dropout,
        lr_schedule=args.schedule,
        warmup=args.warmup,
        clip=args.clip or None,
        max_steps=args.max_steps,
        running_text=args.mode == "chunks",
        valid_fraction=args.valid_fraction,
        patience=args.patience or None,
        eval_interval=args.eval_every,
        min_count=args.min_count,
        seed=args.seed,
        time_limit=args.time_limit,
        clock=args.clock,
    )


def _callbacks(args: argparse.Namespace, curve_writer) -> list:
    """Progress (unless --quiet), checkpoints (with --checkpoint) and the learning curve."""
    from ..nn.callbacks import Callback, Checkpoint, ShowProgress

    callbacks: list[Callback] = [] if args.quiet else [ShowProgress()]
    if args.checkpoint:
        callbacks.append(Checkpoint(args.checkpoint, every=args.checkpoint_every))
    return callbacks + [curve_writer]


def _train_rnn(args: argparse.Namespace) -> int:
    from ..nn.rnn import RNNModel

    def make(tokenizer):
        return RNNModel(
            hidden=args.hidden,
            layers=args.layers,
            embedding=args.embedding or None,
            dtype=args.dtype,
            tokenizer=tokenizer,
        )

    return train_network(args, make, "RNN", f"hidden {args.hidden}, {args.layers} layer(s)")


def train_network(args: argparse.Namespace, make_model, family: str, shape: str) -> int:
    """Read the corpus, train ``make_model(tokenizer)`` by the options of :func:`add_training_options`, save it.

    ``family`` ("RNN", "MLP") and ``shape`` ("hidden 256, 1 layer(s)") name the model in the summary line.
    """
    from ..corpus import read_corpus as read_labelled
    from ..errors import CorpusError
    from ..io import check_output
    from ..nn.callbacks import Curve
    from ..text import is_running_text

    if args.resume:  # --checkpoint CK --resume CK is fine
        for output in (args.output, args.curve, args.plot):
            if output:
                check_output(output, [args.resume])
    curve = args.curve or _default_curve(args)
    if args.labelled and args.mode == "chunks":
        from ..errors import LabelError

        raise LabelError("--labelled reads one example a line (LABEL<TAB>TEXT): it cannot be --mode chunks")
    if args.labelled:
        args.mode, read_as = "lines", " of labelled lines"
    elif args.mode is None:
        args.mode = "chunks" if is_running_text(args.corpus, args.encoding) else "lines"
        read_as = f" read as {'running text' if args.mode == 'chunks' else 'one sequence a line'} (--mode {args.mode})"
    else:
        read_as = ""
    if args.plot:
        from ..evaluation.curves import require_matplotlib

        require_matplotlib()  # before training, not after an hour of it
    tokenizer = tokenizer_from_args(args)
    labels = None
    if args.labelled:
        labels, corpus = read_labelled(args.corpus, tokenizer, labelled=True, encoding=args.encoding)
        if not corpus:
            raise CorpusError(f"corpus {args.corpus!r} has no non-empty labelled example")
    else:
        corpus = read_corpus_args(args, args.corpus, tokenizer)
    model = make_model(tokenizer)
    curve_writer = Curve(curve)
    try:
        with _sigterm_as_interrupt():
            model.fit(
                corpus,
                labels=labels,
                config=_train_config(args),
                resume=args.resume,
                callbacks=_callbacks(args, curve_writer),
            )
    except _Terminated:
        _stopped_early(args, "terminated (SIGTERM)")
        return 143
    except KeyboardInterrupt:
        _stopped_early(args, "interrupted")
        return 130
    model.save(args.output)
    written = [curve] if curve_writer.written else []
    if args.plot and written:
        from ..evaluation.curves import plot_curve

        plot_curve(curve, args.plot, title=f"{family} training curve: {os.path.basename(args.output)}")
        written.append(args.plot)
    if written:
        print(f"learning curve: {', '.join(written)}", file=sys.stderr)
    print(_summary(args, model, corpus, read_as, f"{family} ({shape}"), file=sys.stderr)
    return 0


def _summary(args: argparse.Namespace, model, corpus, read_as: str, what: str) -> str:
    """The one line a training command ends with: the data, the vocabulary, the loss and the file."""
    from ..nn.train import worse_than_uniform

    V = len(model.vocab_)
    if not model.has_validation_:
        loss = _validation_note(args, corpus)
        if model.worse_than_uniform_:
            loss += f"; the training loss went well above ln V = {math.log(V):.2f} (worse than uniform): lower --lr"
    elif math.isfinite(model.valid_loss_):
        loss = f"best validation loss {model.valid_loss_:.4f} nats/token"
        if worse_than_uniform(model.valid_loss_, V):
            loss += (
                f", worse than a uniform guess (ln V = {math.log(V):.2f}): the network did not learn; "
                f"lower --lr (it is {args.lr:g})"
            )
    else:
        loss = "no finite validation loss"
    finished = "resumed a finished run, nothing trained; " if model.resumed_finished_ else ""
    if model.restores_:
        loss += (
            f"; the weights became non-finite {model.restores_} time(s) and were restored with a lower "
            "learning rate (consider a lower --lr)"
        )
    labelled = f", labels {', '.join(model.labels_.names)}" if model.labels_ is not None else ""
    return (
        f"trained {what}{labelled}) on {len(corpus)} sequences{read_as}, "
        f"vocabulary {V}, {finished}{loss}: {args.output}"
    )


def register(commands, train) -> None:
    """Add this group's commands: ``commands`` is the top-level subparsers, ``train`` those of ``train``."""
    p = commands.add_parser(
        "gradcheck",
        help="check a network's hand-written gradients against finite differences",
        description="Build a small random RNN (with a padding mask and a carried-in state) "
        "and compare every gradient with central finite differences in float64; "
        "print the relative error of each parameter. Exit 1 if any is too large.",
    )
    p.add_argument(
        "--model",
        choices=("rnn", "mlp", "transformer"),
        default="rnn",
        help="the network: rnn, mlp (--context 3) or transformer (2 heads, context 5) (default rnn)",
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
        help="vanilla RNN trained by backpropagation through time",
        description="Train a tanh RNN language model (hand-written forward and backward passes). "
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
