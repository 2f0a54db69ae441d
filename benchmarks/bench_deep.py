"""The deep family of issue 12: gated RNNs, the MLP language model and the Transformer.

One section shared by four parts, each in its own module so that they can grow apart:
``benchmarks/deep_gated.py`` (GRU, LSTM), ``benchmarks/deep_mlp.py`` (Bengio et al. 2003's MLP) and
``benchmarks/deep_transformer.py``, and the best recurrent models on tinyshakespeare in 10 CPU-minutes
(``benchmarks/deep_shakespeare.py``). Each gives ``<part>_rows(quick) -> str``, the markdown of its part; a
part whose module is not there yet is skipped (named in the section).

    python -m benchmarks --only deep            # full sizes
    python -m benchmarks --quick --only deep    # small sizes, a minute
"""

from __future__ import annotations

import importlib

from benchmarks.common import Section

PARTS = (
    ("deep_gated", "gated_rows"),
    ("deep_mlp", "mlp_rows"),
    ("deep_transformer", "transformer_rows"),
    ("deep_shakespeare", "shakespeare_rows"),
)


def run(quick: bool) -> Section:
    bodies, missing = [], []
    for module_name, function in PARTS:
        try:
            module = importlib.import_module(f"benchmarks.{module_name}")
        except ModuleNotFoundError as e:
            if e.name != f"benchmarks.{module_name}":
                raise  # a part that is there but cannot import is an error, not a skip
            missing.append(module_name)
            continue
        bodies.append(getattr(module, function)(quick))
    if missing:
        bodies.append("Not measured yet: " + ", ".join(f"`benchmarks/{m}.py`" for m in missing) + ".")
    return Section(
        name="deep",
        title="deep: GRU, LSTM, MLP and Transformer language models",
        body="\n\n".join(bodies),
        command="python -m benchmarks --quick --only deep" if quick else "python -m benchmarks --only deep",
    )
