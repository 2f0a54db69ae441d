"""The nn models in the contract suite: tiny RNNs trained briefly on TRAIN_TEXTS."""

from contract_case import TRAIN_TEXTS, Case

from scratchgen import MLPModel, RNNModel, Tokenizer, TransformerModel

CASES = [
    # one-hot inputs, one layer, float64, padded line batches
    Case("rnn-onehot", lambda: RNNModel(hidden=12, epochs=8, batch_size=3, seq_len=8, lr=1e-2,
                                        valid_fraction=0.0, seed=0).fit(TRAIN_TEXTS)),
    # embedding table, two layers, running-text streams (carried state), word level
    Case("rnn-emb-2layer-stream", lambda: RNNModel(hidden=10, layers=2, embedding=6, epochs=5, batch_size=2,
                                                   seq_len=4, lr=1e-2, running_text=True, valid_fraction=0.0,
                                                   seed=1, tokenizer=Tokenizer(level="word")).fit(TRAIN_TEXTS)),
    # Bengio's MLP: a window of 3 ids, padded line batches, float64
    Case("mlp-lines", lambda: MLPModel(context=3, embedding=5, hidden=12, epochs=8, batch_size=3, seq_len=8,
                                       lr=1e-2, valid_fraction=0.0, seed=0).fit(TRAIN_TEXTS)),
    # a window of 2 ids carried across the chunks of running text, word level, float32
    Case("mlp-stream-word", lambda: MLPModel(context=2, embedding=4, hidden=8, epochs=5, batch_size=2, seq_len=4,
                                             lr=1e-2, running_text=True, valid_fraction=0.0, seed=1,
                                             dtype="float32", tokenizer=Tokenizer(level="word")).fit(TRAIN_TEXTS)),
    # a GRU: one-hot inputs, two layers, padded line batches, float64
    Case("gru-onehot-2layer", lambda: RNNModel(cell="gru", hidden=10, layers=2, epochs=8, batch_size=3, seq_len=8,
                                               lr=1e-2, valid_fraction=0.0, seed=0).fit(TRAIN_TEXTS)),
    # an LSTM: embedding table, running-text streams (the state (h, c) carried), word level
    Case("lstm-emb-stream", lambda: RNNModel(cell="lstm", hidden=10, embedding=6, epochs=5, batch_size=2, seq_len=4,
                                             lr=1e-2, running_text=True, valid_fraction=0.0, seed=1,
                                             tokenizer=Tokenizer(level="word")).fit(TRAIN_TEXTS)),
    # the Transformer: 2 blocks, 2 heads, context 4 (lines longer than it are read through windows, eq. T4)
    Case("transformer-lines", lambda: TransformerModel(layers=2, heads=2, embedding=8, context=4, epochs=8,
                                                       batch_size=3, lr=1e-2, valid_fraction=0.0,
                                                       seed=0).fit(TRAIN_TEXTS)),
    # running text cut into windows, untied output, word level, float32
    Case("transformer-stream-word", lambda: TransformerModel(layers=1, heads=1, embedding=6, context=5, epochs=5,
                                                             batch_size=2, lr=1e-2, running_text=True,
                                                             tie_weights=False, valid_fraction=0.0, seed=1,
                                                             dtype="float32",
                                                             tokenizer=Tokenizer(level="word")).fit(TRAIN_TEXTS)),
]
