"""``python -m scratchgen`` and the ``scratchgen`` console script: the command line.

:func:`run` is the entry point of both. Importing the command line compiles and imports a few dozen modules
(a noticeable part of a second where no bytecode cache can be written): Ctrl-C or SIGTERM in that time stops
it with one line and exit 130 or 143, as :func:`scratchgen.cli.main` does from then on, instead of a
traceback or a silent death. (Before this module runs, in the interpreter's own start-up, the system's
defaults still apply: SIGTERM ends the process at once, which a shell also reports as 143.)
"""

import signal
import sys


class _TerminatedEarly(KeyboardInterrupt):
    """SIGTERM while the command line is being imported (:func:`run`)."""


def _terminate(signum, frame):
    raise _TerminatedEarly()


def run() -> int:
    """Import the command line and run :func:`scratchgen.cli.main` on ``sys.argv``; the exit status."""
    previous = signal.signal(signal.SIGTERM, _terminate)  # cli.main installs its own while it runs
    try:
        from .cli import main

        return main()
    except _TerminatedEarly:
        print("scratchgen: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("scratchgen: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # not when a worker process (multiprocessing's spawn, Dask) re-imports this module
    sys.exit(run())
