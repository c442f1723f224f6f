"""Finite-difference and spectral derivative operators on the grid, as torch operations.

All operators act on tensors of shape ``(..., ny, nx)`` (rows y, columns x; see
:mod:`phycrnet.grid`) and return the same shape.

* Interior stencils are central differences of accuracy 2 or 4, applied as fixed
  ``conv2d`` kernels.
* On a periodic axis the tensor is padded circularly (or differentiated spectrally with FFTs,
  when ``spectral=True``).
* On a non-periodic axis the nodes whose central stencil would leave the grid use one-sided
  (biased) stencils of the same accuracy; no boundary condition is needed, which is what a
  boundary-condition residual (soft constraint) builds on. Alternatively the caller pads the
  axis with ghost nodes that carry the boundary condition (hard constraint, see
  :mod:`phycrnet.boundary`) and calls :meth:`Derivatives.derivative` with ``padded=True``.

Stencil weights come from Fornberg's algorithm, so every closure is exact for polynomials
of the stated degree.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from phycrnet.spec.grid import SIDE_AXIS, Grid

ACCURACIES = (2, 4)


def fd_weights(offsets: Sequence[float] | np.ndarray, order: int, at: float = 0.0) -> np.ndarray:
    """Weights ``w`` with ``sum_k w_k f(offsets_k) ~ f^(order)(at)`` on unit spacing.

    Fornberg's recursion (Math. Comp. 51, 1988): exact for polynomials of degree
    ``len(offsets) - 1``.
    """
    z = np.asarray(offsets, dtype=np.float64)
    n = len(z)
    if order >= n:
        raise ValueError(f"{n} points cannot approximate derivative order {order}")
    c = np.zeros((n, order + 1))
    c1, c4 = 1.0, z[0] - at
    c[0, 0] = 1.0
    for i in range(1, n):
        mn = min(i, order)
        c2, c5, c4 = 1.0, c4, z[i] - at
        for j in range(i):
            c3 = z[i] - z[j]
            c2 *= c3
            if j == i - 1:
                for k in range(mn, 0, -1):
                    c[i, k] = c1 * (k * c[i - 1, k - 1] - c5 * c[i - 1, k]) / c2
                c[i, 0] = -c1 * c5 * c[i - 1, 0] / c2
            for k in range(mn, 0, -1):
                c[j, k] = (c4 * c[j, k] - k * c[j, k - 1]) / c3
            c[j, 0] = c4 * c[j, 0] / c3
        c1 = c2
    return c[:, order]


def central_radius(order: int, accuracy: int) -> int:
    """Half-width of the central stencil of a derivative of ``order`` at ``accuracy``."""
    return (order + 1) // 2 + accuracy // 2 - 1


@cache
def central_weights(order: int, accuracy: int) -> np.ndarray:
    """Central stencil on offsets ``-r..r`` (unit spacing)."""
    r = central_radius(order, accuracy)
    return fd_weights(np.arange(-r, r + 1), order)


@cache
def closure_weights(order: int, accuracy: int) -> np.ndarray:
    """One-sided/biased stencils for the first ``r`` nodes of a non-periodic axis.

    Returns an array of shape ``(r, w)``: row ``j`` gives the derivative at node ``j`` from
    nodes ``0..w-1``, with ``w = order + accuracy`` points (accuracy ``accuracy``). The last
    nodes use the mirror image: weights reversed, sign ``(-1)**order``.
    """
    r = central_radius(order, accuracy)
    width = order + accuracy
    return np.stack([fd_weights(np.arange(width), order, at=j) for j in range(r)])


@cache
def one_sided_weights(accuracy: int) -> np.ndarray:
    """First-derivative weights at node 0 from nodes ``0..accuracy`` (inward direction)."""
    return fd_weights(np.arange(accuracy + 1), 1)


class Derivatives:
    """Spatial derivative operators on one grid.

    Args:
        grid: the grid (spacing and periodicity per axis).
        accuracy: order of accuracy of the finite-difference stencils, 2 or 4.
        spectral: use FFT derivatives on periodic axes (finite differences elsewhere).
        dtype, device: of the stencil kernels; inputs must match.
    """

    def __init__(
        self,
        grid: Grid,
        accuracy: int = 4,
        *,
        spectral: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        if accuracy not in ACCURACIES:
            raise ValueError(f"accuracy must be one of {ACCURACIES}, got {accuracy}")
        self.grid = grid
        self.accuracy = accuracy
        self.spectral = spectral
        self.dtype = dtype
        self.device = torch.device(device)
        self._kernels: dict[tuple[int, int], torch.Tensor] = {}
        self._closures: dict[int, torch.Tensor] = {}
        self._wavenumbers: dict[int, torch.Tensor] = {}

    # -- public operators, all (..., ny, nx) -> (..., ny, nx) -----------------------------
    def d_dx(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, axis=0, order=1)

    def d_dy(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, axis=1, order=1)

    def d2_dx2(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, axis=0, order=2)

    def d2_dy2(self, u: torch.Tensor) -> torch.Tensor:
        return self.derivative(u, axis=1, order=2)

    def laplace(self, u: torch.Tensor) -> torch.Tensor:
        return self.d2_dx2(u) + self.d2_dy2(u)

    def apply(self, name: str, u: torch.Tensor) -> torch.Tensor:
        """Apply the operator called ``name`` (``laplace``, ``d_dx``, ...)."""
        return getattr(self, name)(u)

    @property
    def halo(self) -> int:
        """Ghost nodes a padded axis needs for every operator (the widest radius)."""
        return central_radius(2, self.accuracy)

    def derivative(self, u: torch.Tensor, axis: int, order: int, *, padded: bool = False) -> torch.Tensor:
        """Derivative of ``order`` (1 or 2) along ``axis`` (0 = x, 1 = y).

        With ``padded=True``, a non-periodic ``axis`` of ``u`` carries :attr:`halo` ghost
        nodes on each side (a periodic axis carries none) and the central stencil is used at
        every grid node; the result has the grid's shape.
        """
        ax = self.grid.axis(axis)
        h = ax.spacing**order
        if ax.periodic and self.spectral:
            return self._spectral(u, axis, order)
        kernel = self._kernel(axis, order)
        r = central_radius(order, self.accuracy)
        if ax.periodic:
            return _conv_along(_circular_pad(u, axis, r), kernel, axis) / h
        if padded:
            excess = self.halo - r
            if excess:
                u = _narrow(u, axis, excess, u.shape[_dim(axis)] - 2 * excess)
            return _conv_along(u, kernel, axis) / h
        return self._with_closure(u, axis, order, kernel, r) / h

    def normal_derivative(self, u: torch.Tensor, side: str, accuracy: int | None = None) -> torch.Tensor:
        """Outward normal derivative at the boundary nodes of ``side``.

        One-sided stencil of the given accuracy (default: the operators' accuracy) using
        the boundary node and ``accuracy`` nodes inward. Returns shape ``(..., n_along)``.
        """
        accuracy = accuracy or self.accuracy
        axis = SIDE_AXIS[side]
        weights = torch.as_tensor(one_sided_weights(accuracy), dtype=u.dtype, device=u.device)
        n = u.shape[_dim(axis)]
        nodes = _narrow(u, axis, 0, accuracy + 1) if side in ("left", "bottom") else _narrow(u, axis, n - accuracy - 1, accuracy + 1).flip(_dim(axis))
        # d/d(inward coordinate) = weights . nodes / h; outward normal derivative is its negative.
        inward = torch.tensordot(nodes.movedim(_dim(axis), -1), weights, dims=([-1], [0]))
        return -inward / self.grid.axis(axis).spacing

    # -- internals ---------------------------------------------------------------------------
    def _kernel(self, axis: int, order: int) -> torch.Tensor:
        key = (axis, order)
        if key not in self._kernels:
            w = torch.as_tensor(central_weights(order, self.accuracy), dtype=self.dtype, device=self.device)
            self._kernels[key] = w.view(1, 1, 1, -1) if axis == 0 else w.view(1, 1, -1, 1)
        return self._kernels[key].to(dtype=self.dtype)

    def _with_closure(self, u, axis, order, kernel, r) -> torch.Tensor:
        dim = _dim(axis)
        interior = _conv_along(u, kernel, axis)
        weights = torch.as_tensor(closure_weights(order, self.accuracy), dtype=u.dtype, device=u.device)
        width = weights.shape[1]
        n = u.shape[dim]
        head = _narrow(u, axis, 0, width).movedim(dim, -1)
        tail = _narrow(u, axis, n - width, width).flip(dim).movedim(dim, -1)
        left = torch.matmul(head, weights.T).movedim(-1, dim)
        right = (torch.matmul(tail, weights.T) * (-1) ** order).movedim(-1, dim).flip(dim)
        return torch.cat([left, interior, right], dim=dim)

    def _spectral(self, u: torch.Tensor, axis: int, order: int) -> torch.Tensor:
        dim = _dim(axis)
        ax = self.grid.axis(axis)
        factor = self._spectral_factor(axis, order, u.dtype, u.device)
        shape = [1] * u.dim()
        shape[dim] = -1
        transformed = torch.fft.rfft(u, dim=dim) * factor.view(shape)
        return torch.fft.irfft(transformed, n=ax.n, dim=dim)

    def _spectral_factor(self, axis, order, dtype, device) -> torch.Tensor:
        key = axis * 10 + order
        if key not in self._wavenumbers:
            ax = self.grid.axis(axis)
            k = 2 * np.pi * np.fft.rfftfreq(ax.n, d=ax.spacing)
            factor = (1j * k) ** order
            if order % 2 == 1 and ax.n % 2 == 0:
                factor[-1] = 0.0  # the Nyquist mode has no well-defined odd derivative
            self._wavenumbers[key] = torch.as_tensor(factor, dtype=torch.complex128)
        complex_dtype = torch.complex64 if dtype == torch.float32 else torch.complex128
        return self._wavenumbers[key].to(device=device, dtype=complex_dtype)


def _dim(axis: int) -> int:
    """Tensor dimension of a grid axis: x is the last, y the second to last."""
    return -1 if axis == 0 else -2


def _narrow(u: torch.Tensor, axis: int, start: int, length: int) -> torch.Tensor:
    return u.narrow(u.dim() + _dim(axis), start, length)


def _circular_pad(u: torch.Tensor, axis: int, r: int) -> torch.Tensor:
    dim = _dim(axis)
    n = u.shape[dim]
    return torch.cat([_narrow(u, axis, n - r, r), u, _narrow(u, axis, 0, r)], dim=dim)


def _conv_along(u: torch.Tensor, kernel: torch.Tensor, axis: int) -> torch.Tensor:
    """Valid convolution (cross-correlation) of every 2-D slice of ``u`` with ``kernel``."""
    lead = u.shape[:-2]
    flat = u.reshape(-1, 1, *u.shape[-2:])
    out = F.conv2d(flat, kernel.to(dtype=u.dtype, device=u.device))
    return out.reshape(*lead, *out.shape[-2:])
