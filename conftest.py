"""Root conftest: its presence puts the repository root on ``sys.path``, so the tests and the
doctests of ``scratchgen/`` both exercise the source tree they sit beside."""

import os

from hypothesis import settings

# In CI (CI=true) every property test draws the same examples on every run, so a result does not depend on
# the luck of the draw; on a developer's machine they explore new examples each run.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
