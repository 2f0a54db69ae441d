"""The exceptions scratchgen raises for bad input.

Every one of them is a ``ValueError`` subclass, so ``except ValueError`` catches all user errors,
and the command line turns any of them into one line on stderr instead of a traceback.
"""

from __future__ import annotations

__all__ = [
    "ScratchgenError",
    "VocabularyError",
    "ModelFileError",
    "NotFittedError",
    "CorpusError",
    "GrammarError",
    "ArpaError",
    "DecodingError",
    "OutputError",
    "ResourceError",
    "TrainingError",
    "LabelError",
]


class ScratchgenError(ValueError):
    """Base class of every error scratchgen raises for bad input."""


class VocabularyError(ScratchgenError):
    """A token or id that the vocabulary does not know, or a bad vocabulary setting."""


class ModelFileError(ScratchgenError):
    """A model file that is truncated, corrupted, of another version or not a scratchgen model."""


class NotFittedError(ScratchgenError):
    """A model used before ``fit`` (or ``load``) gave it its learned state."""


class CorpusError(ScratchgenError):
    """A corpus that cannot be read or is unusable (empty, wrong type)."""


class GrammarError(ScratchgenError):
    """A grammar that cannot be parsed or used; ``line`` and ``column`` locate it when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.line = line
        self.column = column
        where = ""
        if line is not None:
            where = f"line {line}" + (f", column {column}" if column is not None else "") + ": "
        super().__init__(where + message)


class ArpaError(ScratchgenError):
    """A malformed ARPA file; the message names the line number and the problem."""


class DecodingError(ScratchgenError):
    """A bad decoding setting (temperature, top-k, top-p, lengths, prompt)."""


class OutputError(ScratchgenError):
    """An output that cannot or must not be written: it is an input, read-only, or its folder is missing."""


class ResourceError(ScratchgenError):
    """A request whose memory (or time) estimate is beyond what this machine or a documented limit allows."""


class TrainingError(ScratchgenError):
    """Training that cannot give a usable model (non-finite weights, a checkpoint of other settings)."""


class LabelError(ScratchgenError):
    """A label the model does not know, a label given to an unlabelled model, or a bad labelled corpus."""
