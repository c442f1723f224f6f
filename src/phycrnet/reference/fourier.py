"""Fourier pseudo-spectral right-hand sides on a refined, fully periodic grid.

The fine grid has ``M = r*N`` points per axis at ``x0 + j*L/M`` (spec point ``i`` is fine
point ``i*r``, :mod:`phycrnet.reference.grid`). Fields are held as their half spectra
``rfft2(u, norm="forward")`` of shape ``(n_fields, My, Mx//2 + 1)``, so a coefficient is
the amplitude of its Fourier mode in the field's own units.

Spatial operators are exact on the grid's trigonometric interpolant: ``d_dx -> i*kx``,
``d2_dx2 -> -kx**2``, ``laplace -> -(kx**2 + ky**2)`` with ``kx = 2*pi*m/Lx``; the odd
derivatives drop the Nyquist mode of an even axis (its derivative is not real). The
equations are evaluated pointwise on the fine grid (:func:`phycrnet.spec.expressions.evaluate`)
and transformed back.

Each field's own constant diffusion ``D_x*d2_dx2 + D_y*d2_dy2``
(:func:`phycrnet.spec.expressions.constant_diffusivities`) is split off as the linear
part ``L``, diagonal in Fourier space, which the time stepper integrates exactly; the rest
``N`` is the equation with that term subtracted symbolically (so ``nu*laplace(u)`` costs no
transform at all). ``N`` is dealiased by the 2/3 rule: modes with ``3*|m| >= M`` on either
axis are removed from it, which makes quadratic products exact on the kept modes. The state
is projected onto the kept modes at the start, so it never leaves them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from phycrnet.errors import PhycrnetError
from phycrnet.reference.grid import initial_state, refined_axes
from phycrnet.reference.static import freeze_static
from phycrnet.spec.expressions import OPERATORS, constant_diffusivities, evaluate, operator_calls, substitute

if TYPE_CHECKING:
    from phycrnet.spec.problem import Problem

__all__ = ["FourierGrid", "SpectralRightHandSide", "split_diffusion"]


class FourierGrid:
    """Wavenumbers, dealiasing mask and transforms of the grid ``refinement`` times finer.

    Arrays in physical space have the spec's layout ``(..., My, Mx)``; half spectra
    ``(..., My, Mx//2 + 1)``.
    """

    def __init__(self, problem: Problem, refinement: int) -> None:
        self.refinement = refinement
        self.axes = refined_axes(problem.grid, refinement)
        self.shape = (self.axes[1].cells, self.axes[0].cells)  # (My, Mx)
        my, mx = self.shape
        mode_x = np.arange(mx // 2 + 1)[None, :]
        mode_y = np.abs(np.fft.fftfreq(my, 1.0 / my))[:, None]
        half = (my, mx // 2 + 1)
        self.kx = np.broadcast_to((2 * np.pi / problem.grid.x.length) * mode_x, half)
        self.ky = np.broadcast_to((2 * np.pi / problem.grid.y.length) * np.fft.fftfreq(my, 1.0 / my)[:, None], half)
        self.nyquist = (2 * mode_x == mx, 2 * mode_y == my)
        self.mask = (3 * mode_y < my) & (3 * mode_x < mx)
        # Parseval: mean(u**2) = sum over the full spectrum; the half spectrum counts its
        # inner columns twice (column 0 and an even axis's Nyquist column once).
        self.weights = np.full(mx // 2 + 1, 2.0)
        self.weights[0] = 1.0
        if mx % 2 == 0:
            self.weights[-1] = 1.0
        x, y = np.meshgrid(self.axes[0].centres, self.axes[1].centres, indexing="xy")
        self.coordinates: dict[str, Any] = {"x": x, "y": y}

    def forward(self, values: np.ndarray) -> np.ndarray:
        """Half spectra of real values ``(..., My, Mx)`` (amplitudes, ``norm="forward"``)."""
        return np.fft.rfft2(values, norm="forward")

    def inverse(self, coefficients: np.ndarray) -> np.ndarray:
        """Real values ``(..., My, Mx)`` of half spectra."""
        return np.fft.irfft2(coefficients, s=self.shape, norm="forward")

    def symbol(self, name: str) -> np.ndarray:
        """The Fourier symbol of a spatial operator, shape ``(My, Mx//2 + 1)``."""
        if name == "d_dx":
            return 1j * np.where(self.nyquist[0], 0.0, self.kx)
        if name == "d_dy":
            return 1j * np.where(self.nyquist[1], 0.0, self.ky)
        if name == "d2_dx2":
            return -np.square(self.kx)
        if name == "d2_dy2":
            return -np.square(self.ky)
        if name == "laplace":
            return -(np.square(self.kx) + np.square(self.ky))
        raise PhycrnetError(f"spectral reference: unknown operator {name!r}")

    def initial_spectra(self, problem: Problem) -> np.ndarray:
        """The initial state on the fine grid, projected onto the kept modes: ``(C, My, Mx//2 + 1)``.

        Expression initial values are evaluated on the fine grid; values known only on the
        spec grid (files, random fields) are Fourier-interpolated, exact for band-limited data.
        """
        values = np.transpose(initial_state(problem, self.axes), (0, 2, 1))
        return self.forward(values) * self.mask

    def sample(self, coefficients: np.ndarray) -> np.ndarray:
        """Values at the spec's nodes, every ``refinement``-th fine point: ``(C, ny, nx)``."""
        r = self.refinement
        return self.inverse(coefficients)[..., ::r, ::r]


def split_diffusion(problem: Problem, grid: FourierGrid) -> tuple[list[sympy.Expr], np.ndarray]:
    """Each equation without its field's constant diffusion, and that diffusion's symbol.

    Returns:
        ``(rest, linear)``: the equations (parameters substituted) minus
        ``D_x*d2_dx2(u) + D_y*d2_dy2(u)`` (as ``D*laplace(u)`` when that cancels more), and
        the symbols ``-(D_x*kx**2 + D_y*ky**2)``, shape ``(C, My, Mx//2 + 1)`` (zero for fields
        without constant diffusion). ``rest + L u`` is the equation exactly.
    """
    values = problem.parameter_values()
    diffusivities = constant_diffusivities(problem.equations, values)
    rest, linear = [], np.zeros((len(problem.fields), *grid.symbol("laplace").shape))
    for i, name in enumerate(problem.fields):
        expr = substitute(problem.equations[name], values)
        if name in diffusivities:
            dx, dy = diffusivities[name]
            field = sympy.Symbol(name)
            candidates = [expr - dx * OPERATORS["d2_dx2"](field) - dy * OPERATORS["d2_dy2"](field)]
            if dx == dy:
                candidates.append(expr - dx * OPERATORS["laplace"](field))
            expr = min(candidates, key=lambda e: len(operator_calls(e)))
            linear[i] = dx * grid.symbol("d2_dx2") + dy * grid.symbol("d2_dy2")
        rest.append(expr)
    return rest, linear


class SpectralRightHandSide:
    """``N(t, state)``: the dealiased half spectra of the equations without their linear part.

    Call as ``rhs(t, state)`` with ``state`` of shape ``(C, My, Mx//2 + 1)``; the full
    right-hand side is ``linear * state + rhs(t, state)``.
    """

    def __init__(self, problem: Problem, grid: FourierGrid) -> None:
        self.grid = grid
        self.fields = list(problem.fields)
        equations, self.linear = split_diffusion(problem, grid)
        self.coordinates = dict(grid.coordinates)
        self.equations = [freeze_static(expr, self.coordinates) for expr in equations]
        self.symbols = {name: grid.symbol(name) for name in OPERATORS}

    def __call__(self, t: float, state: np.ndarray) -> np.ndarray:
        values = self.grid.inverse(state)
        env = {**{f: values[i] for i, f in enumerate(self.fields)}, **self.coordinates, "t": t}
        cache: dict[tuple[str, sympy.Expr], np.ndarray] = {}  # operator calls shared by equations

        def operator(name: str, argument: sympy.Expr, walk: Any) -> np.ndarray:
            key = (name, argument)
            if key not in cache:
                if argument.is_Symbol and argument.name in self.fields:
                    spectrum = state[self.fields.index(argument.name)]
                else:
                    spectrum = self.grid.forward(np.broadcast_to(walk(argument), self.grid.shape))
                cache[key] = self.grid.inverse(self.symbols[name] * spectrum)
            return cache[key]

        out = np.empty(values.shape)
        for i, expr in enumerate(self.equations):
            out[i] = evaluate(expr, env, operator)
        result = self.grid.forward(out)
        result *= self.grid.mask
        return result
