"""Which class a model file names: the registry that :func:`scratchgen.io.load` reads.

A model file stores its class by name (``"NGramModel"``). Turning the name back into a class must
not require importing every family first, nor fill a table as a side effect of ``import scratchgen``.
So the registry has two parts:

- ``BUILTIN_MODELS``: the name of every built-in class and the module that defines it. It is plain
  data; the module is imported only when a file of that class is loaded (``model_class``).
- classes registered explicitly with :func:`register_model`: a model written outside scratchgen
  registers itself when its module is imported, and is then loadable like a built-in one.

``MODEL_REGISTRY`` is a read-only view of both: its keys are every known class name (no import
happens to list them), and looking a name up imports that class's module if need be.

The dependency is one-way: this module imports nothing of scratchgen but its errors, and both
:mod:`scratchgen.model` and :mod:`scratchgen.io` import it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from .errors import NotFittedError

if TYPE_CHECKING:  # for the annotations only: importing model.py here would make a circle
    from .model import LanguageModel

__all__ = ["BUILTIN_MODELS", "MODEL_REGISTRY", "model_class", "register_model"]

#: Every built-in model class by name, with the module that defines it (imported on demand).
BUILTIN_MODELS: dict[str, str] = {
    "UniformModel": "scratchgen.baseline",
    "UnigramModel": "scratchgen.baseline",
    "GrammarModel": "scratchgen.grammar.model",
    "NGramModel": "scratchgen.ngram.model",
    "RNNModel": "scratchgen.nn.rnn",
    "MLPModel": "scratchgen.nn.mlp",
    "TransformerModel": "scratchgen.nn.transformer",
}

_REGISTERED: dict[str, type[LanguageModel]] = {}


def register_model(cls: type[LanguageModel]) -> type[LanguageModel]:
    """Class decorator: make ``cls`` loadable by name from a model file."""
    _REGISTERED[cls.__name__] = cls
    return cls


def model_class(name: str) -> type[LanguageModel]:
    """The model class called ``name``: a registered one, or a built-in one imported now.

    >>> model_class("UnigramModel").__module__
    'scratchgen.baseline'
    """
    if name not in _REGISTERED and name in BUILTIN_MODELS:
        importlib.import_module(BUILTIN_MODELS[name])  # its @register_model runs on import
    try:
        return _REGISTERED[name]
    except KeyError:
        known = sorted(set(BUILTIN_MODELS) | set(_REGISTERED))
        raise NotFittedError(f"no model class named {name!r} (known: {known})") from None


class _Registry(Mapping):
    """Class name -> class for every known model; a lookup imports the class's module if need be."""

    def __getitem__(self, name: str) -> type[LanguageModel]:
        if name not in self:
            raise KeyError(name)
        return model_class(name)

    def __contains__(self, name: object) -> bool:
        return name in BUILTIN_MODELS or name in _REGISTERED

    def __iter__(self) -> Iterator[str]:
        return iter(list(BUILTIN_MODELS) + [n for n in _REGISTERED if n not in BUILTIN_MODELS])

    def __len__(self) -> int:
        return len(set(BUILTIN_MODELS) | set(_REGISTERED))

    def __repr__(self) -> str:
        return f"MODEL_REGISTRY({sorted(self)})"


#: Every known model class by name (built-in and registered); see the module docstring.
MODEL_REGISTRY: Mapping[str, type[LanguageModel]] = _Registry()
