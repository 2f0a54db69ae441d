"""The deep family: a vanilla RNN, GRU and LSTM cells, Bengio's MLP and a small Transformer, every forward
and backward pass written out by hand, all trained by one loop (:mod:`scratchgen.nn.network`,
:mod:`scratchgen.nn.train`).

- :mod:`scratchgen.nn.layers`: the pieces (embedding, tanh RNN layer, stack, output projection,
  masked softmax cross-entropy), each a ``forward``/``backward`` pair of plain functions;
- :mod:`scratchgen.nn.conditioning`: the label pieces of a labelled model P(x | c) (a label vector added
  to the input at every step, a label start state), plain functions any deep model can reuse;
- :mod:`scratchgen.nn.cells`: the gated cells, GRU and LSTM (one step, a layer over time, stacks);
- :mod:`scratchgen.nn.gated`: the GRU/LSTM network of ``RNNModel(cell="gru"|"lstm")`` (labels, stepping),
  and :mod:`scratchgen.nn.gated_reference`, the same numbers one sequence at a time;
- :mod:`scratchgen.nn.attention`: the Transformer's pieces (LayerNorm, GELU, causal multi-head attention, the
  pre-LN block, embeddings, the key/value cache);
- :mod:`scratchgen.nn.mlp_lm`: Bengio et al. 2003's MLP language model (a window of n tokens);
- :mod:`scratchgen.nn.gradcheck`: central finite differences against any of them;
- :mod:`scratchgen.nn.optim`: SGD with momentum, Adagrad, Adam/AdamW, clipping, schedules, initialisation;
- :mod:`scratchgen.nn.data`: parallel streams of running text, padded and masked sequences;
- :mod:`scratchgen.nn.config`: :class:`TrainConfig`, the training recipe (saved with checkpoints only);
- :mod:`scratchgen.nn.train`: :class:`Trainer`, the loop, validation, early stopping, the NaN guard;
- :mod:`scratchgen.nn.losses`: the loss of held-out text (running streams or padded sequences);
- :mod:`scratchgen.nn.memory`: the memory a training run needs, estimated before it starts;
- :mod:`scratchgen.nn.callbacks`: what a run does besides training (progress, checkpoints, the curve);
- :mod:`scratchgen.nn.checkpoint`: the checkpoint file, written and read to resume bit for bit;
- :mod:`scratchgen.nn.neural`: :class:`NeuralModel`, what the three models share (the recipe, ``fit``, the files);
- :mod:`scratchgen.nn.rnn`: :class:`RNNModel`, the network (its architecture) behind the shared protocol;
- :mod:`scratchgen.nn.transformer`: :class:`TransformerModel`, GPT-2's layout behind the same protocol;
- :mod:`scratchgen.nn.mlp`: :class:`MLPModel`, Bengio's MLP behind the protocol (the state: the last N ids).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_package

if TYPE_CHECKING:  # what type checkers and editors see; at run time these come from the lazy names below
    from .callbacks import Callback, Checkpoint, Curve, ShowProgress
    from .config import TrainConfig
    from .gradcheck import gradcheck, gradcheck_piece, relative_error  # type: ignore[no-redef]
    from .mlp import MLPModel
    from .rnn import RNNModel
    from .train import Trainer, TrainingWarning
    from .transformer import TransformerModel

__all__ = [
    "RNNModel",
    "MLPModel",
    "TransformerModel",
    "TrainConfig",
    "Trainer",
    "TrainingWarning",
    "Callback",
    "ShowProgress",
    "Checkpoint",
    "Curve",
    "gradcheck",
    "gradcheck_piece",
    "relative_error",
]

# Each public name by the module that defines it, imported on first use (scratchgen.lazy).
lazy_package(
    __name__,
    {
        "Callback": ".callbacks",
        "Checkpoint": ".callbacks",
        "Curve": ".callbacks",
        "ShowProgress": ".callbacks",
        "TrainConfig": ".config",
        "gradcheck": ".gradcheck",
        "gradcheck_piece": ".gradcheck",
        "relative_error": ".gradcheck",
        "MLPModel": ".mlp",
        "RNNModel": ".rnn",
        "Trainer": ".train",
        "TrainingWarning": ".train",
        "TransformerModel": ".transformer",
    },
)
