"""``python -m scratchgen``: the command line."""

import sys

from .cli import main

if __name__ == "__main__":  # not when a worker process (multiprocessing's spawn, Dask) re-imports this module
    sys.exit(main())
