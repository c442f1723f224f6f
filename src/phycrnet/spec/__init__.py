"""Problem specifications: schema, expressions, grids, initial values and the catalog.

``load_spec`` turns a catalog name, a YAML file or text, or a mapping into a
:class:`~phycrnet.spec.problem.Problem`, the compiled form every solver consumes.
"""

from phycrnet.spec.grid import SIDES, Axis, Grid
from phycrnet.spec.problem import BoundaryCondition, Parameter, Problem, compile_spec, load_spec

__all__ = ["SIDES", "Axis", "Grid", "BoundaryCondition", "Parameter", "Problem", "compile_spec", "load_spec"]
