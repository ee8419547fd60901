# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled kernels of the refinement swaps, the map smoothing and the LAS rounds' sparse
auction (C, built by pip with the machine's C compiler).

``refine``, ``smooth`` and ``sparse_lap`` document the algorithms; the moves draw their random
cells from a splitmix64 stream seeded per pass, so a seed fixes the result.
"""

from libc.math cimport sqrt
from libc.stdint cimport int64_t, uint64_t

import numpy as np

ctypedef int64_t i64

cdef i64[8] DR = [-1, -1, -1, 0, 0, 1, 1, 1]
cdef i64[8] DC = [-1, 0, 1, -1, 1, -1, 0, 1]


cdef inline uint64_t next_u64(uint64_t* state) noexcept nogil:
    """splitmix64 (Steele, Lea and Flood, 2014)."""
    cdef uint64_t z
    state[0] += <uint64_t>0x9E3779B97F4A7C15
    z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline i64 randint(uint64_t* state, i64 n) noexcept nogil:
    """Uniform integer in [0, n), n >= 1 (53 random bits; the bias is below 2^-20 for the
    grid sizes used)."""
    cdef i64 r = <i64>(<double>(next_u64(state) >> 11) * (1.0 / 9007199254740992.0) * n)
    return r if r < n else n - 1


cdef struct Hungarian:
    double* u
    double* v
    double* minv
    i64* p
    i64* way
    unsigned char* used


cdef void hungarian_ptr(const double* cost, i64 stride, i64 k, Hungarian* w,
                        i64* row_to_col) noexcept nogil:
    """Minimum-cost perfect matching of a k x k matrix (rows to columns), O(k^3)."""
    cdef double inf = 1e300
    cdef double delta, cur
    cdef i64 i, j, j0, j1, i0
    for j in range(k + 1):
        w.u[j] = 0.0
        w.v[j] = 0.0
        w.p[j] = 0
        w.way[j] = 0
    for i in range(1, k + 1):
        w.p[0] = i
        j0 = 0
        for j in range(k + 1):
            w.minv[j] = inf
            w.used[j] = 0
        while True:
            w.used[j0] = 1
            i0 = w.p[j0]
            delta = inf
            j1 = 0
            for j in range(1, k + 1):
                if not w.used[j]:
                    cur = cost[(i0 - 1) * stride + j - 1] - w.u[i0] - w.v[j]
                    if cur < w.minv[j]:
                        w.minv[j] = cur
                        w.way[j] = j0
                    if w.minv[j] < delta:
                        delta = w.minv[j]
                        j1 = j
            for j in range(k + 1):
                if w.used[j]:
                    w.u[w.p[j]] += delta
                    w.v[j] -= delta
                else:
                    w.minv[j] -= delta
            j0 = j1
            if w.p[j0] == 0:
                break
        while True:
            j1 = w.way[j0]
            w.p[j0] = w.p[j1]
            j0 = j1
            if j0 == 0:
                break
    for j in range(1, k + 1):
        row_to_col[w.p[j] - 1] = j - 1


cdef class Workspace:
    """Buffers of one pass: the group, its items, the k x k cost matrix and the LAP's."""

    cdef i64 k
    cdef object arrays
    cdef i64[::1] group
    cdef i64[::1] items
    cdef i64[::1] perm
    cdef double[:, ::1] cost
    cdef unsigned char[::1] in_group
    cdef Hungarian lap

    def __init__(self, i64 k, i64 m):
        cdef double[::1] u, v, minv
        cdef i64[::1] p, way
        cdef unsigned char[::1] used
        self.k = k
        self.group = np.empty(k, dtype=np.int64)
        self.items = np.empty(k, dtype=np.int64)
        self.perm = np.empty(k, dtype=np.int64)
        self.cost = np.empty((k, k), dtype=np.float64)
        self.in_group = np.zeros(m, dtype=np.uint8)
        u = np.empty(k + 1)
        v = np.empty(k + 1)
        minv = np.empty(k + 1)
        p = np.empty(k + 1, dtype=np.int64)
        way = np.empty(k + 1, dtype=np.int64)
        used = np.empty(k + 1, dtype=np.uint8)
        self.arrays = (u, v, minv, p, way, used)  # keeps the LAP's buffers alive
        self.lap.u = &u[0]
        self.lap.v = &v[0]
        self.lap.minv = &minv[0]
        self.lap.p = &p[0]
        self.lap.way = &way[0]
        self.lap.used = &used[0]


def hungarian(const double[:, ::1] cost, i64 k):
    """Column per row of a minimum-cost perfect matching of ``cost[:k, :k]``."""
    cdef Workspace ws = Workspace(max(k, 1), 1)
    out = np.empty(k, dtype=np.int64)
    cdef i64[::1] ov = out
    if k > 0:
        hungarian_ptr(&cost[0, 0], cost.shape[1], k, &ws.lap, &ov[0])
    return out


cdef i64 draw_window(i64* group, unsigned char* in_group, i64 g, i64 k, i64 cr, i64 cc,
                     const i64[::1] board, const unsigned char[::1] movable, i64 rows,
                     i64 cols, i64 reach, uint64_t* rng) noexcept nogil:
    """Add up to ``k - g`` cells drawn at random from the (2 reach + 1)^2 window around
    (cr, cc) to ``group`` (holes and cells of ``movable`` images only, none twice; at most 4 k
    draws); returns the new group size."""
    cdef i64 side = 2 * reach + 1
    cdef i64 tries = 0
    cdef i64 r, c, cell
    while g < k and tries < 4 * k:
        tries += 1
        r = cr + randint(rng, side) - reach
        c = cc + randint(rng, side) - reach
        if r < 0 or r >= rows or c < 0 or c >= cols:
            continue
        cell = r * cols + c
        if not in_group[cell] and (board[cell] < 0 or movable[board[cell]]):
            in_group[cell] = 1
            group[g] = cell
            g += 1
    return g


cdef inline double dist(const float[:, ::1] x, i64 a, i64 b) noexcept nogil:
    cdef double s = 0.0
    cdef float diff
    cdef i64 q
    for q in range(x.shape[1]):
        diff = x[a, q] - x[b, q]
        s += diff * diff
    return sqrt(s)


cdef double local_energy(const i64[::1] board, const float[:, ::1] x, const i64* group, i64 g,
                         const unsigned char* in_group, i64 rows, i64 cols,
                         double wdiag) noexcept nogil:
    """Weighted distances between the images in the group's cells and their 8 neighbours
    (pairs inside the group counted once)."""
    cdef double e = 0.0
    cdef double w
    cdef i64 t, o, cell, a, b, r, c, rr, cc, nb
    for t in range(g):
        cell = group[t]
        a = board[cell]
        if a < 0:
            continue
        r = cell // cols
        c = cell - r * cols
        for o in range(8):
            rr = r + DR[o]
            cc = c + DC[o]
            if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                continue
            nb = rr * cols + cc
            b = board[nb]
            if b < 0:
                continue
            w = 1.0 if DR[o] == 0 or DC[o] == 0 else wdiag
            if in_group[nb]:
                w *= 0.5
            e += w * dist(x, a, b)
    return e


def swap_pass(i64[::1] board, i64[::1] pos, const float[:, ::1] x, const i64[:, ::1] knn,
              const unsigned char[::1] movable, i64 rows, i64 cols, i64 reach, i64 n_steps,
              i64 k, double wdiag, uint64_t seed):
    """``n_steps`` local moves of the refinement (see ``refine._swap_pass``); returns how many
    were accepted."""
    cdef i64 m = rows * cols
    cdef i64 n = pos.shape[0]
    cdef i64 i
    which_arr = np.flatnonzero(np.asarray(movable)).astype(np.int64)
    cdef i64 n_mobile = which_arr.shape[0]
    if n_mobile == 0:
        return 0
    cdef i64[::1] which = which_arr
    cdef Workspace ws = Workspace(k, m)
    cdef i64* group = &ws.group[0]
    cdef i64* items = &ws.items[0]
    cdef i64* perm = &ws.perm[0]
    cdef unsigned char* in_group = &ws.in_group[0]
    cdef double* cost = &ws.cost[0, 0]
    cdef i64 n_knn = knn.shape[1]
    cdef uint64_t rng = seed
    cdef i64 accepted = 0
    cdef i64 step, g, centre, cr, cc, a, b, br, bc, dr, dc, r, c, cell, j, o, rr, cc2, nb
    cdef double w, before, after
    cdef bint moved
    with nogil:
        for step in range(n_steps):
            g = 0
            if step % 2 == 0 or n_knn == 0:
                if n_mobile == n:
                    centre = randint(&rng, m)
                else:
                    centre = pos[which[randint(&rng, n_mobile)]]
                cr = centre // cols
                cc = centre - cr * cols
                group[0] = centre
                in_group[centre] = 1
                g = draw_window(group, in_group, 1, k, cr, cc, board, movable, rows, cols,
                                reach, &rng)
            else:
                a = which[randint(&rng, n_mobile)]
                b = knn[a, randint(&rng, n_knn)]
                group[0] = pos[a]
                in_group[pos[a]] = 1
                g = 1
                br = pos[b] // cols
                bc = pos[b] - br * cols
                for dr in range(-1, 2):
                    for dc in range(-1, 2):
                        r = br + dr
                        c = bc + dc
                        if g < k and 0 <= r < rows and 0 <= c < cols:
                            cell = r * cols + c
                            if not in_group[cell] and (board[cell] < 0 or movable[board[cell]]):
                                in_group[cell] = 1
                                group[g] = cell
                                g += 1
            if g >= 2:
                for i in range(g):
                    items[i] = board[group[i]]
                for j in range(g):
                    cell = group[j]
                    r = cell // cols
                    c = cell - r * cols
                    for i in range(g):
                        cost[i * k + j] = 0.0
                    for o in range(8):
                        rr = r + DR[o]
                        cc2 = c + DC[o]
                        if rr < 0 or rr >= rows or cc2 < 0 or cc2 >= cols:
                            continue
                        nb = rr * cols + cc2
                        if in_group[nb] or board[nb] < 0:
                            continue
                        w = 1.0 if DR[o] == 0 or DC[o] == 0 else wdiag
                        for i in range(g):
                            if items[i] >= 0:
                                cost[i * k + j] += w * dist(x, items[i], board[nb])
                for i in range(g):
                    cost[i * k + i] -= 1e-9
                hungarian_ptr(cost, k, g, &ws.lap, perm)
                moved = False
                for i in range(g):
                    if perm[i] != i:
                        moved = True
                if moved:
                    before = local_energy(board, x, group, g, in_group, rows, cols, wdiag)
                    for i in range(g):
                        board[group[perm[i]]] = items[i]
                    after = local_energy(board, x, group, g, in_group, rows, cols, wdiag)
                    if after < before - 1e-7 * (1.0 + before):
                        accepted += 1
                        for i in range(g):
                            if items[i] >= 0:
                                pos[items[i]] = group[perm[i]]
                    else:
                        for i in range(g):
                            board[group[i]] = items[i]
            for i in range(g):
                in_group[group[i]] = 0
    return accepted


def smooth_pass(i64[::1] board, i64[::1] pos, const float[:, ::1] x,
                const float[:, ::1] fmap, i64 rows, i64 cols, i64 reach, i64 n_groups, i64 k,
                uint64_t seed):
    """``n_groups`` groups of up to k cells near a random cell, each re-assigned to its cells
    by an exact LAP against the map (see ``smooth._smooth_pass``)."""
    cdef i64 m = rows * cols
    cdef i64 d = x.shape[1]
    everyone_arr = np.ones(pos.shape[0], dtype=np.uint8)
    cdef const unsigned char[::1] everyone = everyone_arr
    cdef Workspace ws = Workspace(k, m)
    cdef i64* group = &ws.group[0]
    cdef i64* items = &ws.items[0]
    cdef i64* perm = &ws.perm[0]
    cdef unsigned char* in_group = &ws.in_group[0]
    cdef double* cost = &ws.cost[0, 0]
    cdef uint64_t rng = seed
    cdef i64 t, g, cr, cc, i, j, a, cell, q
    cdef double s
    cdef float diff
    with nogil:
        for t in range(n_groups):
            cr = randint(&rng, rows)
            cc = randint(&rng, cols)
            g = draw_window(group, in_group, 0, k, cr, cc, board, everyone, rows, cols, reach,
                            &rng)
            if g >= 2:
                for i in range(g):
                    items[i] = board[group[i]]
                for i in range(g):
                    a = items[i]
                    for j in range(g):
                        s = 0.0
                        if a >= 0:
                            cell = group[j]
                            for q in range(d):
                                diff = x[a, q] - fmap[cell, q]
                                s += diff * diff
                        cost[i * k + j] = s
                hungarian_ptr(cost, k, g, &ws.lap, perm)
                for i in range(g):
                    board[group[perm[i]]] = items[i]
                    if items[i] >= 0:
                        pos[items[i]] = group[perm[i]]
            for i in range(g):
                in_group[group[i]] = 0


def sparse_auction(const i64[::1] indptr, const i64[::1] indices, const double[::1] cost,
                   i64 n, double[::1] prices, double eps_start, double eps_end, double factor,
                   double jump):
    """Column per row of an epsilon-optimal minimum-cost perfect matching of an n x n CSR cost
    graph (see ``sparse_lap``); ``prices`` are warm-start prices, updated in place."""
    owner_arr = np.empty(n, dtype=np.int64)
    assigned_arr = np.empty(n, dtype=np.int64)
    stack_arr = np.empty(max(n, 1), dtype=np.int64)
    cdef i64[::1] owner = owner_arr
    cdef i64[::1] assigned = assigned_arr
    cdef i64[::1] stack = stack_arr
    cdef double eps = eps_start
    cdef double best, second, val, step
    cdef i64 i, j, e, bj, top, prev
    with nogil:
        while True:
            for i in range(n):
                owner[i] = -1
                assigned[i] = -1
                stack[i] = n - 1 - i
            top = n
            while top > 0:
                top -= 1
                i = stack[top]
                best = -1e300
                second = -1e300
                bj = -1
                for e in range(indptr[i], indptr[i + 1]):
                    j = indices[e]
                    val = -cost[e] - prices[j]
                    if val > best:
                        second = best
                        best = val
                        bj = j
                    elif val > second:
                        second = val
                step = best - second if second > -1e299 else jump
                prices[bj] += step + eps
                prev = owner[bj]
                owner[bj] = i
                assigned[i] = bj
                if prev >= 0:
                    assigned[prev] = -1
                    stack[top] = prev
                    top += 1
            if eps <= eps_end:
                break
            eps = eps / factor
            if eps < eps_end:
                eps = eps_end
    return assigned_arr
