"""The deep family: a vanilla RNN whose forward and backward passes are written out by hand.

- :mod:`scratchgen.nn.layers`: the pieces (embedding, tanh RNN layer, stack, output projection,
  masked softmax cross-entropy), each a ``forward``/``backward`` pair of plain functions;
- :mod:`scratchgen.nn.gradcheck`: central finite differences against any of them;
- :mod:`scratchgen.nn.optim`: SGD with momentum, Adagrad, Adam/AdamW, clipping, schedules, initialisation;
- :mod:`scratchgen.nn.data`: parallel streams of running text, padded and masked sequences;
- :mod:`scratchgen.nn.train`: the training loop, validation, early stopping, checkpoints;
- :mod:`scratchgen.nn.rnn`: :class:`RNNModel`, the network behind the shared protocol.
"""

from .gradcheck import gradcheck, gradcheck_piece, relative_error
from .rnn import RNNModel

__all__ = ["RNNModel", "gradcheck", "gradcheck_piece", "relative_error"]
