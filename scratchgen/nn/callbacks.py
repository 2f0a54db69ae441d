"""What a training run does besides training: callbacks the :class:`~scratchgen.nn.train.Trainer` calls.

A run is the loop of :mod:`scratchgen.nn.train`; everything that touches the outside world (a
progress bar, checkpoint files, the learning-curve CSV) is a callback handed to it, so the loop
has no flags for them and a test can add its own (stop at step 8, count the steps, ...).

The trainer calls, in this order::

    on_start(trainer)                       once, before the first step
    on_step(trainer)                        after every successful optimiser step
    on_note(trainer, message)               a line worth showing (an evaluation, a restore, the stop)
    after_step(trainer, epoch_end)          at the end of every step, successful or not
    close(trainer)                          always, also when the run raised
    on_end(trainer)                         after a run that ended normally
"""

from __future__ import annotations

from ..progress import Progress

__all__ = ["Callback", "ShowProgress", "Checkpoint", "Curve"]


class Callback:
    """Does nothing at every hook; subclasses override the hooks they need."""

    shows_notes = False  # True: warnings go to on_note, not to stderr

    def on_start(self, trainer) -> None:
        pass

    def on_step(self, trainer) -> None:
        pass

    def on_note(self, trainer, message: str) -> None:
        pass

    def after_step(self, trainer, epoch_end: bool) -> None:
        pass

    def close(self, trainer) -> None:
        pass

    def on_end(self, trainer) -> None:
        pass


class ShowProgress(Callback):
    """A progress bar with the time left on a terminal, plain lines otherwise (:class:`Progress`)."""

    shows_notes = True

    def __init__(self) -> None:
        self.progress: Progress | None = None

    def on_start(self, trainer) -> None:
        self.progress = Progress(trainer.remaining_steps, desc="training", unit="steps").__enter__()

    def on_step(self, trainer) -> None:
        if self.progress is not None:  # between on_start and close
            self.progress.update(1, loss=trainer.train_loss)

    def on_note(self, trainer, message: str) -> None:
        if self.progress is not None:
            self.progress.write(message)

    def close(self, trainer) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)
            self.progress = None


class Checkpoint(Callback):
    """Write a checkpoint to ``path`` every ``every`` steps, at the end of every epoch and at the stop."""

    def __init__(self, path: str, every: int = 200) -> None:
        self.path, self.every = path, every

    def after_step(self, trainer, epoch_end: bool) -> None:
        if trainer.step % self.every == 0 or epoch_end or trainer.stopped:
            trainer.save_checkpoint(self.path)


class Curve(Callback):
    """Write the learning curve (:func:`scratchgen.evaluation.curves.write_curve_csv`) when the run ends.

    Also after resuming a run that had already finished: its history is the whole curve.
    ``written`` says whether a file was written (not without a single evaluation).
    """

    def __init__(self, path: str) -> None:
        self.path, self.written = path, False

    def on_end(self, trainer) -> None:
        from ..evaluation.curves import write_curve_csv

        if trainer.history:
            write_curve_csv(trainer.history, self.path)
            self.written = True
