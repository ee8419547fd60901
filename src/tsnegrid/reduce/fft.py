"""FFT-accelerated interpolation t-SNE (FIt-SNE, Linderman et al. 2019): the reduction of
sets above ``tsne.BH_MAX_N`` points, in compiled kernels (``_kernels.pyx``) and numpy's FFT.

The same method as openTSNE's ``negative_gradient_method="fft"``, computed without importing
openTSNE and scikit-learn (that import alone took 1.4-1.6 s, a third of a 10,000-point run):

* The map's bounding square is cut into boxes of side about ``INTERVAL`` (at least
  ``MIN_BOXES`` per side); each box holds ``POINTS`` x ``POINTS`` equispaced nodes, so the
  nodes form one regular lattice.
* Each step spreads the charges 1, y_x, y_y and |y|^2 of every point onto its box's nodes
  (Lagrange weights), convolves them with the squared Cauchy kernel 1 / (1 + d^2)^2 on the
  lattice by FFT (zero-padded, so the convolution is not periodic), and interpolates the four
  potentials back: the repulsion sum_j w_ij^2 (y_i - y_j) and the normaliser Z follow from them.
* The attraction over the sparse affinities, the momentum and gains and the step clipping are
  the Barnes-Hut path's (``bh``), so both paths descend alike.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from tsnegrid.reduce import _kernels
from tsnegrid.reduce.bh import MAX_STEP, MIN_GAIN, Affinities

#: Interpolation nodes per box and axis (openTSNE's default is 3; 2 halves the late steps'
#: cost at the same 10-NN preservation, see ``tsne``).
POINTS = 2
#: Box side in map units (openTSNE's ``ints_in_interval``), and the fewest boxes per side.
INTERVAL = 1.0
MIN_BOXES = 50


def fast_length(n: int) -> int:
    """The smallest m >= n with no prime factor above 5 (a fast FFT length)."""
    m = n
    while True:
        r = m
        for f in (2, 3, 5):
            while r % f == 0:
                r //= f
        if r == 1:
            return m
        m += 1


class Workspace:
    """The per-step arrays of ``gradient``, allocated once per lattice size and reused (fresh
    arrays every step cost as much system time as the FFTs, in page faults)."""

    def __init__(self) -> None:
        self.key: tuple[int, int, int, int] | None = None

    def fit(self, n: int, points: int, m: int, size: int) -> None:
        """Arrays for ``n`` points, ``points`` nodes per box and axis, an m x m node lattice
        and FFTs of size x size."""
        if self.key == (n, points, m, size):
            return
        half = size // 2 + 1
        i = np.arange(size)
        self.base = np.empty((n, 2), dtype=np.int64)
        self.wx = np.empty((n, points))
        self.wy = np.empty((n, points))
        self.padded = np.zeros((4, size, size))  # the charges, in its first m x m
        self.spectrum = np.empty((4, size, half), dtype=np.complex128)
        self.lattice = np.minimum(i, size - i).astype(np.float64)
        self.kernel = np.empty((size, size))
        self.kernel_hat = np.empty((size, half), dtype=np.complex128)
        self.potentials = np.empty((4, size, size))
        self.key = (n, points, m, size)


def gradient(y: NDArray[np.float64], p: Affinities, exaggeration: float,
             grad: NDArray[np.float64], points: int = POINTS,
             workspace: Workspace | None = None) -> float:
    """The t-SNE gradient of ``y`` (N x 2) into ``grad``, in ``bh.gradient``'s convention, the
    repulsion by interpolation; returns Z."""
    indptr, cols, values = p
    lo = y.min(axis=0)
    span = float((y.max(axis=0) - lo).max())
    boxes = max(MIN_BOXES, math.ceil(span / INTERVAL))
    h = max(span, 1e-12) / boxes * (1.0 + 1e-12)  # the largest coordinate stays inside
    m = boxes * points
    size = fast_length(2 * m)
    w = workspace or Workspace()
    w.fit(len(y), points, m, size)
    padded, spectrum, kernel = w.padded, w.spectrum, w.kernel
    grid = padded[:, :m, :m]  # the rest of ``padded`` stays zero
    grid.fill(0.0)
    _kernels.fft_spread(y, float(lo[0]), float(lo[1]), h, boxes, points, w.base, w.wx, w.wy,
                        grid)
    # the squared Cauchy kernel on the node lattice (spacing h / points), offsets wrapping at
    # size / 2, so the zero-padded product below is a plain (not periodic) convolution
    d2 = (w.lattice * (h / points)) ** 2
    np.add(d2[:, None], d2[None, :], out=kernel)
    kernel += 1.0
    np.square(kernel, out=kernel)
    np.reciprocal(kernel, out=kernel)
    np.fft.rfft2(kernel, out=w.kernel_hat)
    np.fft.rfft2(padded, out=spectrum)
    spectrum *= w.kernel_hat
    # the inverse in its two passes: numpy's irfft2 does not fill ``out`` (2.4: it returns a
    # new array), its one-axis transforms do
    np.fft.ifft(spectrum, axis=1, out=spectrum)
    np.fft.irfft(spectrum, n=size, axis=2, out=w.potentials)
    return _kernels.fft_gather(y, indptr, cols, values, exaggeration, w.potentials[:, :m, :m],
                               w.base, w.wx, w.wy, grad)


def optimize(y: NDArray[np.float64], p: Affinities, *, early_iterations: int,
             iterations: int, exaggeration: float, early_momentum: float, momentum: float,
             early_learning_rate: float, learning_rate: float,
             points: int = POINTS) -> NDArray[np.float64]:
    """The two phases of gradient descent on ``y`` (a copy is returned), as ``bh.optimize``."""
    y = np.array(y, dtype=np.float64, order="C")
    update = np.zeros_like(y)
    gains = np.ones_like(y)
    grad = np.empty_like(y)
    workspace = Workspace()
    for steps, exag, mom, rate in ((early_iterations, exaggeration, early_momentum,
                                    early_learning_rate),
                                   (iterations, 1.0, momentum, learning_rate)):
        for _ in range(int(steps)):
            gradient(y, p, float(exag), grad, points, workspace)
            _kernels.step(y, grad, float(mom), float(rate), MIN_GAIN, MAX_STEP, update, gains)
    return y
