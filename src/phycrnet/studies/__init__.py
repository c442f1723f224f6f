"""Several runs at once: ``compare`` (every method on one problem beside the classical
solvers) and ``sweep`` (many members, on torchrun)."""
