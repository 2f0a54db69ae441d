"""The rule generator: probabilistic context-free grammars, checked, sampled and scored exactly.

- :mod:`~scratchgen.grammar.rules`: rules, the text format (NLTK PCFG strings), trees;
- :mod:`~scratchgen.grammar.textformat`: the reader of that text format, line by line;
- :mod:`~scratchgen.grammar.tracery`: Tracery JSON import;
- :mod:`~scratchgen.grammar.analysis`: reachability, productivity, left recursion, consistency;
- :mod:`~scratchgen.grammar.sampling`: top-down sampling with an explicit stack and limits;
- :mod:`~scratchgen.grammar.reference`: inside, Viterbi and prefix probabilities in plain loops (read first);
- :mod:`~scratchgen.grammar.chart`: :class:`ChartParser`, the entry to the fast algorithms, each a module
  reading one :class:`~scratchgen.grammar.compile.CompiledGrammar`: :mod:`~scratchgen.grammar.compile`,
  :mod:`~scratchgen.grammar.inside`, :mod:`~scratchgen.grammar.prefix`, :mod:`~scratchgen.grammar.outside`
  (inside-outside counts), :mod:`~scratchgen.grammar.viterbi`;
- :mod:`~scratchgen.grammar.reference_earley` (read first), :mod:`~scratchgen.grammar.earley`: prefix
  probabilities left to right, an Earley state advanced one token at a time (the stepping interface);
- :mod:`~scratchgen.grammar.model`: :class:`GrammarModel`, the grammar behind the shared protocol;
- :mod:`~scratchgen.grammar.builtin`: the grammars shipped with the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_package

if TYPE_CHECKING:  # what type checkers and editors see; at run time these come from the lazy names below
    from .analysis import Analysis, analyze
    from .builtin import builtin, builtin_names  # type: ignore[no-redef]
    from .chart import ChartParser
    from .model import GrammarModel
    from .rules import Grammar, Rule, Terminal, Tree, parse_grammar
    from .sampling import Sampler, sample
    from .tracery import from_tracery

__all__ = [
    "Grammar",
    "Rule",
    "Terminal",
    "Tree",
    "parse_grammar",
    "from_tracery",
    "analyze",
    "Analysis",
    "ChartParser",
    "Sampler",
    "sample",
    "GrammarModel",
    "builtin",
    "builtin_names",
]

# Each public name by the module that defines it, imported on first use (scratchgen.lazy).
lazy_package(
    __name__,
    {
        "Analysis": ".analysis",
        "analyze": ".analysis",
        "builtin": ".builtin",
        "builtin_names": ".builtin",
        "ChartParser": ".chart",
        "GrammarModel": ".model",
        "Grammar": ".rules",
        "Rule": ".rules",
        "Terminal": ".rules",
        "Tree": ".rules",
        "parse_grammar": ".rules",
        "Sampler": ".sampling",
        "sample": ".sampling",
        "from_tracery": ".tracery",
    },
)
