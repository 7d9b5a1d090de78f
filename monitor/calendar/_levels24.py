"""The level pass of the clock kernel for the default mode, written to vectorise.

``clock_kernel`` (``_kernel``) serves every calendar: time zones with offset
changes, office hours, and its loop branches per clock (out of range, paused,
the rare just-after-a-second check). In the default mode (one UTC offset,
days counted to 24:00, no office hours) the scheduler's full pass at 10M open
clocks was 87% that level arithmetic, run as a scalar loop. This twin computes
the same values, bit for bit (tests/calendar/test_levels24.py holds it to
``clock_kernel``), with no branch left on the data: every table read is on a
clamped 32-bit index, every alternative is computed and one selected, so
LLVM can turn the loop into AVX2 gathers and selects.

What it exploits of the mode: local day ``d`` starts at ``t0 + 86400 * d``,
so a working day's end is computed from ``nth_day`` rather than read from
``nth_end`` (32-bit gathers: twice as many a register), and W(t) needs one
read of ``ltab[d] = 2 * cum[d] + work[d]`` (a day's working share is 0 or
the whole elapsed fraction). The floating-point expressions are those of
``_kernel``, in the same order, so results are identical rather than close.
"""

from __future__ import annotations

import functools

import numba as nb
import numpy as np

from ._kernel import NAT, SERIAL_BELOW, _jit, parallel_here

# _kernel's tolerances, copied rather than imported: numba bakes a global into the
# machine code it caches, and a cached kernel is invalidated only when its own file
# changes, so a tolerance changed in _kernel alone would leave these kernels computing
# with the old one (tests/calendar/test_levels24.py holds the copies to _kernel's).
_EPS = 1e-7
_LEVEL_EPS = 1e-6
_LEVEL_TOL = _LEVEL_EPS + 1e-9
_JUST_AFTER = 2e-4

_DAY32 = np.uint32(86400)
_SPAN_MAX = 1e9  # clamp of spans in working days, as _kernel's; fits int32 with cum added


@_jit(inline="always")
def _lo(a, b):  # type: ignore[no-untyped-def]
    """min(a, b) as a select: numba's builtin is a call the loop vectoriser cannot
    look into. Python's semantics (the first argument unless the second is smaller)."""
    return b if b < a else a


@_jit(inline="always")
def _hi(a, b):  # type: ignore[no-untyped-def]
    """max(a, b) as a select (see _lo)."""
    return b if b > a else a


@_jit(inline="always")
def _seconds(t, t0, n_days):  # type: ignore[no-untyped-def]
    """Seconds since local midnight of day 0, clamped to the range's end (NaT and
    instants before the origin wrap into the clamp), in 32 bits."""
    return np.uint32(_lo(np.uint64(t - t0), np.uint64(n_days) * np.uint64(86400)))


@_jit(inline="always")
def _worked(u, d, ltab):  # type: ignore[no-untyped-def]
    """W(t) for ``u`` seconds since the origin on local day ``d`` (< n_days): the same
    float operations as ``_kernel._worked`` (cum[d] + share * elapsed / 86400)."""
    e = ltab[d]
    elapsed = np.int32(u - np.uint32(d * _DAY32))
    frac = np.float64(elapsed) / 86400.0
    return np.float64(np.int32(e >> 1)) + np.float64(np.int32(e & 1)) * frac


@_jit(inline="always")
def _consumed(w, c0, pause_total):  # type: ignore[no-untyped-def]
    """``_kernel._consumed``: one expression for level test and crossing."""
    return _hi(_hi(w - c0, 0.0) - pause_total, 0.0)


@_jit(inline="always")
def _end_index(span, c0i, cds, n_work):  # type: ignore[no-untyped-def]
    """Working-day number in which ``span`` working days after the start are reached,
    unclamped above (>= n_work: beyond the calendar); ``cds`` = cum[start day]."""
    sc = _lo(span, _SPAN_MAX) if span > _EPS else 1.0  # NaN never reaches the conversion
    k = np.int32(c0i + np.int32(np.ceil(sc - _EPS)) - np.int32(1))
    return k if span > _EPS else cds


@_jit(inline="always")
def _day_end(k, n_work, t0, nth_day):  # type: ignore[no-untyped-def]
    """End (UTC) of working day number ``k``; NaT from ``n_work`` on."""
    kc = np.uint32(_lo(_hi(k, np.int32(0)), np.int32(n_work)))
    end = t0 + np.int64(np.uint32(np.uint32(nth_day[kc] + 1) * _DAY32))
    return end if kc < np.uint32(n_work) else NAT


@_jit(inline="always")
def _reached(x, t_x, allowed, used, now):  # type: ignore[no-untyped-def]
    """``_kernel._reached`` given the deadline-like end ``t_x`` of threshold ``x``."""
    beyond = (t_x != NAT) & (now >= t_x)
    return (used >= x - _LEVEL_TOL) & ((x < allowed - _LEVEL_EPS) | beyond)


@_jit(inline="always")
def _exact(x, line, allowed, total, c0, t0, n_work, nth_day):  # type: ignore[no-untyped-def]
    """``_kernel._due_at`` given the deadline-like end ``line`` of ``x``: the first whole
    second at which consumed time is within _LEVEL_TOL of ``x``; NaT for none.
    The just-after-a-second check is computed for every clock and selected."""
    target = c0 + total + _hi(x - _LEVEL_EPS, 0.0)
    kk = np.int32(np.int32(np.ceil(_lo(_hi(target, 1.0), _SPAN_MAX))) - np.int32(1))
    k = np.int32(_lo(kk, np.int32(n_work - 1)))
    f = _lo(target - np.float64(k), 1.0)
    d = np.uint32(nth_day[np.uint32(k)])
    tod = f * 86400.0
    sec = np.int32(np.ceil(tod - 1e-6))
    lead = np.float64(sec) - tod
    exact = t0 + np.int64(np.uint32(np.uint32(d * _DAY32) + np.uint32(sec)))
    # W one second earlier, as _kernel computes it: that second lies on day d (sec >= 1
    # whenever lead is large), which is working day k, so cum[d] = k and work[d] = 1
    wb = np.float64(k) + np.float64(sec - np.int32(1)) / 86400.0
    back = (lead > 1.0 - _JUST_AFTER) & (_consumed(wb, c0, total) >= x - _LEVEL_TOL)
    exact = exact - np.int64(back)
    exact = exact if kk < np.int32(n_work) else NAT
    return line if x >= allowed - _LEVEL_EPS else exact


@_jit(parallel=True)
def levels24_kernel(  # type: ignore[no-untyped-def]
    starts,
    limits,
    extensions,
    paused,
    paused_since,
    now,
    t0,
    ltab,
    nth_day,
    blue_at,
    yellow_at,
    red_at,
    issued,
    level_out,
    next_out,
):
    """``clock_kernel``'s level and next-rise outputs, default mode only (see the module).

    ``ltab``: [n_days + 1] int32 ``2 * cum[d] + work[d]``; ``nth_day``: the calendar's
    (its last entry a sentinel). ``red_at`` explicit (the scheduler's table always has
    it; a None would be a second compilation). Returns how many clocks could not be
    evaluated (level -1, next NaT), as ``clock_kernel``; how many rose above
    ``issued`` (the level already issued; int8); and the earliest next rise as uint64
    (NaT, the int64 minimum, is 2**63 there: none). The two reductions ride on values
    in registers, where the caller's passes over the outputs read 90 MB at 10M clocks.
    """
    n_days = ltab.shape[0] - 1
    n_work = nth_day.shape[0] - 1
    un = _seconds(now, t0, n_days)
    dn = np.uint32(un // _DAY32)
    if dn >= np.uint32(n_days):
        for i in nb.prange(starts.shape[0]):
            level_out[i] = -1
            next_out[i] = NAT
        return starts.shape[0], 0, np.uint64(NAT)
    wn = _worked(un, dn, ltab)
    bad = 0
    rose = 0
    low = np.uint64(NAT)
    for i in nb.prange(starts.shape[0]):
        us = _seconds(starts[i], t0, n_days)
        ds = np.uint32(us // _DAY32)
        e = ltab[_lo(ds, np.uint32(n_days - 1))]
        cds = np.int32(e >> 1)
        c0i = np.int32(cds + np.int32(e & 1))  # cum[ds + 1]
        c0 = np.float64(c0i)
        p = paused_since[i]
        up = _seconds(p, t0, n_days)
        dp = np.uint32(up // _DAY32)
        valid = dp < np.uint32(n_days)
        wp = _worked(up, _lo(dp, np.uint32(n_days - 1)), ltab)
        w_frozen = wp if valid else wn
        frozen = valid & (p <= now)
        wp = _hi(wp, c0)
        open_pause = wn - wp if (valid & (wn > wp)) else 0.0
        closed = paused[i]
        pause_total = closed + open_pause
        allowed = np.float64(limits[i]) + np.float64(extensions[i])
        ok = (ds < np.uint32(n_days)) & (
            _end_index(allowed + pause_total, c0i, cds, n_work) < np.int32(n_work)
        )
        # while paused: consumed time and deadline as at the pause's start (clock_kernel)
        total = closed if frozen else pause_total
        used = _consumed(w_frozen if frozen else wn, c0, total)
        xr = red_at[i]
        xy = yellow_at[i]
        xb = blue_at[i]
        tr = _day_end(_end_index(xr + total, c0i, cds, n_work), n_work, t0, nth_day)
        ty = _day_end(_end_index(xy + total, c0i, cds, n_work), n_work, t0, nth_day)
        tb = _day_end(_end_index(xb + total, c0i, cds, n_work), n_work, t0, nth_day)
        r3 = np.int32(_reached(xr, tr, allowed, used, now))
        r2 = np.int32(_reached(xy, ty, allowed, used, now))
        r1 = np.int32(_reached(xb, tb, allowed, used, now))
        level = _hi(np.int32(3) * r3, _hi(np.int32(2) * r2, r1))
        # the lowest threshold above the level, and its deadline-like end
        cr = (xr == xr) & (level < 3)
        cy = (xy == xy) & (level < 2)
        cb = (xb == xb) & (level < 1)
        best = xr if cr else np.inf
        line = tr
        y_first = cy & (xy < best)
        best = xy if y_first else best
        line = ty if y_first else line
        b_first = cb & (xb < best)
        best = xb if b_first else best
        line = tb if b_first else line
        t = _exact(best, line, allowed, total, c0, t0, n_work, nth_day)
        pending = used >= best - _LEVEL_TOL
        never = (best == np.inf) | (t == NAT) | (frozen & (not pending))
        lv = np.int8(level) if ok else np.int8(-1)
        nx = NAT if (never | (not ok)) else t
        level_out[i] = lv
        next_out[i] = nx
        bad += int(not ok)
        rose += int(lv > issued[i])
        low = min(low, np.uint64(nx))
    return bad, rose, low


_BLOCK = 64


@_jit()
def rows_above(level, issued, count):  # type: ignore[no-untyped-def]
    """The ``count`` rows where ``level > issued``, in order: after a pass that counted
    them, the rows themselves. A block of 64 rows is tested branch-free and read again
    only if it holds one, which at a few thousand of 10M is 0.5 ms where numpy's
    ``flatnonzero`` of the comparison takes 1.9 (it writes and reads a 10 MB mask)."""
    out = np.empty(count, dtype=np.intp)
    n = level.shape[0]
    whole = n - n % _BLOCK
    j = 0
    for b in range(0, whole, _BLOCK):
        hit = False
        for i in range(b, b + _BLOCK):
            hit |= level[i] > issued[i]
        if hit:
            for i in range(b, b + _BLOCK):
                if level[i] > issued[i] and j < count:  # no bounds checks: never past out
                    out[j] = i
                    j += 1
    for i in range(whole, n):
        if level[i] > issued[i] and j < count:
            out[j] = i
            j += 1
    return out[:j]


def _compile_features() -> set[str]:
    """The CPU features numba compiles for (its NUMBA_CPU_FEATURES, else the host's)."""
    from numba.core import codegen, config

    features: str = getattr(config, "CPU_FEATURES", None) or codegen.get_host_cpu_features()  # type: ignore[no-untyped-call]
    return set(features.split(","))


@functools.cache
def vectorises() -> bool:
    """Whether LLVM turns this kernel into SIMD gathers on the CPU numba compiles for.

    Its cost model allows gathers only with AVX-512 or a CPU tuned for fast gathers
    (not Zen 2/3): there the loop stays scalar, and branch-free scalar code is slower
    than clock_kernel's predicted branches (docs/performance.md). NUMBA_CPU_FEATURES
    with ``+fast-gather`` added turns it on for such a host.
    """
    flags = _compile_features()
    return "+fast-gather" in flags or "+avx512f" in flags


def worth_it(n: int) -> bool:
    """Whether ``Calendar.levels`` should take this kernel for ``n`` clocks: a parallel-sized
    pass on a CPU where it vectorises (below SERIAL_BELOW the serial generic kernel wins),
    from the main thread (``_kernel.parallel_here``)."""
    return n >= SERIAL_BELOW and vectorises() and parallel_here()
