"""The computational grid of a problem.

Convention (docs/design.md, "Grid convention"): on a periodic axis the N points are x_i = x0 + i*L/N, i = 0..N-1
(the endpoint x1 is the same point as x0 and is not stored); on a non-periodic axis the N
nodes run from x0 to x1 *including* both boundary nodes, x_i = x0 + i*L/(N-1). Arrays on
the grid have shape ``(ny, nx)``: rows are y, columns are x, row 0 is y = y0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The four sides of the rectangle and the axis (0 = x, 1 = y) each one is normal to.
SIDES: tuple[str, ...] = ("left", "right", "bottom", "top")
SIDE_AXIS: dict[str, int] = {"left": 0, "right": 0, "bottom": 1, "top": 1}
#: +1 when the outward normal points along the positive axis direction.
SIDE_SIGN: dict[str, int] = {"left": -1, "right": 1, "bottom": -1, "top": 1}


@dataclass(frozen=True)
class Axis:
    """One axis of the grid."""

    start: float
    end: float
    n: int
    periodic: bool

    @property
    def length(self) -> float:
        return self.end - self.start

    @property
    def spacing(self) -> float:
        """Distance between neighbouring points."""
        return self.length / (self.n if self.periodic else self.n - 1)

    @property
    def points(self) -> np.ndarray:
        """Coordinates of the points, shape ``(n,)``."""
        return self.start + self.spacing * np.arange(self.n, dtype=np.float64)


@dataclass(frozen=True)
class Grid:
    """A rectangular grid: ``x`` along columns, ``y`` along rows."""

    x: Axis
    y: Axis

    @property
    def shape(self) -> tuple[int, int]:
        """Array shape ``(ny, nx)``."""
        return (self.y.n, self.x.n)

    @property
    def periodic(self) -> tuple[bool, bool]:
        return (self.x.periodic, self.y.periodic)

    @property
    def spacing(self) -> tuple[float, float]:
        """``(dx, dy)``."""
        return (self.x.spacing, self.y.spacing)

    def axis(self, index: int) -> Axis:
        return self.x if index == 0 else self.y

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Coordinate arrays ``(X, Y)``, each of shape ``(ny, nx)``."""
        return np.meshgrid(self.x.points, self.y.points, indexing="xy")

    def side_coordinates(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates ``(x, y)`` of the nodes on ``side``, each of shape ``(n_along,)``.

        Along the left/right sides the nodes are ordered by y, along bottom/top by x.
        """
        if SIDE_AXIS[side] == 0:
            x_value = self.x.start if side == "left" else self.x.end
            return np.full(self.y.n, x_value), self.y.points
        y_value = self.y.start if side == "bottom" else self.y.end
        return self.x.points, np.full(self.x.n, y_value)
