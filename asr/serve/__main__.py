"""``python -m asr.serve``: see :mod:`asr.serve.server`."""
import sys

from asr.serve.server import main

sys.exit(main())
