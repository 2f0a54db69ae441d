"""(being written)"""
def run_demo(args): raise NotImplementedError
