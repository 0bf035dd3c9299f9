"""``python -m gradflow``: the ``gradflow`` command (:mod:`gradflow.cli`)."""

import sys

from .cli import main

sys.exit(main())
