# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled kernels of the grid assignment: the sparse auction, its certificate and the
recursive bisection (C, built by pip with the machine's C compiler).

Cells are indexed row-major (``r * cols + c``) with centres at ``(c + 0.5, r + 0.5)``; metric
code 0 is squared Euclidean, 1 is Euclidean. Costs are computed on the fly: no kernel stores an
N x M matrix. The Python modules around them (``auction``, ``certify``, ``partition``) document
the algorithms.
"""

from cython.parallel cimport prange
from openmp cimport omp_get_max_threads
from libc.math cimport ceil, floor, sqrt, INFINITY, log2
from libc.stdint cimport int64_t

import numpy as np

ctypedef int64_t i64

cdef i64 INFEASIBLE = -2
cdef i64 NO_CANDIDATE = -1


cdef inline double pair_cost(double px, double py, i64 r, i64 c, int metric) noexcept nogil:
    cdef double dx = c + 0.5 - px
    cdef double dy = r + 0.5 - py
    cdef double d = dx * dx + dy * dy
    if metric == 1:
        return sqrt(d)
    return d


cdef inline bint in_window(i64 r, i64 c, i64 cr, i64 cc, i64 w) noexcept nogil:
    return (r - cr <= w and cr - r <= w) and (c - cc <= w and cc - c <= w)


cdef inline i64 imax(i64 a, i64 b) noexcept nogil:
    return a if a > b else b


cdef inline i64 imin(i64 a, i64 b) noexcept nogil:
    return a if a < b else b


cdef inline void consider(double v, i64 j, double* b1, double* b2, i64* j1) noexcept nogil:
    if v < b1[0]:
        b2[0] = b1[0]
        b1[0] = v
        j1[0] = j
    elif v < b2[0]:
        b2[0] = v


cdef void scan(i64 i, const double[::1] px, const double[::1] py, i64 rows, i64 cols,
               int metric, const i64[::1] anchor, const i64[::1] own, i64 wa, i64 wb,
               const i64[::1] xptr, const i64[::1] xidx, const double[::1] prices,
               i64* j1, double* b1, double* b2) noexcept nogil:
    """Best cell, its price-adjusted cost and the second-best cost among i's candidates: the
    window of radius ``wa`` around the anchor, of radius ``wb`` around the own cell, and the
    extra cells ``xidx[xptr[i]:xptr[i + 1]]`` (each cell counted once)."""
    cdef double x = px[i]
    cdef double y = py[i]
    cdef i64 ar = anchor[i] // cols
    cdef i64 ac = anchor[i] - ar * cols
    cdef i64 orr = own[i] // cols
    cdef i64 oc = own[i] - orr * cols
    cdef i64 r, c, j, k
    b1[0] = INFINITY
    b2[0] = INFINITY
    j1[0] = -1
    for r in range(imax(ar - wa, 0), imin(ar + wa, rows - 1) + 1):
        for c in range(imax(ac - wa, 0), imin(ac + wa, cols - 1) + 1):
            j = r * cols + c
            consider(pair_cost(x, y, r, c, metric) + prices[j], j, b1, b2, j1)
    for r in range(imax(orr - wb, 0), imin(orr + wb, rows - 1) + 1):
        for c in range(imax(oc - wb, 0), imin(oc + wb, cols - 1) + 1):
            if in_window(r, c, ar, ac, wa):
                continue
            j = r * cols + c
            consider(pair_cost(x, y, r, c, metric) + prices[j], j, b1, b2, j1)
    for k in range(xptr[i], xptr[i + 1]):
        j = xidx[k]
        r = j // cols
        c = j - r * cols
        if in_window(r, c, ar, ac, wa) or in_window(r, c, orr, oc, wb):
            continue
        consider(pair_cost(x, y, r, c, metric) + prices[j], j, b1, b2, j1)


cdef inline bint heap_less(double ka, i64 va, double kb, i64 vb) noexcept nogil:
    return ka < kb or (ka == kb and va < vb)


cdef i64 heap_push(double* hk, i64* hv, i64 size, double key, i64 val) noexcept nogil:
    """Push onto a binary min-heap ordered by (key, val); returns the new size."""
    cdef i64 k = size
    cdef i64 parent
    hk[k] = key
    hv[k] = val
    while k > 0:
        parent = (k - 1) >> 1
        if not heap_less(hk[k], hv[k], hk[parent], hv[parent]):
            break
        hk[parent], hk[k] = hk[k], hk[parent]
        hv[parent], hv[k] = hv[k], hv[parent]
        k = parent
    return size + 1


cdef i64 heap_pop(double* hk, i64* hv, i64 size) noexcept nogil:
    """Remove the top of the heap; returns the new size."""
    cdef i64 k = 0
    cdef i64 left, right, best
    size -= 1
    hk[0] = hk[size]
    hv[0] = hv[size]
    while True:
        left = 2 * k + 1
        if left >= size:
            break
        best = left
        right = left + 1
        if right < size and heap_less(hk[right], hv[right], hk[left], hv[left]):
            best = right
        if not heap_less(hk[best], hv[best], hk[k], hv[k]):
            break
        hk[best], hk[k] = hk[k], hk[best]
        hv[best], hv[k] = hv[k], hv[best]
        k = best
    return size


cdef i64 heap_valid_top(double* hk, i64* hv, i64* size, const double[::1] prices,
                        const i64[::1] owner, i64 dummy) noexcept nogil:
    """Drop entries of dummy-held cells and refresh stale prices until the top is current
    (prices only rise, so a stale entry sits too high and is re-pushed); the top cell or -1."""
    cdef i64 j
    while size[0] > 0:
        j = hv[0]
        if owner[j] == dummy:
            size[0] = heap_pop(hk, hv, size[0])
        elif hk[0] != prices[j]:
            size[0] = heap_pop(hk, hv, size[0])
            size[0] = heap_push(hk, hv, size[0], prices[j], j)
        else:
            return j
    return -1


def auction(const double[::1] px, const double[::1] py, i64 rows, i64 cols, int metric,
            const i64[::1] anchor, const i64[::1] own, i64 wa, i64 wb, const i64[::1] xptr,
            const i64[::1] xidx, double[::1] prices, i64[::1] assigned,
            const double[::1] eps_seq, i64 n_dummy, bint keep_first, double lone_gap,
            double price_cap):
    """Run one auction phase per entry of ``eps_seq``; updates ``prices`` and ``assigned``.

    Returns the number of bids, NO_CANDIDATE (-1) if a point has no candidate cell, or
    INFEASIBLE (-2) if a price passes ``price_cap``.
    """
    cdef i64 n = px.shape[0]
    cdef i64 m = rows * cols
    owner_arr = np.empty(m, dtype=np.int64)
    queue_arr = np.empty(n + 1, dtype=np.int64)
    hk_arr = np.empty(m + 1, dtype=np.float64)
    hv_arr = np.empty(m + 1, dtype=np.int64)
    cdef i64[::1] owner = owner_arr
    cdef i64[::1] queue = queue_arr
    cdef double[::1] hkv = hk_arr
    cdef i64[::1] hvv = hv_arr
    cdef i64 status
    with nogil:
        status = auction_phases(px, py, rows, cols, metric, anchor, own, wa, wb, xptr, xidx,
                                prices, assigned, eps_seq, n_dummy, keep_first, lone_gap,
                                price_cap, owner, queue, &hkv[0], &hvv[0])
    return status


cdef i64 auction_phases(const double[::1] px, const double[::1] py, i64 rows, i64 cols,
                        int metric, const i64[::1] anchor, const i64[::1] own, i64 wa, i64 wb,
                        const i64[::1] xptr, const i64[::1] xidx, double[::1] prices,
                        i64[::1] assigned, const double[::1] eps_seq, i64 n_dummy,
                        bint keep_first, double lone_gap, double price_cap, i64[::1] owner,
                        i64[::1] queue, double* hk, i64* hv) noexcept nogil:
    cdef i64 n = px.shape[0]
    cdef i64 m = rows * cols
    cdef i64 dummy = n
    cdef i64 bids = 0
    cdef i64 phase, i, j, s, sr, head, count, free_dummy, size, prev, j1, j2
    cdef double eps, b1, b2, p2
    cdef bint dummy_queued
    if True:
        for phase in range(eps_seq.shape[0]):
            eps = eps_seq[phase]
            if phase == 0 and not keep_first:
                for i in range(n):
                    assigned[i] = -1
            for j in range(m):
                owner[j] = -1
            head = 0
            count = 0
            for i in range(n):
                s = assigned[i]
                if s >= 0:
                    # keep the cell only if it is still within eps of the point's best candidate
                    scan(i, px, py, rows, cols, metric, anchor, own, wa, wb, xptr, xidx, prices,
                         &j1, &b1, &b2)
                    sr = s // cols
                    if pair_cost(px[i], py[i], sr, s - sr * cols, metric) + prices[s] <= b1 + eps:
                        owner[s] = i
                        continue
                    assigned[i] = -1
                queue[(head + count) % (n + 1)] = i
                count += 1
            free_dummy = n_dummy
            dummy_queued = False
            size = 0
            if n_dummy > 0:
                for j in range(m):
                    size = heap_push(hk, hv, size, prices[j], j)
                queue[(head + count) % (n + 1)] = dummy
                count += 1
                dummy_queued = True
            while count > 0:
                i = queue[head]
                head = (head + 1) % (n + 1)
                count -= 1
                bids += 1
                if i < n:
                    scan(i, px, py, rows, cols, metric, anchor, own, wa, wb, xptr, xidx, prices,
                         &j1, &b1, &b2)
                    if j1 < 0:
                        return NO_CANDIDATE
                    if b2 == INFINITY:
                        b2 = b1 + lone_gap
                    prices[j1] += b2 - b1 + eps
                    if prices[j1] > price_cap:
                        return INFEASIBLE
                    prev = owner[j1]
                    owner[j1] = i
                    assigned[i] = j1
                    if prev == dummy:
                        free_dummy += 1
                        size = heap_push(hk, hv, size, prices[j1], j1)
                        if not dummy_queued:
                            queue[(head + count) % (n + 1)] = dummy
                            count += 1
                            dummy_queued = True
                    elif prev >= 0:
                        assigned[prev] = -1
                        queue[(head + count) % (n + 1)] = prev
                        count += 1
                else:
                    dummy_queued = False
                    while free_dummy > 0:
                        j1 = heap_valid_top(hk, hv, &size, prices, owner, dummy)
                        size = heap_pop(hk, hv, size)
                        j2 = heap_valid_top(hk, hv, &size, prices, owner, dummy)
                        p2 = prices[j2] if j2 >= 0 else prices[j1]
                        prices[j1] = (prices[j1] if prices[j1] > p2 else p2) + eps
                        prev = owner[j1]
                        owner[j1] = dummy
                        free_dummy -= 1
                        if prev >= 0:
                            assigned[prev] = -1
                            queue[(head + count) % (n + 1)] = prev
                            count += 1
    return bids


cdef inline double gap(double v, double lo, double hi) noexcept nogil:
    """Distance from ``v`` to the interval [lo, hi] (0 inside)."""
    return lo - v if v < lo else (v - hi if v > hi else 0.0)


#: Side of the cell blocks whose lowest price bounds the certificate's search.
DEF BLOCK = 8
#: Points below which the certificate runs on one thread (waking threads cost more there, and
#: on a busy machine a descheduled thread stalls the whole loop).
DEF PARALLEL_MIN = 20000


def violations(const double[::1] px, const double[::1] py, i64 rows, i64 cols, int metric,
               const i64[::1] assigned, const double[::1] prices, double eps, i64 keep):
    """For each point, up to ``keep`` cells that break eps-slackness, most violated first
    (N x keep, -1 padding), the number of violating pairs and the largest violation beyond
    eps.

    Only cells with cost(i, j) + p[j] < t_i - eps can break it. The search around each point is
    bounded by the lowest price overall, and each ``BLOCK`` x ``BLOCK`` block of cells inside
    that bound is skipped when its nearest cell centre plus its own lowest price already reach
    the limit. Points are checked in parallel (OpenMP) from ``PARALLEL_MIN`` points on.
    """
    cdef i64 n = px.shape[0]
    cdef double pmin = INFINITY
    cdef i64 i, j, q, r, c, s, sr, slot, r_lo, r_hi, c_lo, c_hi, br, bc, rr0, rr1, cc0, cc1
    cdef double x, y, t, limit, reach, rad, cost, v, dx, dy, bound
    cdef i64 nbr = (rows + BLOCK - 1) // BLOCK
    cdef i64 nbc = (cols + BLOCK - 1) // BLOCK
    bmin_arr = np.full((nbr, nbc), np.inf, dtype=np.float64)
    cdef double[:, ::1] bmin = bmin_arr
    for j in range(prices.shape[0]):
        if prices[j] < pmin:
            pmin = prices[j]
        r = j // cols
        c = j - r * cols
        if prices[j] < bmin[r // BLOCK, c // BLOCK]:
            bmin[r // BLOCK, c // BLOCK] = prices[j]
    out_arr = np.full((n, keep), -1, dtype=np.int64)
    vals_arr = np.full((n, keep), np.inf, dtype=np.float64)
    counts_arr = np.zeros(n, dtype=np.int64)
    worst_arr = np.zeros(n, dtype=np.float64)
    cdef i64[:, ::1] out = out_arr
    cdef double[:, ::1] vals = vals_arr
    cdef i64[::1] counts = counts_arr
    cdef double[::1] worst = worst_arr
    cdef int threads = omp_get_max_threads() if n >= PARALLEL_MIN else 1
    for i in prange(n, nogil=True, schedule="dynamic", chunksize=256, num_threads=threads):
        x = px[i]
        y = py[i]
        s = assigned[i]
        sr = s // cols
        t = pair_cost(x, y, sr, s - sr * cols, metric) + prices[s]
        limit = t - eps
        reach = limit - pmin
        if reach <= 0.0:
            continue
        rad = sqrt(reach) if metric == 0 else reach
        r_lo = imax(<i64>floor(y - rad - 0.5), 0)
        r_hi = imin(<i64>ceil(y + rad - 0.5), rows - 1)
        c_lo = imax(<i64>floor(x - rad - 0.5), 0)
        c_hi = imin(<i64>ceil(x + rad - 0.5), cols - 1)
        for br in range(r_lo // BLOCK, r_hi // BLOCK + 1):
            rr0 = imax(br * BLOCK, r_lo)
            rr1 = imin(br * BLOCK + BLOCK - 1, r_hi)
            dy = gap(y, rr0 + 0.5, rr1 + 0.5)
            for bc in range(c_lo // BLOCK, c_hi // BLOCK + 1):
                cc0 = imax(bc * BLOCK, c_lo)
                cc1 = imin(bc * BLOCK + BLOCK - 1, c_hi)
                dx = gap(x, cc0 + 0.5, cc1 + 0.5)
                bound = dx * dx + dy * dy
                if metric == 1:
                    bound = sqrt(bound)
                if bound + bmin[br, bc] >= limit:
                    continue
                for r in range(rr0, rr1 + 1):
                    for c in range(cc0, cc1 + 1):
                        cost = pair_cost(x, y, r, c, metric)
                        if cost >= reach:
                            continue
                        j = r * cols + c
                        v = cost + prices[j]
                        if v < limit:
                            counts[i] = counts[i] + 1
                            if limit - v > worst[i]:
                                worst[i] = limit - v
                            # keep the most violated cells: replace the largest stored value
                            slot = 0
                            for q in range(1, keep):
                                if vals[i, q] > vals[i, slot]:
                                    slot = q
                            if v < vals[i, slot]:
                                vals[i, slot] = v
                                out[i, slot] = j
    return out_arr, int(counts_arr.sum()), float(worst_arr.max()) if n else 0.0


def spare_cell_gap(i64 n_cells, const i64[::1] assigned, const double[::1] prices):
    """max(price of unused cells) - min(price of used cells); -inf when no cell is spare."""
    used_arr = np.zeros(n_cells, dtype=np.uint8)
    cdef unsigned char[::1] used = used_arr
    cdef double hi = -INFINITY
    cdef double lo = INFINITY
    cdef i64 i, j
    for i in range(assigned.shape[0]):
        used[assigned[i]] = 1
    for j in range(n_cells):
        if used[j]:
            if prices[j] < lo:
                lo = prices[j]
        elif prices[j] > hi:
            hi = prices[j]
    if hi == -INFINITY:
        return -INFINITY
    return hi - lo


cdef i64* stable_argsort_ptr(const double* key, i64 k, i64* idx, i64* tmp) noexcept nogil:
    """Stable argsort of ``key[:k]`` by bottom-up merging; returns the buffer holding it."""
    cdef i64 t, width, lo, mid, hi, a, b, o
    cdef i64* src = idx
    cdef i64* dst = tmp
    cdef i64* swap
    for t in range(k):
        idx[t] = t
    width = 1
    while width < k:
        lo = 0
        while lo < k:
            mid = imin(lo + width, k)
            hi = imin(lo + 2 * width, k)
            a = lo
            b = mid
            o = lo
            while a < mid and b < hi:
                if key[src[b]] < key[src[a]]:
                    dst[o] = src[b]
                    b += 1
                else:
                    dst[o] = src[a]
                    a += 1
                o += 1
            while a < mid:
                dst[o] = src[a]
                a += 1
                o += 1
            while b < hi:
                dst[o] = src[b]
                b += 1
                o += 1
            lo += 2 * width
        swap = src
        src = dst
        dst = swap
        width *= 2
    return src


def stable_argsort(const double[::1] key, i64 k):
    """``np.argsort(key[:k], kind="stable")``, by the merge the bisection uses."""
    idx = np.empty(max(k, 1), dtype=np.int64)
    tmp = np.empty(max(k, 1), dtype=np.int64)
    cdef i64[::1] iv = idx
    cdef i64[::1] tv = tmp
    if k == 0:
        return idx[:0]
    cdef i64* got = stable_argsort_ptr(&key[0], k, &iv[0], &tv[0])
    return (idx if got == &iv[0] else tmp)[:k]


cdef inline void put_segment(i64[::1] stack, i64 at, i64 start, i64 stop, i64 r0, i64 r1,
                             i64 c0, i64 c1) noexcept nogil:
    """Write one (start, stop, r0, r1, c0, c1) segment of the bisection's stack at ``at``."""
    stack[at] = start
    stack[at + 1] = stop
    stack[at + 2] = r0
    stack[at + 3] = r1
    stack[at + 4] = c0
    stack[at + 5] = c1


def bisect(const double[::1] px, const double[::1] py, i64 rows, i64 cols):
    """One distinct cell per point by recursive bisection of the grid (see ``partition``)."""
    cdef i64 n = px.shape[0]
    out_arr = np.empty(n, dtype=np.int64)
    if n == 0:
        return out_arr
    order_arr = np.arange(n, dtype=np.int64)
    key_arr = np.empty(n, dtype=np.float64)
    seg_arr = np.empty(n, dtype=np.int64)
    idx_arr = np.empty(n, dtype=np.int64)
    tmp_arr = np.empty(n, dtype=np.int64)
    # stack of (start, stop, r0, r1, c0, c1) segments over ``order``, flattened
    cdef i64 depth = 64 + 2 * <i64>log2(n + 1) + 2 * <i64>log2(rows * cols + 1)
    stack_arr = np.empty(6 * depth, dtype=np.int64)
    cdef i64[::1] out = out_arr
    cdef i64[::1] order = order_arr
    cdef double[::1] key = key_arr
    cdef i64[::1] seg = seg_arr
    cdef i64[::1] idx = idx_arr
    cdef i64[::1] tmp = tmp_arr
    cdef i64[::1] stack = stack_arr
    cdef i64 top, b, s, e, r0, r1, c0, c1, k, h, w, cut, cap_lo, cap_hi, inside, t, n_lo
    cdef bint along_cols
    cdef i64* rank
    with nogil:
        stack[0] = 0
        stack[1] = n
        stack[2] = 0
        stack[3] = rows
        stack[4] = 0
        stack[5] = cols
        top = 1
        while top > 0:
            top -= 1
            b = 6 * top
            s = stack[b]
            e = stack[b + 1]
            r0 = stack[b + 2]
            r1 = stack[b + 3]
            c0 = stack[b + 4]
            c1 = stack[b + 5]
            k = e - s
            if k == 0:
                continue
            h = r1 - r0
            w = c1 - c0
            if h * w == 1:
                out[order[s]] = r0 * cols + c0
                continue
            along_cols = w >= h
            if along_cols:
                cut = c0 + w // 2
                cap_lo = h * (cut - c0)
                cap_hi = h * (c1 - cut)
            else:
                cut = r0 + h // 2
                cap_lo = w * (cut - r0)
                cap_hi = w * (r1 - cut)
            inside = 0
            for t in range(k):
                seg[t] = order[s + t]
                key[t] = px[seg[t]] if along_cols else py[seg[t]]
                if key[t] < cut:
                    inside += 1
            rank = stable_argsort_ptr(&key[0], k, &idx[0], &tmp[0])
            for t in range(k):
                order[s + t] = seg[rank[t]]
            n_lo = imin(imax(inside, k - cap_hi), cap_lo)
            if along_cols:
                put_segment(stack, 6 * top, s, s + n_lo, r0, r1, c0, cut)
                put_segment(stack, 6 * top + 6, s + n_lo, e, r0, r1, cut, c1)
            else:
                put_segment(stack, 6 * top, s, s + n_lo, r0, cut, c0, c1)
                put_segment(stack, 6 * top + 6, s + n_lo, e, cut, r1, c0, c1)
            top += 2
    return out_arr
