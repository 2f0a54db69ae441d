"""(being written)"""
def generate(model, n=1, **kw): raise NotImplementedError
def beam_search(model, width=4, **kw): raise NotImplementedError
