"""Reference solutions of a spec's problem, self-converged on grids finer than the spec's.

:func:`solve_reference` (py-pde finite volumes, any boundary conditions; or, with
``method="spectral"``, the pseudo-spectral solver) and :func:`solve_spectral_reference`
(fully periodic problems) return solution datasets on the spec grid with an error estimate.
"""

from phycrnet.reference.solver import solve_reference
from phycrnet.reference.spectral import solve_spectral_reference

__all__ = ["solve_reference", "solve_spectral_reference"]
