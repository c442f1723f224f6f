"""Tests of phycrnet.operators: finite-difference and spectral derivatives on the grid.

Convergence tests measure the observed order of accuracy

    p = log2(err(h) / err(h/2))

with ``err`` the max-norm error against the analytic derivative (computed with sympy), on
grids whose spacing halves exactly between levels (periodic axes: N = 32, 64, 128 points;
non-periodic axes: N = 33, 65, 129 nodes including both boundary nodes, see DESIGN.md).
Interior nodes and the closure nodes (the first/last ``r`` nodes of a non-periodic axis,
where the one-sided stencils act) are measured separately.

The domain is deliberately non-square and off the unit square, x in [-1, 2], y in [0, 0.5],
with nx != ny, so that swapping the axes or their spacings cannot go unnoticed.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
import torch

from phycrnet.discretisation.operators import (
    Derivatives,
    central_radius,
    central_weights,
    closure_weights,
    fd_weights,
    one_sided_weights,
)
from phycrnet.spec.grid import Axis, Grid

# The tensors here are tiny: intra-op threads only add overhead (and contention).
pytestmark = pytest.mark.usefixtures("single_thread")


X, Y = sp.symbols("x y")
X_DOMAIN = (-1.0, 2.0)
Y_DOMAIN = (0.0, 0.5)
OPERATORS = ("d_dx", "d_dy", "d2_dx2", "d2_dy2", "laplace")
#: operator -> (axes it differentiates along, derivative order)
OPERATOR_AXES = {
    "d_dx": ((0,), 1),
    "d_dy": ((1,), 1),
    "d2_dx2": ((0,), 2),
    "d2_dy2": ((1,), 2),
    "laplace": ((0, 1), 2),
}
PERIODICITY = [(True, True), (True, False), (False, True), (False, False)]


# --------------------------------------------------------------------------- helpers


def analytic_function(periodic_x: bool, periodic_y: bool) -> sp.Expr:
    """A smooth test function ``A(x)*B(y) + C(x) + D(y)``.

    On a periodic axis the parts are smooth periodic functions of the angle
    theta = 2*pi*(s - s0)/L that are not band-limited (``exp(sin theta)``), so the finite
    differences have a genuine truncation error. On a non-periodic axis they are
    non-polynomial and not periodic over the domain: ``exp(x)``, ``sin(1.7x + 0.4)``,
    ``sin(2y)``, ``log(1.5 + y) + cos(5y + 0.6)``. (The phases avoid derivatives that vanish
    at a boundary, which would hide the leading error term there.)
    """
    if periodic_x:
        theta = 2 * sp.pi * (X - X_DOMAIN[0]) / (X_DOMAIN[1] - X_DOMAIN[0])
        a, c = sp.exp(sp.sin(theta)), sp.cos(2 * theta + sp.Rational(3, 10))
    else:
        a, c = sp.exp(X), sp.sin(sp.Rational(17, 10) * X + sp.Rational(2, 5))
    if periodic_y:
        theta = 2 * sp.pi * (Y - Y_DOMAIN[0]) / (Y_DOMAIN[1] - Y_DOMAIN[0])
        b, d = sp.sin(theta) + sp.Rational(1, 2), sp.exp(sp.cos(theta))
    else:
        b, d = sp.sin(2 * Y), sp.log(sp.Rational(3, 2) + Y) + sp.cos(5 * Y + sp.Rational(3, 5))
    return a * b + c + d


def exact_derivative(f: sp.Expr, name: str) -> sp.Expr:
    return {
        "d_dx": sp.diff(f, X),
        "d_dy": sp.diff(f, Y),
        "d2_dx2": sp.diff(f, X, 2),
        "d2_dy2": sp.diff(f, Y, 2),
        "laplace": sp.diff(f, X, 2) + sp.diff(f, Y, 2),
    }[name]


def on_grid(expr: sp.Expr, grid: Grid) -> np.ndarray:
    xx, yy = grid.mesh()
    values = sp.lambdify((X, Y), expr, "numpy")(xx, yy)
    return np.broadcast_to(np.asarray(values, dtype=np.float64), xx.shape).copy()


def make_grid(level: int, periodic_x: bool, periodic_y: bool) -> Grid:
    """Level ``k``: nx = 16*2**k (+1 if non-periodic), ny = 12*2**k (+1); h halves per level."""
    nx = 16 * 2**level + (0 if periodic_x else 1)
    ny = 12 * 2**level + (0 if periodic_y else 1)
    return Grid(Axis(*X_DOMAIN, nx, periodic_x), Axis(*Y_DOMAIN, ny, periodic_y))


def closure_mask(grid: Grid, axes: tuple[int, ...], radius: int) -> np.ndarray:
    """Nodes within ``radius`` of a non-periodic boundary along one of ``axes``."""
    mask = np.zeros(grid.shape, dtype=bool)
    for axis in axes:
        if grid.axis(axis).periodic:
            continue
        if axis == 0:
            mask[:, :radius] = mask[:, -radius:] = True
        else:
            mask[:radius, :] = mask[-radius:, :] = True
    return mask


def observed_orders(errors: list[float]) -> list[float]:
    return [math.log2(coarse / fine) for coarse, fine in zip(errors[:-1], errors[1:])]


LEVELS = (1, 2, 3)


# --------------------------------------------------------------------------- convergence


@pytest.mark.parametrize("periodic", PERIODICITY, ids=lambda p: f"px{int(p[0])}py{int(p[1])}")
@pytest.mark.parametrize("accuracy", (2, 4))
@pytest.mark.parametrize("name", OPERATORS)
def test_order_of_accuracy(name: str, accuracy: int, periodic: tuple[bool, bool]) -> None:
    """Observed order of every operator, interior and closure nodes separately.

    Function: :func:`analytic_function` (exp/sin/log/cos mix, see there); levels
    32/24 -> 64/48 -> 128/96 points (x/y).

    Expected orders:

    * interior (central stencils): ``accuracy``;
    * closure nodes: ``closure_weights`` uses ``order + accuracy`` points for a derivative of
      ``order``. An n-point stencil for the m-th derivative is exact for polynomials of
      degree n - 1, so its truncation error is O(h^(n - m)) = O(h^accuracy): the closures of
      the second derivatives are of the *same* accuracy as the interior (not accuracy - 1,
      which one would get from only order + accuracy - 1 points). Measured on both pairs,
      all operators and periodicities: interior 1.92-2.00 and 3.92-4.00, closures 1.93-2.07
      and 3.86-4.14 (accuracy 2 and 4); we assert ``accuracy - 0.3`` for both parts.
    """
    axes, order = OPERATOR_AXES[name]
    f = analytic_function(*periodic)
    df = exact_derivative(f, name)
    radius = central_radius(order, accuracy)
    interior_errors, closure_errors = [], []
    for level in LEVELS:
        grid = make_grid(level, *periodic)
        ops = Derivatives(grid, accuracy, dtype=torch.float64)
        u = torch.as_tensor(on_grid(f, grid))
        result = ops.apply(name, u)
        assert result.shape == u.shape and result.dtype == torch.float64
        error = np.abs(result.numpy() - on_grid(df, grid))
        mask = closure_mask(grid, axes, radius)
        scale = np.abs(on_grid(df, grid)).max()
        interior_errors.append(error[~mask].max())
        if mask.any():
            closure_errors.append(error[mask].max())
    for p in observed_orders(interior_errors):
        assert p >= accuracy - 0.3, f"interior order {p:.2f} < {accuracy} (errors {interior_errors})"
    has_closure = any(not periodic[a] for a in axes)
    assert bool(closure_errors) == has_closure
    for p in observed_orders(closure_errors):
        assert p >= accuracy - 0.3, f"closure order {p:.2f} < {accuracy} (errors {closure_errors})"
    # Sanity: the error really is a discretisation error (not zero, not O(1)).
    assert 0 < interior_errors[-1] < 1e-2 * scale


def test_operators_act_on_batched_tensors_slice_by_slice() -> None:
    grid = make_grid(0, False, True)
    ops = Derivatives(grid, 4, dtype=torch.float64)
    u = torch.randn(2, 3, *grid.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for name in OPERATORS:
        batched = ops.apply(name, u)
        assert batched.shape == u.shape
        for i in range(2):
            for c in range(3):
                torch.testing.assert_close(batched[i, c], ops.apply(name, u[i, c]), rtol=1e-12, atol=1e-10)


def test_laplace_is_sum_of_second_derivatives_and_gradients_flow() -> None:
    grid = make_grid(0, True, False)
    ops = Derivatives(grid, 2, dtype=torch.float64)
    u = torch.as_tensor(on_grid(analytic_function(True, False), grid)).requires_grad_(True)
    lap = ops.laplace(u)
    torch.testing.assert_close(lap, ops.d2_dx2(u) + ops.d2_dy2(u))
    lap.pow(2).sum().backward()
    assert u.grad is not None and torch.isfinite(u.grad).all() and u.grad.abs().sum() > 0


def test_invalid_accuracy_is_rejected() -> None:
    with pytest.raises(ValueError, match="accuracy"):
        Derivatives(make_grid(0, True, True), 3)


def test_polynomials_are_differentiated_exactly_up_to_the_stencil_degree() -> None:
    """Every stencil of accuracy p (central and closures) is exact on polynomials of degree
    p for first derivatives (closures: p + 1 points) and p + 1 for second derivatives
    (closures: p + 2 points; the central stencils are symmetric, which gains one degree)."""
    grid = Grid(Axis(*X_DOMAIN, 11, False), Axis(*Y_DOMAIN, 9, False))
    cases = {
        (2, 1): X**2 - 2 * X * Y + 3 * Y**2,
        (2, 2): X**3 - 2 * X * Y**2 + Y**3,
        (4, 1): X**4 - 3 * X**2 * Y**2 + Y**4 - X * Y,
        (4, 2): X**5 - 3 * X**2 * Y**3 + Y**5 - X * Y,
    }
    for (accuracy, order), f in cases.items():
        ops = Derivatives(grid, accuracy, dtype=torch.float64)
        u = torch.as_tensor(on_grid(f, grid))
        names = ("d_dx", "d_dy") if order == 1 else ("d2_dx2", "d2_dy2", "laplace")
        for name in names:
            np.testing.assert_allclose(
                ops.apply(name, u).numpy(), on_grid(exact_derivative(f, name), grid), atol=1e-8, err_msg=name
            )


def test_leading_error_terms_on_a_quartic() -> None:
    # Leading error terms on a quartic, accuracy 2: for u = x^4 the error of a stencil with
    # weights w_k on offsets k is h^2 * sum_k w_k k^4 (lower moments are exact):
    # [1, -2, 1] -> 2 h^2 at every interior node; the closure [2, -5, 4, -1] -> -22 h^2.
    grid = Grid(Axis(*X_DOMAIN, 11, False), Axis(*Y_DOMAIN, 9, False))
    f = X**4 + X**3 * Y - Y**4
    ops = Derivatives(grid, 2, dtype=torch.float64)
    u = torch.as_tensor(on_grid(f, grid))
    error = ops.d2_dx2(u).numpy() - on_grid(exact_derivative(f, "d2_dx2"), grid)
    h2 = grid.x.spacing**2
    np.testing.assert_allclose(error[:, 1:-1], 2 * h2, rtol=1e-9)
    np.testing.assert_allclose(error[:, [0, -1]], -22 * h2, rtol=1e-9)


# --------------------------------------------------------------------------- spectral


def _periodic_grid(nx: int = 24, ny: int = 16) -> Grid:
    return Grid(Axis(*X_DOMAIN, nx, True), Axis(*Y_DOMAIN, ny, True))


def _band_limited() -> sp.Expr:
    """Highest modes 5 (x, nx = 24 -> Nyquist 12) and 3 (y, ny = 16 -> Nyquist 8)."""
    tx = 2 * sp.pi * (X - X_DOMAIN[0]) / (X_DOMAIN[1] - X_DOMAIN[0])
    ty = 2 * sp.pi * (Y - Y_DOMAIN[0]) / (Y_DOMAIN[1] - Y_DOMAIN[0])
    return sp.sin(2 * tx) * sp.cos(3 * ty) + sp.Rational(3, 10) * sp.cos(5 * tx + sp.Rational(1, 5)) + sp.sin(ty) + 2


@pytest.mark.parametrize("name", OPERATORS)
def test_spectral_derivatives_exact_for_band_limited_function(name: str) -> None:
    """sin(2θx)cos(3θy) + 0.3cos(5θx + 0.2) + sin(θy) + 2: spectral derivatives are exact
    (relative error ~1e-10 of the derivative's size; float64)."""
    grid = _periodic_grid()
    f = _band_limited()
    ops = Derivatives(grid, 4, spectral=True, dtype=torch.float64)
    result = ops.apply(name, torch.as_tensor(on_grid(f, grid))).numpy()
    exact = on_grid(exact_derivative(f, name), grid)
    assert np.abs(result - exact).max() <= 1e-10 * np.abs(exact).max()
    # Much better than the fourth-order finite differences on the same grid.
    fd = Derivatives(grid, 4, dtype=torch.float64).apply(name, torch.as_tensor(on_grid(f, grid))).numpy()
    assert np.abs(fd - exact).max() > 1e-6 * np.abs(exact).max()


def test_spectral_float32_and_batched() -> None:
    grid = _periodic_grid()
    f = _band_limited()
    ops = Derivatives(grid, 4, spectral=True)
    u = torch.as_tensor(on_grid(f, grid), dtype=torch.float32).expand(2, 3, *grid.shape)
    result = ops.laplace(u)
    assert result.dtype == torch.float32 and result.shape == u.shape
    exact = on_grid(exact_derivative(f, "laplace"), grid)
    assert np.abs(result[1, 2].numpy() - exact).max() <= 1e-4 * np.abs(exact).max()


def test_spectral_nyquist_mode() -> None:
    """On an even grid the Nyquist mode cos(N/2 θ) samples as (-1)^i. Its odd derivatives
    are set to zero (sin(N/2 θ) vanishes at every node, and the real interpolant has no
    odd derivative there); its second derivative is -(pi N / L)^2 (-1)^i."""
    nx, ny = 24, 16
    grid = _periodic_grid(nx, ny)
    xx, yy = grid.mesh()
    theta_x = 2 * np.pi * (xx - X_DOMAIN[0]) / (X_DOMAIN[1] - X_DOMAIN[0])
    theta_y = 2 * np.pi * (yy - Y_DOMAIN[0]) / (Y_DOMAIN[1] - Y_DOMAIN[0])
    nyquist_x, nyquist_y = np.cos(nx / 2 * theta_x), np.cos(ny / 2 * theta_y)
    np.testing.assert_allclose(nyquist_x[0, :4], [1, -1, 1, -1], atol=1e-12)
    ops = Derivatives(grid, 4, spectral=True, dtype=torch.float64)
    kx = 2 * np.pi / 3.0
    u = nyquist_x + np.sin(theta_x)
    d = ops.d_dx(torch.as_tensor(u)).numpy()
    np.testing.assert_allclose(d, kx * np.cos(theta_x), atol=1e-10)
    np.testing.assert_allclose(ops.d_dy(torch.as_tensor(nyquist_y)).numpy(), 0.0, atol=1e-9)
    d2 = ops.d2_dx2(torch.as_tensor(nyquist_x)).numpy()
    np.testing.assert_allclose(d2, -((np.pi * nx / 3.0) ** 2) * nyquist_x, rtol=1e-10, atol=1e-8)
    d2y = ops.d2_dy2(torch.as_tensor(nyquist_y)).numpy()
    np.testing.assert_allclose(d2y, -((np.pi * ny / 0.5) ** 2) * nyquist_y, rtol=1e-10, atol=1e-6)


def test_spectral_odd_grid_has_no_nyquist_mode() -> None:
    """nx = 25: mode 12 is resolved and its first derivative is kept."""
    grid = _periodic_grid(25, 15)
    xx, _ = grid.mesh()
    theta = 2 * np.pi * (xx - X_DOMAIN[0]) / 3.0
    ops = Derivatives(grid, 4, spectral=True, dtype=torch.float64)
    d = ops.d_dx(torch.as_tensor(np.cos(12 * theta))).numpy()
    np.testing.assert_allclose(d, -12 * (2 * np.pi / 3.0) * np.sin(12 * theta), atol=1e-8)


def test_spectral_applies_only_to_periodic_axes() -> None:
    """With x periodic and y not, ``spectral=True`` differentiates x by FFT and y by the
    same finite differences as ``spectral=False``."""
    grid = make_grid(0, True, False)
    u = torch.as_tensor(on_grid(analytic_function(True, False), grid))
    spectral = Derivatives(grid, 4, spectral=True, dtype=torch.float64)
    fd = Derivatives(grid, 4, dtype=torch.float64)
    torch.testing.assert_close(spectral.d_dy(u), fd.d_dy(u))
    torch.testing.assert_close(spectral.d2_dy2(u), fd.d2_dy2(u))
    assert not torch.allclose(spectral.d_dx(u), fd.d_dx(u), atol=1e-8)


# --------------------------------------------------------------------------- weights


def _as_fractions(weights: np.ndarray) -> list[Fraction]:
    return [Fraction(float(w)).limit_denominator(1000) for w in weights]


def test_fd_weights_reproduce_known_stencils() -> None:
    np.testing.assert_allclose(fd_weights([-1, 0, 1], 2), [1, -2, 1], atol=1e-14)
    np.testing.assert_allclose(fd_weights([-2, -1, 0, 1, 2], 2), [-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12], atol=1e-14)
    np.testing.assert_allclose(fd_weights([0, 1, 2], 1), [-3 / 2, 2, -1 / 2], atol=1e-14)
    np.testing.assert_allclose(fd_weights([-1, 0, 1], 1), [-1 / 2, 0, 1 / 2], atol=1e-14)
    np.testing.assert_allclose(fd_weights([-2, -1, 0, 1, 2], 1), [1 / 12, -2 / 3, 0, 2 / 3, -1 / 12], atol=1e-14)
    np.testing.assert_allclose(fd_weights([0, 1, 2, 3], 2), [2, -5, 4, -1], atol=1e-13)
    np.testing.assert_allclose(one_sided_weights(2), [-3 / 2, 2, -1 / 2], atol=1e-14)
    np.testing.assert_allclose(one_sided_weights(4), [-25 / 12, 4, -3, 4 / 3, -1 / 4], atol=1e-13)
    np.testing.assert_allclose(central_weights(2, 2), [1, -2, 1], atol=1e-14)
    np.testing.assert_allclose(central_weights(2, 4), [-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12], atol=1e-14)
    np.testing.assert_allclose(closure_weights(2, 2), [[2, -5, 4, -1]], atol=1e-13)
    np.testing.assert_allclose(closure_weights(1, 2), [[-3 / 2, 2, -1 / 2]], atol=1e-14)
    assert closure_weights(1, 4).shape == (2, 5) and closure_weights(2, 4).shape == (2, 6)
    assert _as_fractions(fd_weights([-1, 0, 1, 2], 1)) == [Fraction(-1, 3), Fraction(-1, 2), Fraction(1), Fraction(-1, 6)]


def test_fd_weights_exact_on_polynomials_nonuniform_offsets() -> None:
    offsets = np.array([-1.3, -0.2, 0.0, 0.7, 1.9])
    at = 0.35
    for order in (0, 1, 2, 3):
        w = fd_weights(offsets, order, at=at)
        for degree in range(len(offsets)):
            values = offsets**degree
            exact = math.perm(degree, order) * at ** (degree - order) if degree >= order else 0.0
            assert w @ values == pytest.approx(exact, abs=1e-10)
    with pytest.raises(ValueError):
        fd_weights([0, 1], 2)


# --------------------------------------------------------------------------- normal derivative


SIDE_EXACT = {
    # side -> (sign of the outward normal, derivative symbol, fixed coordinate)
    "left": (-1, X, (X, X_DOMAIN[0])),
    "right": (1, X, (X, X_DOMAIN[1])),
    "bottom": (-1, Y, (Y, Y_DOMAIN[0])),
    "top": (1, Y, (Y, Y_DOMAIN[1])),
}


def _side_nodes(grid: Grid, side: str) -> np.ndarray:
    """Coordinates along the side: y for left/right, x for bottom/top."""
    return grid.y.points if side in ("left", "right") else grid.x.points


def _exact_normal(f: sp.Expr, side: str, grid: Grid) -> np.ndarray:
    sign, var, (fixed, value) = SIDE_EXACT[side]
    g = (sign * sp.diff(f, var)).subs(fixed, value)
    other = Y if fixed == X else X
    return np.broadcast_to(sp.lambdify(other, g, "numpy")(_side_nodes(grid, side)), (len(_side_nodes(grid, side)),))


def test_normal_derivative_sign_on_linear_function() -> None:
    """u = 2x + 3y: outward derivatives -2 (left), 2 (right), -3 (bottom), 3 (top),
    exactly for every accuracy."""
    grid = Grid(Axis(*X_DOMAIN, 13, False), Axis(*Y_DOMAIN, 9, False))
    xx, yy = grid.mesh()
    u = torch.as_tensor(2 * xx + 3 * yy)
    ops = Derivatives(grid, 4, dtype=torch.float64)
    expected = {"left": (-2.0, 9), "right": (2.0, 9), "bottom": (-3.0, 13), "top": (3.0, 13)}
    for accuracy in (1, 2, 3, 4, None):
        for side, (value, n_along) in expected.items():
            d = ops.normal_derivative(u, side, accuracy)
            assert d.shape == (n_along,)
            np.testing.assert_allclose(d.numpy(), value, atol=1e-10)


@pytest.mark.parametrize("accuracy", (1, 2, 3, 4))
@pytest.mark.parametrize("side", ("left", "right", "bottom", "top"))
def test_normal_derivative_order(side: str, accuracy: int) -> None:
    """f = exp(0.8x) sin(2y + 0.3) + cos(1.3x - 0.2) log(1.5 + y) on x in [-1, 2],
    y in [0, 0.5]; nx = 16*2^k + 1, ny = 24*2^k + 1. The one-sided stencil has accuracy + 1
    points, exact for degree ``accuracy``, so the error is O(h^accuracy). Measured (all sides):
    0.82-1.02, 1.98-2.04, 2.99-3.40, 3.97-4.24 for accuracy 1-4; asserted accuracy - 0.3."""
    f = sp.exp(sp.Rational(4, 5) * X) * sp.sin(2 * Y + sp.Rational(3, 10)) + sp.cos(
        sp.Rational(13, 10) * X - sp.Rational(1, 5)
    ) * sp.log(sp.Rational(3, 2) + Y)
    errors = []
    for level in (1, 2, 3):
        grid = Grid(Axis(*X_DOMAIN, 16 * 2**level + 1, False), Axis(*Y_DOMAIN, 24 * 2**level + 1, False))
        ops = Derivatives(grid, 2, dtype=torch.float64)
        u = torch.as_tensor(on_grid(f, grid)).expand(2, *grid.shape)  # a leading time axis
        d = ops.normal_derivative(u, side, accuracy)
        assert d.shape == (2, len(_side_nodes(grid, side)))
        errors.append(np.abs(d[1].numpy() - _exact_normal(f, side, grid)).max())
    orders = observed_orders(errors)
    assert errors[-1] < 0.05
    for p in orders:
        assert p >= accuracy - 0.3, f"{side}: order {p:.2f} < {accuracy} (errors {errors})"


def test_normal_derivative_default_accuracy_is_the_operators() -> None:
    grid = Grid(Axis(*X_DOMAIN, 20, False), Axis(*Y_DOMAIN, 14, False))
    u = torch.as_tensor(on_grid(analytic_function(False, False), grid))
    for accuracy in (2, 4):
        ops = Derivatives(grid, accuracy, dtype=torch.float64)
        for side in SIDE_EXACT:
            torch.testing.assert_close(ops.normal_derivative(u, side), ops.normal_derivative(u, side, accuracy))
