"""Packages whose public names are imported the first time they are used (PEP 562).

``import scratchgen`` and ``import scratchgen.cli.main`` must not pay for NumPy and every model family: the
command line's ``--help`` would otherwise spend most of its time importing code it never runs. So each
package's ``__init__.py`` lists its public names with the submodule that defines each, and calls
:func:`lazy_package`; ``from scratchgen.ngram import NGramModel`` then imports ``scratchgen.ngram.model`` at
that moment, and only it. What a type checker reads is the same list written as imports under
``if TYPE_CHECKING:`` (a test checks that the two agree).

Two details the plain module-level ``__getattr__`` of PEP 562 leaves open, which :class:`LazyPackage`
settles:

- every submodule is an attribute too, imported on first use (``scratchgen.ngram.counting``), as it was when
  the package imported all of them;
- a package may export a function named like the submodule that defines it (``scratchgen.explain``, the
  function of ``scratchgen/explain.py``). When Python imports that submodule it binds the module to the
  package's attribute of the same name; the package refuses that binding, so the name keeps meaning the
  function, whichever of the two was imported first.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
import types
from collections.abc import Mapping
from typing import Any

__all__ = ["LazyPackage", "lazy_package"]


class LazyPackage(types.ModuleType):
    """A package module whose public names (``_lazy_names``: name -> defining submodule) load on first use."""

    _lazy_names: Mapping[str, str]

    def __getattr__(self, name: str) -> Any:  # called only for a name not yet in the namespace
        where = self.__dict__.get("_lazy_names", {}).get(name)
        if where is not None:
            value = getattr(importlib.import_module(where, self.__name__), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{self.__name__}.{name}") is not None:
            value = importlib.import_module(f"{self.__name__}.{name}")
        else:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        self.__dict__[name] = value  # later uses find it directly
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        lazy = self.__dict__.get("_lazy_names", {})
        if isinstance(value, types.ModuleType) and name in lazy and value.__name__ == f"{self.__name__}.{name}":
            return  # the import system binding a submodule over the exported name of the same name: refused
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        submodules = {m.name for m in pkgutil.iter_modules(self.__path__)}
        return sorted(set(self.__dict__) | set(self._lazy_names) | submodules)


def lazy_package(module_name: str, names: Mapping[str, str]) -> None:
    """Make the package ``module_name`` import each of ``names`` (public name -> the relative name of the
    submodule that defines it, ``".model"``) from that submodule the first time it is used.

    Called at the end of the package's ``__init__.py`` with ``__name__``.

    Examples
    --------
    >>> import scratchgen.ngram
    >>> scratchgen.ngram.NGramModel.__module__  # lazy_package(__name__, {"NGramModel": ".model", ...})
    'scratchgen.ngram.model'
    """
    module = sys.modules[module_name]
    module.__dict__["_lazy_names"] = dict(names)
    module.__class__ = LazyPackage
