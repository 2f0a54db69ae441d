"""The rule generator: probabilistic context-free grammars, checked, sampled and scored exactly."""

from .analysis import Analysis, analyze
from .chart import ChartParser
from .rules import Grammar, Rule, Terminal, Tree, parse_grammar
from .sampling import Sampler, sample

__all__ = ["Grammar", "Rule", "Terminal", "Tree", "parse_grammar", "analyze", "Analysis", "ChartParser",
           "Sampler", "sample"]
