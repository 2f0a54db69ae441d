"""Root conftest: its presence puts the repository root on ``sys.path``, so the tests and the
doctests of ``scratchgen/`` both exercise the source tree they sit beside."""
