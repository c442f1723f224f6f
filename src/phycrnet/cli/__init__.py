"""The ``phycrnet`` command line (``phycrnet --help``; ``python -m phycrnet`` alike)."""

from phycrnet.cli import solvers, outputs, sweep  # noqa: F401, I001  (registers the commands, solvers first)
from phycrnet.cli.app import app, main, run

__all__ = ["app", "main", "run"]
