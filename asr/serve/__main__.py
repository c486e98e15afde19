"""``python -m asr.serve``: see :mod:`asr.serve.server`."""
import sys

from asr.serve.server import main

if __name__ == "__main__":
    sys.exit(main())
