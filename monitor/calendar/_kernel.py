"""numba kernels of the working-day calendar.

Every kernel works on int64 UTC seconds and on the tables of a built
calendar (see ``_tables.Tables``); outputs are preallocated by the caller, so
nothing is allocated inside the compiled loops. Local days are indexed from
the calendar's first day (index 0); working time is measured in working days
as float64: a working day contributes 1.0, spread over its 24 hours (or over
its office hours), a rest day contributes 0.

Cumulative working time up to an instant t on local day d is::

    W(t) = cum[d] + (cum[d + 1] - cum[d]) * fraction_of_day(t)

and a clock started on day s counts from ``cum[s + 1]`` (the starting day is
not counted, Civil Code art. 201). Everything below is built on that.

Hot-path rules: divisions by the day length are unsigned (the instant is
shifted by the table's origin first, so a negative or NaT input wraps to a
huge value and fails the range check instead of needing a signed floor),
and tables are read only through precomputed indices.

The kernels and their inlined helpers stay in this one file although it is
long: numba invalidates a cached kernel only when its own source file
changes, so a helper moved to another file and edited there would leave the
kernels that inline it running their old machine code from the cache.
"""

from __future__ import annotations

import math
import threading
import types
from typing import Any, Literal

import numba as nb
import numpy as np

NAT = np.iinfo(np.int64).min
_DAY = np.uint64(86400)
# Tolerance when rounding accumulated working time up to whole days: instants
# are whole seconds, so a genuine fraction is at least 1/86400 day; float
# sums of cum + fraction differ from exact by ~1e-12.
_EPS = 1e-7
# A level is due once consumed time reaches its threshold less _LEVEL_EPS, and
# the next-crossing instant is the first whole second at which that happens,
# so the two agree by construction; _LEVEL_TOL adds float noise to the test.
# One second is 1.2e-5 working days, far above both.
_LEVEL_EPS = 1e-6
_LEVEL_TOL = _LEVEL_EPS + 1e-9
# The 1e-9 wd between them is at most 90 µs (a 25-hour day): a crossing that close
# after a whole second may already count at that second (see _due_at).
_JUST_AFTER = 2e-4


def _jit(*, parallel: bool = False, inline: Literal["never", "always"] = "never") -> Any:
    """One set of compile options for every kernel: cached, GIL-free, no checks."""
    return nb.njit(
        cache=True,
        nogil=True,
        error_model="numpy",
        boundscheck=False,
        parallel=parallel,
        inline=inline,
    )


@_jit(inline="always")
def _fixed_seconds(t, t0, n_days):  # type: ignore[no-untyped-def]
    """Seconds since the table's origin, clamped to the range's end (NaT and instants
    before the origin wrap into the clamp), in 32 bits: the range is < 2^32 s (see
    _tables), and LLVM vectorises a 32-bit division by the day length, not a 64-bit one."""
    return np.uint32(min(np.uint64(t - t0), np.uint64(n_days) * _DAY))


@_jit(inline="always")
def _local_day(t, t0, n_days, day_start):  # type: ignore[no-untyped-def]
    """Index of the local day holding instant ``t``; ``n_days`` when out of range.

    ``day_start`` is None for a zone with one UTC offset: then this is a clamp,
    no branch, and numba compiles that case separately (an ``is None`` test on
    an argument's type is decided at compile time), so callers' loops stay
    branch-free. Otherwise ``t0 + d * 86400`` is only a guess at local
    midnight (DST moves it by hours) and the day-start table corrects it.
    """
    d = np.int64(min(np.uint64(t - t0) // _DAY, np.uint64(n_days)))
    if day_start is None:
        return d
    if d >= n_days:
        if t == NAT or t < t0:
            return n_days
        d = n_days - 1  # may still be inside the last day when offsets shifted
    if t < day_start[d]:
        d -= 1
    elif t >= day_start[d + 1]:
        d += 1
    if d < 0 or d >= n_days:
        return n_days
    return d


@_jit(inline="always")
def _fraction(t, d, t0, day_start, trans, shift, oh_start, oh_end, oh_total):  # type: ignore[no-untyped-def]
    """Share of local day ``d``'s working time that has elapsed at instant ``t``."""
    if day_start is None:
        elapsed = np.int64(t - t0 - d * np.int64(86400))
        length = np.int64(86400)
    else:
        elapsed = t - day_start[d]
        length = day_start[d + 1] - day_start[d]
    if oh_start.shape[0] == 0:
        return elapsed / length
    # Office hours are wall-clock times: undo a DST change earlier this day.
    tod = elapsed
    if day_start is not None and t >= trans[d]:
        tod += shift[d]
    acc = np.int64(0)
    for p in range(oh_start.shape[0]):
        if tod > oh_start[p]:
            acc += min(tod, oh_end[p]) - oh_start[p]
    return acc / oh_total


@_jit(inline="always")
def _worked(t, d, t0, day_start, trans, shift, oh_start, oh_end, oh_total, cum):  # type: ignore[no-untyped-def]
    """W(t): working days elapsed from the table's origin to instant ``t`` on local day ``d``."""
    lo = cum[d]
    frac = _fraction(t, d, t0, day_start, trans, shift, oh_start, oh_end, oh_total)
    return lo + (cum[d + 1] - lo) * frac


@_jit(parallel=True)
def deadline_kernel(  # type: ignore[no-untyped-def]
    starts,
    workdays,
    out,
    prov_out,
    t0,
    day_start,
    cum_pad,
    pcum,
    nth_end,
    nth_pcum,
):
    """End of the N-th working day counted after each start's local day.

    N = 0 means the end of the first working day on or after the start day
    (an immediate case). Writes NaT for NaT starts; returns how many inputs
    were outside the calendar (their output is NaT too).

    Branch-free: an out-of-range day reads ``cum_pad``'s two huge sentinel
    entries, which push ``k`` past the last working day onto ``nth_end``'s
    trailing NaT (a third faster than testing each case).
    """
    n_days = cum_pad.shape[0] - 2
    n_work = nth_end.shape[0] - 1
    bad = 0
    for i in nb.prange(starts.shape[0]):
        t = starts[i]
        n = np.int64(workdays[i])
        if day_start is None:
            # The 32-bit division vectorises this loop. In the clock kernel it measured no
            # better (maybe worse, within this VM's drift), so _local_day keeps 64 bits.
            d = np.int64(_fixed_seconds(t, t0, n_days) // np.uint32(86400))
        else:
            d = _local_day(t, t0, n_days, day_start)
        pos = np.int64(n > 0)
        a = d + pos
        k = np.int64(cum_pad[a]) + n - pos
        ok = (k >= 0) & (k < n_work) & (n >= 0)
        k = k if ok else n_work
        out[i] = nth_end[k]
        if prov_out is not None:
            prov_out[i] = ok and nth_pcum[k] > pcum[min(a, n_days)]
        bad += int((not ok) & (t != NAT))
    return bad


@_jit(parallel=True)
def count_kernel(  # type: ignore[no-untyped-def]
    starts,
    ends,
    out,
    prov_out,
    t0,
    day_start,
    trans,
    shift,
    oh_start,
    oh_end,
    oh_total,
    cum,
    pcum,
):
    """Working days from the clock start (00:00 after each start's day) to each end.

    Ends before the clock starts count 0. NaN for NaT inputs; returns how many
    inputs were outside the calendar (NaN too).
    """
    n_days = cum.shape[0] - 1
    bad = 0
    for i in nb.prange(starts.shape[0]):
        s = starts[i]
        e = ends[i]
        ds = _local_day(s, t0, n_days, day_start)
        de = _local_day(e, t0, n_days, day_start)
        if ds >= n_days or de >= n_days:
            out[i] = np.nan
            if prov_out is not None:
                prov_out[i] = False
            if s != NAT and e != NAT:
                bad += 1
            continue
        w = _worked(e, de, t0, day_start, trans, shift, oh_start, oh_end, oh_total, cum)
        r = w - cum[ds + 1]
        out[i] = r if r > 0.0 else 0.0
        if prov_out is not None:
            prov_out[i] = de > ds and pcum[de + 1] > pcum[ds + 1]
    return bad


@_jit(parallel=True)
def count_kernel_24h(starts, ends, out, prov_out, t0, ctab, pcum):  # type: ignore[no-untyped-def]
    """``count_kernel`` for the default mode: one UTC offset, days counted to 24:00.

    In whole seconds: ``ctab[d] = 2 * (working seconds before day d) + work[d]``,
    so W(t) is two table reads, integer arithmetic and one exact division.
    Branch-free and 32-bit where it can be, so LLVM vectorises the loop
    (gathers): measured 15% faster than the scalar form with its range branch.
    """
    n_days = ctab.shape[0] - 2
    bad = 0
    for i in nb.prange(starts.shape[0]):
        s = starts[i]
        e = ends[i]
        us = _fixed_seconds(s, t0, n_days)
        ue = _fixed_seconds(e, t0, n_days)
        ds = us // np.uint32(86400)
        de = ue // np.uint32(86400)
        ok = (ds < n_days) & (de < n_days)
        ce = ctab[de]
        elapsed = np.int64(ue - de * np.uint32(86400))
        w = (ce >> 1) + (elapsed & -(ce & 1)) - (ctab[ds + 1] >> 1)
        r = max(np.float64(w) / 86400.0, 0.0)
        out[i] = r if ok else np.nan
        if prov_out is not None:
            a, b = min(np.int64(ds), n_days - 1), min(np.int64(de), n_days - 1)
            prov_out[i] = ok and b > a and pcum[b + 1] > pcum[a + 1]
        bad += int((not ok) & (s != NAT) & (e != NAT))
    return bad


@_jit(inline="always")
def _unknown(i, consumed_out, remaining_out, deadline_out, prov_out, level_out, next_out):  # type: ignore[no-untyped-def]
    """Mark clock ``i`` as not evaluable (outside the calendar's range)."""
    if consumed_out is not None:
        consumed_out[i] = np.nan
    if remaining_out is not None:
        remaining_out[i] = np.nan
    if deadline_out is not None:
        deadline_out[i] = NAT
    if prov_out is not None:
        prov_out[i] = False
    if level_out is not None:
        level_out[i] = -1
        next_out[i] = NAT


@_jit(inline="always")
def _end_of(span, c0, ds, cum, nth_end, n_work):  # type: ignore[no-untyped-def]
    """End of the working day in which ``span`` working days after the start are reached."""
    k = np.int64(c0) + np.int64(math.ceil(span - _EPS)) - 1 if span > _EPS else np.int64(cum[ds])
    return nth_end[k] if k < n_work else NAT


_NEVER = np.iinfo(np.int64).max


@_jit(inline="always")
def _consumed(w, c0, pause_total):  # type: ignore[no-untyped-def]
    """Working time a clock started at W = ``c0`` has consumed at W = ``w``: one
    expression for the level test and the crossing instant, so they agree to the bit."""
    return max(max(w - c0, 0.0) - pause_total, 0.0)


@_jit(inline="always")
def _due_at(x, allowed, pause_total, c0, ds, t0, day_start, trans, shift, oh_start, oh_end,  # type: ignore[no-untyped-def]
            oh_total, cum, nth_end, nth_day, n_work):  # fmt: skip
    """The instant threshold ``x`` (working days consumed) is reached; _NEVER for NaN.

    Below the limit: the first whole second at which _reached says so, i.e.
    consumed time gets within _LEVEL_TOL of it: found by inverting W at
    _LEVEL_EPS below ``x``, then, when that crossing falls just after a whole
    second (within the 1e-9 wd between the two tolerances), testing the second
    before with _reached's own arithmetic. At or beyond it: like a deadline, the end of the
    working day in which it gets there (so ``x`` = the limit is the deadline
    itself). Both are computed and one selected: the tables are small and cached.
    """
    span = x + pause_total
    k = np.int64(c0) + np.int64(math.ceil(min(max(span, 0.0), 1e9) - _EPS)) - 1
    k = k if span > _EPS else np.int64(cum[ds])
    k = min(max(k, np.int64(0)), n_work)  # n_work: the trailing NaT
    line = nth_end[k]
    target = c0 + pause_total + max(x - _LEVEL_EPS, 0.0)
    kk = np.int64(math.ceil(min(max(target, 1.0), 1e9))) - 1  # exact: see _LEVEL_EPS
    exact, lead = _instant_of(target, min(kk, n_work - 1), t0, day_start, trans, shift,
                              oh_start, oh_end, oh_total, nth_day)  # fmt: skip
    if lead > 1.0 - _JUST_AFTER:  # rare, so predicted: a test on every clock cost 40 ms at 10M
        n_days = cum.shape[0] - 1
        before = exact - 1
        db = min(_local_day(before, t0, n_days, day_start), n_days - 1)
        wb = _worked(before, db, t0, day_start, trans, shift, oh_start, oh_end, oh_total, cum)
        if _consumed(wb, c0, pause_total) >= x - _LEVEL_TOL:
            exact = before
    exact = exact if kk < n_work else NAT
    t = line if x >= allowed - _LEVEL_EPS else exact
    return _NEVER if (x != x or x == np.inf or t == NAT) else t


@_jit(inline="always")
def _reached(x, allowed, deadline, used, now, pause_total, c0, ds, cum, nth_end, n_work):  # type: ignore[no-untyped-def]
    """Whether threshold ``x`` is reached at ``now`` (False for NaN); see _due_at.

    At or beyond the limit: once consumed time got there and that working day has
    ended. For a running clock the second implies the first; for a paused one
    (``used`` and ``pause_total`` as at the pause's start) it keeps a crossing the
    pause cut short from counting while the open pause pushes the day's end out.
    Branches only on the kind of threshold (the same for every clock of a rule,
    so predicted); the outcome is computed without one.
    """
    if x != x:
        return False
    got_there = used >= x - _LEVEL_TOL
    if x < allowed - _LEVEL_EPS:
        return got_there
    if x == allowed:
        t = deadline
    else:
        span = x + pause_total
        k = np.int64(c0) + np.int64(math.ceil(min(max(span, 0.0), 1e9) - _EPS)) - 1
        k = k if span > _EPS else np.int64(cum[ds])
        t = nth_end[min(max(k, np.int64(0)), n_work)]  # n_work: the trailing NaT
    return got_there & (t != NAT) & (now >= t)


@_jit(parallel=True)
def clock_kernel(  # type: ignore[no-untyped-def]
    starts,
    limits,
    extensions,
    paused,
    paused_since,
    now,
    consumed_out,
    remaining_out,
    deadline_out,
    prov_out,
    t0,
    day_start,
    trans,
    shift,
    oh_start,
    oh_end,
    oh_total,
    cum,
    pcum,
    nth_end,
    nth_pcum,
    nth_day,
    blue_at,
    yellow_at,
    red_at,
    level_out,
    next_out,
):
    """Evaluate running clocks at ``now`` (docs/rule-book.md §3).

    Per clock: working time consumed (pauses excluded), remaining against
    limit + extension, and the deadline pushed out by every working moment
    spent paused, rounded up to the end of the working day it falls in.
    ``paused`` is working time in closed pauses; ``paused_since`` the start
    of the open pause (NaT when running), which is charged up to ``now``.
    Returns how many clocks could not be evaluated (outside the calendar).

    With thresholds (working days consumed at which blue, yellow and red are
    due, NaN for none; ``red_at`` None means red at the deadline) it also
    writes the level due now (0 none, 1 blue, 2 yellow, 3 red) and the next
    instant at which the level would rise: NaT when nothing is left to cross.
    A paused clock's level is judged on its consumed time and deadline at the
    pause's start, so it holds through the pause; it rises only at the end of
    the working day of a deadline-like crossing made before the pause (a
    fractional limit or pause total), else its next rise is NaT (only an event
    can restart the clock). Without thresholds (None) that part is compiled away.
    """
    n_days = cum.shape[0] - 1
    n_work = nth_end.shape[0] - 1  # without the trailing NaT sentinel
    dn = _local_day(now, t0, n_days, day_start)
    if dn >= n_days:
        for i in nb.prange(starts.shape[0]):
            _unknown(i, consumed_out, remaining_out, deadline_out, prov_out, level_out, next_out)
        return starts.shape[0]
    wn = _worked(now, dn, t0, day_start, trans, shift, oh_start, oh_end, oh_total, cum)
    pn = pcum[dn + 1]
    bad = 0
    for i in nb.prange(starts.shape[0]):
        s = starts[i]
        ds = _local_day(s, t0, n_days, day_start)
        if ds >= n_days:
            _unknown(i, consumed_out, remaining_out, deadline_out, prov_out, level_out, next_out)
            bad += 1
            continue
        c0 = np.float64(cum[ds + 1])
        open_pause = 0.0
        p = paused_since[i]
        frozen = False  # paused now: the levels are judged as at the pause's start
        w_frozen = wn
        if p != NAT:
            dp = _local_day(p, t0, n_days, day_start)
            if dp < n_days:
                wp = _worked(p, dp, t0, day_start, trans, shift, oh_start, oh_end, oh_total, cum)
                w_frozen = wp
                frozen = p <= now
                if wp < c0:
                    wp = c0
                if wn > wp:
                    open_pause = wn - wp
        pause_total = paused[i] + open_pause
        used = _consumed(wn, c0, pause_total)
        allowed = np.float64(limits[i]) + np.float64(extensions[i])
        if consumed_out is not None:
            consumed_out[i] = used
        if remaining_out is not None:
            remaining_out[i] = allowed - used
        span = allowed + pause_total
        if span > _EPS:
            k = np.int64(c0) + np.int64(math.ceil(span - _EPS)) - 1
            a = ds + 1
        else:
            k = np.int64(cum[ds])
            a = ds
        if k >= n_work:  # the deadline lies beyond the calendar
            _unknown(i, None, None, deadline_out, prov_out, level_out, next_out)
            if prov_out is not None:
                prov_out[i] = pn > pcum[a]
            bad += 1
            continue
        deadline = nth_end[k]
        if deadline_out is not None:
            deadline_out[i] = deadline
        if prov_out is not None:
            hi = nth_pcum[k]
            if dn > ds and pn > hi:
                hi = pn
            prov_out[i] = hi > pcum[a]
        if level_out is not None:
            # Each level's threshold becomes the instant it is reached, then the level
            # is the highest reached and the next rise the earliest instant above it.
            # Written without branches on the data: with levels mixed at random across
            # clocks, mispredicted branches cost three times the arithmetic.
            # While paused, consumed time and the deadline are those of the pause's
            # start (bit for bit what an evaluation at that instant uses): the deadline
            # pushed by the open pause would otherwise end with every working day spent
            # paused, so an overdue clock read red on rest days only.
            used_lv = used
            total_lv = pause_total
            deadline_lv = deadline
            if frozen:  # a minority of clocks, and the same for a case's rows: predicted
                total_lv = paused[i]
                used_lv = _consumed(w_frozen, c0, total_lv)
                deadline_lv = _end_of(allowed + total_lv, c0, ds, cum, nth_end, n_work)
            if red_at is None:  # noqa: SIM108 (numba prunes an `is None` if, not a ternary)
                xr = allowed
            else:
                xr = red_at[i]
            xb = blue_at[i]
            xy = yellow_at[i]
            r3 = np.int64(_reached(xr, allowed, deadline_lv, used_lv, now, total_lv, c0, ds,
                                   cum, nth_end, n_work))  # fmt: skip
            r2 = np.int64(_reached(xy, allowed, deadline_lv, used_lv, now, total_lv, c0, ds,
                                   cum, nth_end, n_work))  # fmt: skip
            r1 = np.int64(_reached(xb, allowed, deadline_lv, used_lv, now, total_lv, c0, ds,
                                   cum, nth_end, n_work))  # fmt: skip
            level = max(3 * r3, max(2 * r2, r1))
            level_out[i] = level
            # The next rise is at the lowest threshold above the level (thresholds below
            # the limit come before those at or beyond it, and the instant grows with
            # the threshold), so one instant is enough.
            best = xr if (xr == xr and level < 3) else np.inf
            best = min(best, xy if (xy == xy and level < 2) else np.inf)
            best = min(best, xb if (xb == xb and level < 1) else np.inf)
            nxt = _due_at(best, allowed, total_lv, c0, ds, t0, day_start, trans, shift,
                          oh_start, oh_end, oh_total, cum, nth_end, nth_day, n_work)  # fmt: skip
            # A paused clock rises only where a crossing made before the pause waits for
            # its working day's end; anything else needs an event to restart the clock.
            pending = used_lv >= best - _LEVEL_TOL
            nxt = NAT if (nxt == _NEVER or (frozen and not pending)) else nxt
            next_out[i] = nxt
    return bad


@_jit(inline="always")
def _inverse_fraction(f, d, day_start, oh_start, oh_end, oh_total):  # type: ignore[no-untyped-def]
    """Seconds after local midnight of day ``d`` when share ``f`` of its working time is done."""
    if oh_start.shape[0] == 0:
        length = np.int64(86400) if day_start is None else day_start[d + 1] - day_start[d]
        return f * length
    need = f * oh_total
    tod = 0.0
    for p in range(oh_start.shape[0]):
        span = oh_end[p] - oh_start[p]
        tod = np.float64(oh_end[p])
        if need <= span + 1e-6:  # reached by this period's close, float noise included
            tod = oh_start[p] + min(need, np.float64(span))
            break
        need -= span
    return tod


@_jit(inline="always")
def _instant_of(target, k, t0, day_start, trans, shift, oh_start, oh_end, oh_total, nth_day):  # type: ignore[no-untyped-def]
    """First whole second at which W(t) reaches ``target``, inside working day number ``k``,
    and how far (in seconds, < 1) that second lies after the exact crossing."""
    f = target - k  # share of that day, in (0, 1]
    if f > 1.0:
        f = 1.0
    d = np.int64(nth_day[k])
    tod = _inverse_fraction(f, d, day_start, oh_start, oh_end, oh_total)
    sec = np.int64(math.ceil(tod - 1e-6))  # whole seconds, never early
    lead = sec - tod
    if day_start is None:
        return t0 + d * np.int64(86400) + sec, lead
    t = day_start[d] + sec
    if oh_start.shape[0] > 0 and t - shift[d] >= trans[d]:
        t -= shift[d]  # office hours are wall-clock: after a DST change that day
    return t, lead


@_jit(parallel=True)
def instant_kernel(  # type: ignore[no-untyped-def]
    starts,
    amounts,
    out,
    prov_out,
    t0,
    day_start,
    trans,
    shift,
    oh_start,
    oh_end,
    oh_total,
    cum,
    pcum,
    nth_day,
    nth_pcum,
):
    """The first whole second at which working time counted from each start reaches ``amounts``.

    The inverse of ``count_kernel``: where a clock crosses a threshold of x
    working days (plus the working time it spent paused). x <= 0 gives the
    clock's start (00:00 after the start day); a whole x gives the end of the
    x-th working day, exactly ``deadline_kernel``'s instant. NaN amount or
    NaT start give NaT; returns how many fell outside the calendar.
    """
    n_days = cum.shape[0] - 1
    n_work = nth_day.shape[0] - 1
    bad = 0
    for i in nb.prange(starts.shape[0]):
        s = starts[i]
        x = amounts[i]
        ds = _local_day(s, t0, n_days, day_start)
        if ds >= n_days or x != x:  # out of range, NaT or NaN
            out[i] = NAT
            if prov_out is not None:
                prov_out[i] = False
            if s != NAT and x == x:
                bad += 1
            continue
        c0 = np.float64(cum[ds + 1])
        if x <= _EPS:
            # the clock's start (local midnight after the start day); below _EPS the
            # amount is float noise and would land on the working day before it
            d = ds + 1
            out[i] = t0 + d * np.int64(86400) if day_start is None else day_start[d]
            if prov_out is not None:
                prov_out[i] = False
            continue
        target = c0 + x
        k = np.int64(math.ceil(target - _EPS)) - 1  # the working day in which it is reached
        if k >= n_work:
            out[i] = NAT
            if prov_out is not None:
                prov_out[i] = False
            bad += 1
            continue
        out[i] = _instant_of(target, k, t0, day_start, trans, shift, oh_start, oh_end, oh_total,
                             nth_day)[0]  # fmt: skip
        if prov_out is not None:
            prov_out[i] = nth_pcum[k] > pcum[ds + 1]
    return bad


@_jit(parallel=True)
def workday_kernel(days, out, d0, work):  # type: ignore[no-untyped-def]
    """Is each local date (days since 1970-01-01) a working day; count of out-of-range."""
    n_days = work.shape[0]
    bad = 0
    for i in nb.prange(days.shape[0]):
        x = days[i]
        u = np.uint64(x - d0)
        if u >= np.uint64(n_days):
            out[i] = False
            if x != NAT:
                bad += 1
            continue
        out[i] = work[np.int64(u)]
    return bad


# --- serial twins ---------------------------------------------------------------
#
# A parallel kernel launches its thread pool on every call: for a handful of clocks
# (a batch of events, one case's card, a daemon's start) that launch costs more than
# the loop, and on a busy 2-core host it waits for the other threads to be scheduled
# (measured: 4.5 ms per call of count_kernel_24h at a daemon's start, vs µs). Small
# inputs take a serial compile of the same code instead. A twin is its own function
# (own name) so numba's on-disk cache keeps the two compilations apart.

SERIAL_BELOW = 16_384


def _serial_twin(kernel: Any) -> Any:
    f = kernel.py_func
    name = f"{f.__name__}_serial"
    g = types.FunctionType(f.__code__.replace(co_name=name), f.__globals__, name,
                           f.__defaults__, f.__closure__)  # fmt: skip
    g.__qualname__ = name
    g.__module__ = f.__module__
    g.__doc__ = f.__doc__
    return _jit()(g)


_PARALLEL = (deadline_kernel, count_kernel, count_kernel_24h, clock_kernel, instant_kernel,
             workday_kernel)  # fmt: skip
_TWINS = {k: _serial_twin(k) for k in _PARALLEL}


def parallel_here() -> bool:
    """Parallel kernels are launched from the main thread only. Where neither TBB nor
    OpenMP loads, numba's threading layer is the workqueue, which aborts the process
    when two threads launch at once; the evaluator decides the next chunk of a backlog
    in a worker thread while the main one writes the last (and may count reply
    deadlines). A worker thread takes the serial twins: the main thread and the
    server have the other core anyway."""
    return threading.current_thread() is threading.main_thread()


def sized(kernel: Any, n: int) -> Any:
    """``kernel`` for ``n`` elements: its serial twin below ``SERIAL_BELOW``, or off the
    main thread (``parallel_here``)."""
    return _TWINS[kernel] if n < SERIAL_BELOW or not parallel_here() else kernel
