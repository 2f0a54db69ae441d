"""Checkpoints of a training run: everything needed to go on as if the run had never stopped.

A checkpoint is written by the one ``.npz`` + JSON-header writer (:func:`scratchgen.io.write_archive`)
and read by its reader. Its header holds the model's architecture (``"model"``), the training
recipe (``"config"``, a :class:`~scratchgen.nn.config.TrainConfig`), the vocabulary, a checksum of
the training data and the position of the run (epoch, step, random generators, moving averages);
its arrays are the parameters (``param/``), the optimiser state (``opt/``), the best and the last
good parameters (``best/``, ``good/``, ``goodopt/``) and the carried hidden state (``h``). A labelled
run also stores its label set (``"labels"``: names and counts; null unlabelled): the label tables are
parameters like any other, and the checksum of the data covers each sequence's label id.

The header's ``"format"`` is ``scratchgen-checkpoint`` for every deep model, and ``"model_class"``
names the model's class (``RNNModel``, ``MLPModel``, ``TransformerModel``): a run resumes only from a
checkpoint of its own class. Checkpoints written before the MLP and the Transformer existed say
``scratchgen-rnn-checkpoint`` and have no class: they are RNNModel checkpoints, and are still read.

Format versions: 3 (this one) splits the options into ``model`` and ``config``; 2 (before) kept
them all in ``model`` under the header array ``__checkpoint__``, and is still read. Older files
(no version) are refused with a clear message.
"""

from __future__ import annotations

import dataclasses

from ..errors import ModelFileError
from ..io import read_archive, write_archive
from ..schema import ArraySpec, validate_arrays
from .config import FLAGS

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "RESUME_OPTIONS", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "scratchgen-checkpoint"
RNN_CHECKPOINT_FORMAT = "scratchgen-rnn-checkpoint"  # before the MLP and the Transformer: RNNModel's only
CHECKPOINT_VERSION = 3  # 3: architecture and training config apart, the shared header array
READABLE_VERSIONS = (2, 3)  # 2: every option under "model", header array "__checkpoint__"

#: The options a resumed run must share with its checkpoint, and the flag that sets each.
#: Where files go, how often checkpoints are written, verbosity and time limits belong to the session
#: and may change, and so may the threads of a step (they change the result only by rounding);
#: everything that shapes the result is here.
RESUME_OPTIONS = {name: flag for name, flag in FLAGS.items() if name not in ("time_limit", "clock", "threads")}


def _option_text(name: str, value) -> str:
    """An option's value as the command line spells it."""
    if name == "running_text":
        return {True: "chunks", False: "lines"}.get(value, repr(value))
    if value is None:
        return {"clip": "0 (no clipping)", "patience": "0 (never)", "embedding": "not given (one-hot)"}.get(
            name, "not given"
        )
    return f"{value:g}" if isinstance(value, float) else str(value)


def _options(trainer) -> dict:
    """The architecture and the training recipe of a run, as one dict (the keys of RESUME_OPTIONS and more)."""
    return {**trainer.m.get_params(), **dataclasses.asdict(trainer.config)}


def save_checkpoint(trainer, path: str) -> None:
    """Write the whole state of ``trainer``'s run to ``path`` (atomically)."""
    arrays = {f"param/{k}": v for k, v in trainer.params.items()}
    arrays.update({f"opt/{k}": v for k, v in trainer.opt.state.items()})
    if trainer.best is not None:
        arrays.update({f"best/{k}": v for k, v in trainer.best.items()})
    if trainer.good is not None:
        arrays.update({f"good/{k}": v for k, v in trainer.good[0].items()})
        arrays.update({f"goodopt/{k}": v for k, v in trainer.good[1].items()})
    if trainer.h is not None:
        arrays["h"] = trainer.h
    t = trainer
    header = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_class": type(t.m).__name__,
        "model": t.m.get_params(),
        "config": dataclasses.asdict(t.config),
        "vocab": t.m.vocab_.to_list(),
        "labels": _labels_of(t.m),
        "data": t.fingerprint(),
        "epoch": t.epoch,
        "step_in_epoch": t.step_in_epoch,
        "step": t.step,
        "tokens": t.tokens,
        "lr_scale": t.lr_scale,
        "restores": t.restores,
        "best_loss": t.best_loss,
        "bad_evals": t.bad_evals,
        "opt_steps": t.opt.steps,
        "good_opt_steps": None if t.good is None else t.good[2],
        "rng": t.rng.bit_generator.state,
        "epoch_rng": t.epoch_rng_state,
        "drop_rng": t.drop_rng.bit_generator.state,
        "history": t.history,
        "stopped": t.stopped,
        "ema": t.ema,
        "ema_steps": t.ema_steps,
        "worse_than_uniform": t.worse_than_uniform,
    }
    write_archive(path, header, arrays)


def _compare_options(trainer, path: str, theirs: dict) -> None:
    """Refuse a checkpoint made with other options, naming the first that differs."""
    ours = _options(trainer)
    if theirs.get("cell", "tanh") != ours.get("cell", "tanh"):  # written before cell existed: tanh
        raise ModelFileError(
            f"cannot resume from {path!r}: --cell is {theirs.get('cell', 'tanh')} in the checkpoint, "
            f"{ours.get('cell', 'tanh')} here"
        )
    schedule = trainer.config.lr_schedule
    extendable = schedule == "constant" and theirs.get("lr_schedule") == "constant"
    for name, flag in RESUME_OPTIONS.items():
        a, b = theirs.get(name), ours.get(name)
        if a == b:
            continue
        if name in ("epochs", "max_steps") and extendable:
            continue  # a constant rate may simply go on longer
        problem = f"{flag} is {_option_text(name, a)} in the checkpoint, {_option_text(name, b)} here"
        if name in ("epochs", "max_steps"):
            problem += (
                f": the {schedule} schedule spans the whole run, so changing its length "
                f"would change the learning rate of every step; resume with {flag} "
                f"{_option_text(name, a)} (only a constant --schedule can be extended)"
            )
        raise ModelFileError(f"cannot resume from {path!r}: {problem}")


def load_checkpoint(trainer, path: str) -> None:
    """Put the state of the run saved at ``path`` into ``trainer``, after checking it belongs to this run.

    Raises
    ------
    ModelFileError
        Not a (readable, current) checkpoint, another corpus, other options (the first named), or
        arrays of the wrong shape.
    """
    header, arrays = read_archive(path, "checkpoint", "resume from", legacy_keys=("__checkpoint__",))
    ours = type(trainer.m).__name__
    if header.get("format") == RNN_CHECKPOINT_FORMAT:
        header.setdefault("model_class", "RNNModel")
    elif header.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"cannot resume from {path!r}: not a scratchgen training checkpoint")
    if header.get("model_class") != ours:
        raise ModelFileError(
            f"cannot resume from {path!r}: it was written by a run training {header.get('model_class')}, "
            f"this run trains {ours}"
        )
    if header.get("version") not in READABLE_VERSIONS:
        older = (
            "an older scratchgen (no format version)"
            if header.get("version") is None
            else (f"checkpoint format {header.get('version')!r}")
        )
        raise ModelFileError(
            f"cannot resume from {path!r}: it was written by {older}, and this scratchgen "
            f"reads checkpoint formats {' and '.join(map(str, READABLE_VERSIONS))} only; "
            f"start afresh without --resume"
        )
    try:
        _restore(trainer, path, header, arrays)
    except ModelFileError as e:
        if str(e).startswith("cannot resume"):
            raise
        raise ModelFileError(f"cannot resume from {path!r}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise ModelFileError(
            f"cannot resume from {path!r}: not a valid {type(trainer.m).__name__} checkpoint ({type(e).__name__}: {e})"
        ) from None


def _options_of(header: dict) -> dict:
    """The options a checkpoint was made with: version 3 keeps ``model`` and ``config`` apart, 2 kept one dict."""
    parts = [header.get("model")] + ([header.get("config")] if header["version"] >= 3 else [])
    objects = [p for p in parts if isinstance(p, dict)]
    if len(objects) != len(parts):
        raise TypeError("its options are not a JSON object")
    return {k: v for p in objects for k, v in p.items()}


def _labels_of(model):
    """The model's label set as the header stores it (None for an unlabelled model)."""
    labels = getattr(model, "labels_", None)
    return None if labels is None else labels.to_dict()


def _compare_labels(t, path: str, theirs) -> None:
    """Refuse a checkpoint of a run with other labels (or labelled against unlabelled), naming both."""
    ours = _labels_of(t.m)
    if theirs == ours:
        return

    def shown(d):
        return "no labels" if d is None else "labels " + ", ".join(map(repr, d["names"]))

    raise ModelFileError(
        f"cannot resume from {path!r}: it was trained with {shown(theirs)}, this run has {shown(ours)} "
        "(--labelled and the corpus's labels must be the same)"
    )


def _restore(t, path: str, header: dict, arrays: dict) -> None:
    _compare_options(t, path, _options_of(header))
    _compare_labels(t, path, header.get("labels"))
    if header["vocab"] != t.m.vocab_.to_list() or header["data"] != t.fingerprint():
        raise ModelFileError(
            f"cannot resume from {path!r}: it was made on another corpus, or with other "
            "text options (--level, --lowercase, --mode, --chunk-size, --encoding)"
        )

    def group(prefix):
        return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

    like_params = {k: ArraySpec(v.shape) for k, v in t.params.items()}
    namespace = {"sgd": "sgd.momentum.", "adagrad": "adagrad.G."}.get(t.config.optimizer, "adam.")
    opt_state = group("opt/")
    opt_spec = {
        k: ArraySpec(t.params[k.split(".", 2)[-1]].shape)
        for k in opt_state
        if k.startswith(namespace) and k.split(".", 2)[-1] in t.params
    }
    where = f"{type(t.m).__name__} checkpoint"
    validate_arrays(where, group("param/"), like_params)
    validate_arrays(where, opt_state, opt_spec)
    for k, v in group("param/").items():
        t.params[k][...] = v
    t.opt.state = {k: v.astype(t.params[k.split(".", 2)[-1]].dtype) for k, v in opt_state.items()}
    t.opt.steps = int(header["opt_steps"])
    best, good = group("best/"), group("good/")
    if best:
        validate_arrays(where, best, like_params)
    if good:
        validate_arrays(where, good, like_params)
    t.best = best or None
    t.good = (good, group("goodopt/"), header["good_opt_steps"]) if good else None
    t.h = arrays.get("h")
    t.epoch, t.step_in_epoch = int(header["epoch"]), int(header["step_in_epoch"])
    t.step, t.tokens = int(header["step"]), int(header["tokens"])
    t.lr_scale, t.best_loss = float(header["lr_scale"]), float(header["best_loss"])
    t.bad_evals, t.restores = int(header["bad_evals"]), int(header["restores"])
    t.rng.bit_generator.state = header["rng"]
    t.epoch_rng_state = header["epoch_rng"]
    t.drop_rng.bit_generator.state = header["drop_rng"]
    t.history = list(header["history"])
    t.stopped = str(header["stopped"] or "")
    t.ema, t.ema_steps = float(header["ema"]), int(header["ema_steps"])
    t.worse_than_uniform = bool(header["worse_than_uniform"])
    # a run stopped by its clock, or by a step limit that is now higher, goes on
    max_steps = t.config.max_steps
    if t.stopped.startswith("reached time_limit") or (
        t.stopped.startswith("reached max_steps") and not (max_steps and t.step >= max_steps)
    ):
        t.stopped = ""
