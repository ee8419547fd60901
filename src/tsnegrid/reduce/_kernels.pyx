# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled kernels of the t-SNE: the affinities' bandwidth search, the quadtree (Barnes-Hut)
gradient, the FFT interpolation's spreading and gathering, and the gradient descent (C, built
by pip with the machine's C compiler).

``tsnegrid.reduce.bh`` and ``tsnegrid.reduce.fft`` document the methods and call them.
"""

from libc.math cimport exp, fabs, log, sqrt, INFINITY
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc, realloc

ctypedef int64_t i64

cdef enum:
    MAX_DEPTH = 48   # a cell 2^-48 of the map's side holds coincident points in one leaf
    STACK = 4 * MAX_DEPTH + 8

cdef struct Node:
    double cx, cy, half    # the cell: its centre and half its side
    double mx, my          # the centre of mass of its points
    i64 count, start       # its points: order[start:start + count]
    i64 child, n_child     # its non-empty quadrants: nodes[child:child + n_child]
    i64 depth

cdef struct Tree:
    Node* nodes
    i64 size, cap
    i64* order


def perplexity_rows(const double[:, ::1] dist, double perplexity, double[:, ::1] out) -> int:
    """Row i of ``out``: p(j|i) over row i's k neighbours, Gaussian in the squared distances
    ``dist`` with the bandwidth whose entropy is log(perplexity), found by bisection on
    beta = 1 / (2 sigma^2). Returns how many rows did not reach the entropy within 1e-8."""
    cdef Py_ssize_t n = dist.shape[0], k = dist.shape[1], i, j, it
    cdef double target = log(perplexity), beta, lo, hi, s, h, p, d, d0, entropy
    cdef int missed = 0
    with nogil:
        for i in range(n):
            beta = 1.0
            lo = 0.0
            hi = INFINITY
            d0 = dist[i, 0] * dist[i, 0]
            for j in range(1, k):
                d0 = min(d0, dist[i, j] * dist[i, j])
            for it in range(200):
                s = 0.0
                h = 0.0
                for j in range(k):
                    d = dist[i, j] * dist[i, j] - d0   # shifted: the same p, no underflow
                    p = exp(-d * beta)
                    out[i, j] = p
                    s += p
                    h += d * p
                entropy = log(s) + beta * h / s
                if fabs(entropy - target) < 1e-8:
                    break
                if entropy > target:   # too flat: narrower kernel
                    lo = beta
                    beta = beta * 2.0 if hi == INFINITY else (beta + hi) / 2.0
                else:
                    hi = beta
                    beta = (beta + lo) / 2.0
            else:
                missed += 1
            for j in range(k):
                out[i, j] /= s
    return missed


cdef int grow(Tree* t) noexcept nogil:
    cdef Node* bigger
    if t.size < t.cap:
        return 0
    bigger = <Node*>realloc(t.nodes, 2 * t.cap * sizeof(Node))
    if bigger == NULL:
        return -1
    t.nodes = bigger
    t.cap *= 2
    return 0


cdef int build(Tree* t, const double[:, ::1] y, i64* buf) noexcept nogil:
    """The quadtree of the points: cells split into their non-empty quadrants while they hold
    more than one point (coincident points end in one leaf at ``MAX_DEPTH``)."""
    cdef i64 n = y.shape[0], i, p, q, node, start, count, quad, c, first
    cdef i64[4] size
    cdef i64[5] at
    cdef double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY, half
    cdef Node* nd
    cdef Node* ch
    for i in range(n):
        t.order[i] = i
        x0 = min(x0, y[i, 0])
        x1 = max(x1, y[i, 0])
        y0 = min(y0, y[i, 1])
        y1 = max(y1, y[i, 1])
    half = max(x1 - x0, y1 - y0) / 2.0
    half = half * (1.0 + 1e-9) + 1e-12
    nd = &t.nodes[0]
    nd.cx = (x0 + x1) / 2.0
    nd.cy = (y0 + y1) / 2.0
    nd.half = half
    nd.count = n
    nd.start = 0
    nd.depth = 0
    nd.mx = 0.0
    nd.my = 0.0
    for i in range(n):
        nd.mx += y[i, 0]
        nd.my += y[i, 1]
    nd.mx /= n
    nd.my /= n
    t.size = 1
    node = 0
    while node < t.size:
        nd = &t.nodes[node]
        nd.child = 0
        nd.n_child = 0
        if nd.count <= 1 or nd.depth >= MAX_DEPTH:
            node += 1
            continue
        start = nd.start
        count = nd.count
        for q in range(4):
            size[q] = 0
        for i in range(start, start + count):
            p = t.order[i]
            quad = (y[p, 0] >= nd.cx) + 2 * (y[p, 1] >= nd.cy)
            size[quad] += 1
        at[0] = start
        for q in range(4):
            at[q + 1] = at[q] + size[q]
        for i in range(start, start + count):
            p = t.order[i]
            quad = (y[p, 0] >= nd.cx) + 2 * (y[p, 1] >= nd.cy)
            buf[at[quad]] = p
            at[quad] += 1
        for i in range(start, start + count):
            t.order[i] = buf[i]
        first = t.size
        c = start
        for q in range(4):
            if size[q] == 0:
                continue
            if grow(t) != 0:
                return -1
            nd = &t.nodes[node]   # the array may have moved
            ch = &t.nodes[t.size]
            ch.half = nd.half / 2.0
            ch.cx = nd.cx + (ch.half if q & 1 else -ch.half)
            ch.cy = nd.cy + (ch.half if q & 2 else -ch.half)
            ch.start = c
            ch.count = size[q]
            ch.depth = nd.depth + 1
            ch.mx = 0.0
            ch.my = 0.0
            for i in range(c, c + size[q]):
                ch.mx += y[t.order[i], 0]
                ch.my += y[t.order[i], 1]
            ch.mx /= size[q]
            ch.my /= size[q]
            c += size[q]
            t.size += 1
        nd = &t.nodes[node]
        nd.child = first
        nd.n_child = t.size - first
        node += 1
    return 0


cdef double repulsion(Tree* t, const double[:, ::1] y, double theta,
                      double[:, ::1] force) noexcept nogil:
    """Unnormalised repulsive forces sum_j w_ij^2 (y_i - y_j), w_ij = 1 / (1 + |y_i - y_j|^2),
    into ``force``; returns Z = sum_{i != j} w_ij. A cell of side s at distance d from y_i
    counts as one point of its mass at its centre of mass when s / d < theta."""
    cdef i64 n = y.shape[0], i, e, j, top, node
    cdef i64[STACK] stack
    cdef double yx, yy, dx, dy, d2, w, fx, fy, z, total = 0.0, theta2 = theta * theta, side
    cdef Node* nd
    for i in range(n):
        yx = y[i, 0]
        yy = y[i, 1]
        fx = 0.0
        fy = 0.0
        z = 0.0
        stack[0] = 0
        top = 1
        while top > 0:
            top -= 1
            nd = &t.nodes[stack[top]]
            if nd.n_child == 0:
                for e in range(nd.start, nd.start + nd.count):
                    j = t.order[e]
                    if j == i:
                        continue
                    dx = yx - y[j, 0]
                    dy = yy - y[j, 1]
                    w = 1.0 / (1.0 + dx * dx + dy * dy)
                    z += w
                    fx += w * w * dx
                    fy += w * w * dy
                continue
            dx = yx - nd.mx
            dy = yy - nd.my
            d2 = dx * dx + dy * dy
            side = 2.0 * nd.half
            if side * side < theta2 * d2:
                w = 1.0 / (1.0 + d2)
                z += nd.count * w
                w = nd.count * w * w
                fx += w * dx
                fy += w * dy
                continue
            for e in range(nd.child, nd.child + nd.n_child):
                stack[top] = e
                top += 1
        force[i, 0] = fx
        force[i, 1] = fy
        total += z
    return total


cdef void release(Tree* t) noexcept nogil:
    free(t.nodes)
    free(t.order)
    t.nodes = NULL
    t.order = NULL


cdef int alloc(Tree* t, i64 n) noexcept nogil:
    t.cap = 2 * n + 16
    t.size = 0
    t.nodes = <Node*>malloc(t.cap * sizeof(Node))
    t.order = <i64*>malloc(2 * n * sizeof(i64))   # the points' order, then a sort buffer
    if t.nodes == NULL or t.order == NULL:
        release(t)
        return -1
    return 0


cdef int step_gradient(Tree* t, const double[:, ::1] y, const i64[::1] indptr,
                       const i64[::1] indices, const double[::1] p, double exaggeration,
                       double theta, double[:, ::1] grad) noexcept nogil:
    """The gradient into ``grad``; -1 when the tree could not grow."""
    cdef i64 n = y.shape[0]
    cdef double z
    if build(t, y, &t.order[n]) != 0:
        return -1
    z = repulsion(t, y, theta, grad)
    attract(y, indptr, indices, p, exaggeration, z, grad)
    return 0


cdef void attract(const double[:, ::1] y, const i64[::1] indptr, const i64[::1] indices,
                  const double[::1] p, double exaggeration, double z,
                  double[:, ::1] grad) noexcept nogil:
    """The gradient from the repulsion sum_j w_ij^2 (y_i - y_j) in ``grad`` and its normaliser
    ``z``: the attraction over the sparse affinities minus the repulsion over z."""
    cdef i64 n = y.shape[0], i, e, j
    cdef double dx, dy, w, ax, ay
    for i in range(n):
        ax = 0.0
        ay = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            dx = y[i, 0] - y[j, 0]
            dy = y[i, 1] - y[j, 1]
            w = p[e] / (1.0 + dx * dx + dy * dy)
            ax += w * dx
            ay += w * dy
        grad[i, 0] = exaggeration * ax - grad[i, 0] / z
        grad[i, 1] = exaggeration * ay - grad[i, 1] / z


cdef inline int sign(double x) noexcept nogil:
    return (x > 0) - (x < 0)


def gradient(const double[:, ::1] y, const i64[::1] indptr, const i64[::1] indices,
             const double[::1] p, double exaggeration, double theta,
             double[:, ::1] grad) -> None:
    """The t-SNE gradient of the map ``y`` (N x 2, at least 2 points) for the symmetric
    affinities ``p`` (CSR rows ``indptr``/``indices``, summing to 1) into ``grad``, without
    the constant factor 4 (openTSNE's convention, so its learning rates carry over):
    exaggeration * sum_j p_ij w_ij (y_i - y_j) minus the repulsion sum_j w_ij^2 (y_i - y_j)
    over Z = sum_{i != j} w_ij, w_ij = 1 / (1 + |y_i - y_j|^2). The repulsion is Barnes-Hut's
    (Van der Maaten 2014): a quadtree cell of side s at distance d from y_i counts as its
    mass at its centre of mass when s / d < ``theta``."""
    cdef Tree t
    cdef int status
    if alloc(&t, y.shape[0]) != 0:
        raise MemoryError("quadtree")
    with nogil:
        status = step_gradient(&t, y, indptr, indices, p, exaggeration, theta, grad)
    release(&t)
    if status != 0:
        raise MemoryError("quadtree")


cdef void move(double[:, ::1] y, const double[:, ::1] grad, double momentum,
               double learning_rate, double min_gain, double max_step,
               double[:, ::1] update, double[:, ::1] gains) noexcept nogil:
    """One step of ``descend``'s update on ``y`` in place, from the gradient ``grad``."""
    cdef i64 n = y.shape[0], i, d
    cdef double g, u, norm, mean0 = 0.0, mean1 = 0.0
    for i in range(n):
        norm = 0.0
        for d in range(2):
            g = grad[i, d]
            u = update[i, d]
            if sign(u) != sign(g):
                gains[i, d] += 0.2
            else:
                gains[i, d] = gains[i, d] * 0.8 + min_gain
            u = momentum * u - learning_rate * gains[i, d] * g
            update[i, d] = u
            norm += u * u
        if max_step > 0 and norm > max_step * max_step:
            norm = max_step / sqrt(norm)
            update[i, 0] *= norm
            update[i, 1] *= norm
        y[i, 0] += update[i, 0]
        y[i, 1] += update[i, 1]
        mean0 += y[i, 0]
        mean1 += y[i, 1]
    mean0 /= n
    mean1 /= n
    for i in range(n):
        y[i, 0] -= mean0
        y[i, 1] -= mean1


def descend(double[:, ::1] y, const i64[::1] indptr, const i64[::1] indices,
            const double[::1] p, i64 steps, double exaggeration, double momentum,
            double learning_rate, double theta, double min_gain, double max_step,
            double[:, ::1] update, double[:, ::1] gains, double[:, ::1] grad) -> None:
    """``steps`` steps of gradient descent on ``y`` in place, with momentum and per-coordinate
    gains (Jacobs 1988: +0.2 where the gradient's sign differs from the last move's, else
    x 0.8 + ``min_gain``); each point's move is clipped to length ``max_step`` and the map is
    kept centred. ``update`` and ``gains`` carry over from one call to the next (both phases of
    a run share them); ``grad`` is scratch space. Arguments as in ``gradient``."""
    cdef i64 n = y.shape[0], s
    cdef Tree t
    cdef int status = 0
    if alloc(&t, n) != 0:
        raise MemoryError("quadtree")
    with nogil:
        for s in range(steps):
            if step_gradient(&t, y, indptr, indices, p, exaggeration, theta, grad) != 0:
                status = -1
                break
            move(y, grad, momentum, learning_rate, min_gain, max_step, update, gains)
    release(&t)
    if status != 0:
        raise MemoryError("quadtree")


def step(double[:, ::1] y, const double[:, ::1] grad, double momentum, double learning_rate,
         double min_gain, double max_step, double[:, ::1] update,
         double[:, ::1] gains) -> None:
    """One step of ``descend``'s update from a gradient computed elsewhere (the FFT path)."""
    with nogil:
        move(y, grad, momentum, learning_rate, min_gain, max_step, update, gains)


# ---- FFT-accelerated interpolation (FIt-SNE, Linderman et al. 2019) ----------------------

cdef enum:
    MAX_POINTS = 8   # interpolation nodes per box and dimension


cdef inline void lagrange(double u, int points, double* w) noexcept nogil:
    """The Lagrange weights at u (box-local, in [0, 1]) of the nodes (j + 0.5) / points."""
    cdef int j, m
    cdef double tj, tm, value
    for j in range(points):
        tj = (j + 0.5) / points
        value = 1.0
        for m in range(points):
            if m != j:
                tm = (m + 0.5) / points
                value *= (u - tm) / (tj - tm)
        w[j] = value


def fft_spread(const double[:, ::1] y, double x0, double y0, double h, i64 boxes,
               int points, i64[:, ::1] base, double[:, ::1] wx, double[:, ::1] wy,
               double[:, :, :] grid) -> None:
    """Spread the four charges 1, y_x, y_y and |y|^2 of every point onto the interpolation
    nodes of its box (``grid``: 4 x M x M, M = ``boxes`` * ``points``, zeroed by the caller).
    ``grid`` may be a strided view (the corner of the FFT's zero-padded array).
    The boxes are squares of side ``h`` from (``x0``, ``y0``); each box holds ``points`` x
    ``points`` equispaced nodes. Each point's first node and its Lagrange weights per axis
    are kept in ``base``, ``wx`` and ``wy`` for ``fft_gather``."""
    cdef i64 n = y.shape[0], i, bx, by, gx, gy
    cdef int a, b
    cdef double ux, uy, w, q1, q2, q3
    if points < 1 or points > MAX_POINTS:
        raise ValueError(f"points must be in 1..{MAX_POINTS}")
    with nogil:
        for i in range(n):
            ux = (y[i, 0] - x0) / h
            uy = (y[i, 1] - y0) / h
            bx = min(max(<i64>ux, 0), boxes - 1)
            by = min(max(<i64>uy, 0), boxes - 1)
            lagrange(ux - bx, points, &wx[i, 0])
            lagrange(uy - by, points, &wy[i, 0])
            base[i, 0] = bx * points
            base[i, 1] = by * points
            q1 = y[i, 0]
            q2 = y[i, 1]
            q3 = q1 * q1 + q2 * q2
            for a in range(points):
                gx = base[i, 0] + a
                for b in range(points):
                    gy = base[i, 1] + b
                    w = wx[i, a] * wy[i, b]
                    grid[0, gx, gy] += w
                    grid[1, gx, gy] += w * q1
                    grid[2, gx, gy] += w * q2
                    grid[3, gx, gy] += w * q3


def fft_gather(const double[:, ::1] y, const i64[::1] indptr, const i64[::1] indices,
               const double[::1] p, double exaggeration, const double[:, :, :] phi,
               const i64[:, ::1] base, const double[:, ::1] wx, const double[:, ::1] wy,
               double[:, ::1] grad) -> float:
    """The t-SNE gradient (as ``gradient``) into ``grad``, its repulsion interpolated from
    ``phi`` (4 x M x M: the squared Cauchy kernel convolved with ``fft_spread``'s charges, on
    the nodes). Returns Z = sum_{i != j} w_ij."""
    cdef i64 n = y.shape[0], i, gx, gy
    cdef int a, b, points = wx.shape[1]
    cdef double z = 0.0, w, p0, p1, p2, p3
    with nogil:
        for i in range(n):
            p0 = 0.0
            p1 = 0.0
            p2 = 0.0
            p3 = 0.0
            for a in range(points):
                gx = base[i, 0] + a
                for b in range(points):
                    gy = base[i, 1] + b
                    w = wx[i, a] * wy[i, b]
                    p0 += w * phi[0, gx, gy]
                    p1 += w * phi[1, gx, gy]
                    p2 += w * phi[2, gx, gy]
                    p3 += w * phi[3, gx, gy]
            # sum_j w_ij^2 (1 + |y_i - y_j|^2) = sum_j w_ij, the point itself included (w = 1)
            z += ((1.0 + y[i, 0] * y[i, 0] + y[i, 1] * y[i, 1]) * p0
                  - 2.0 * (y[i, 0] * p1 + y[i, 1] * p2) + p3)
            grad[i, 0] = y[i, 0] * p0 - p1
            grad[i, 1] = y[i, 1] * p0 - p2
        z -= n
        attract(y, indptr, indices, p, exaggeration, z, grad)
    return z
