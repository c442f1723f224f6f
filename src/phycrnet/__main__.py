"""``python -m phycrnet``: the ``phycrnet`` command (also under ``torchrun -m phycrnet``)."""

import sys

from phycrnet.cli import main

sys.exit(main())
