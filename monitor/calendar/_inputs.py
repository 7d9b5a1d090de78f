"""Calendar inputs as the kernels' dtypes and shapes, copied only where they must be."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.i18n import t

from ._spec import CalendarError


def _clock_inputs(
    starts: npt.ArrayLike,
    limits: npt.ArrayLike,
    extensions: npt.ArrayLike,
    paused: npt.ArrayLike,
    paused_since: npt.ArrayLike,
    blue_at: npt.ArrayLike | None,
    yellow_at: npt.ArrayLike | None,
    red_at: npt.ArrayLike | None,
) -> list[npt.NDArray[Any]]:
    """`Calendar.evaluate`'s inputs as the kernel's dtypes; thresholds only when asked."""
    inputs = [
        _instants(np.asarray(starts)),
        _ints(np.asarray(limits)),
        _ints(np.asarray(extensions)),
        np.asarray(paused, dtype=np.float64),
        _instants(np.asarray(paused_since, dtype="datetime64[s]")),
    ]
    if blue_at is not None or yellow_at is not None or red_at is not None:
        # only then: at 10M clocks these would be 160 MB of NaN
        for thresholds in (blue_at, yellow_at):
            inputs.append(np.asarray(np.nan if thresholds is None else thresholds, float))
        if red_at is not None:
            inputs.append(np.asarray(red_at, float))
    return inputs


def _instants(arr: npt.NDArray[np.generic]) -> npt.NDArray[np.int64]:
    """UTC seconds as an int64 view, converting only when the unit differs."""
    if arr.dtype.kind == "M":
        arr = arr.astype("datetime64[s]", copy=False)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64, copy=False)
    else:
        arr = arr.astype("datetime64[s]")
    return arr.view(np.int64)


def _ints(arr: npt.NDArray[Any]) -> npt.NDArray[np.integer[Any]]:
    return arr if arr.dtype in (np.int32, np.int64) else arr.astype(np.int64)


def _flat_or_none(arr: npt.NDArray[Any] | None) -> npt.NDArray[Any] | None:
    """A 1-D view for a kernel, or None: kernels compile a no-output variant for None."""
    return None if arr is None else arr.reshape(-1)


def _flat(*arrays: npt.NDArray[np.generic]) -> tuple[tuple[int, ...], list[npt.NDArray[Any]]]:
    """Broadcast like numpy, then contiguous 1-D views (no copy for equal 1-D inputs)."""
    shape = arrays[0].shape
    if len(shape) == 1 and all(a.shape == shape and a.flags.c_contiguous for a in arrays):
        # the engine's small sets call the calendar thousands of times a second: read-only
        # views as broadcast_to makes them (the kernels' compiled types), in 1.6 us, not 7.6
        return shape, [_read_only(a) for a in arrays]
    return _broadcast(*arrays)


def _broadcast(*arrays: npt.NDArray[np.generic]) -> tuple[tuple[int, ...], list[npt.NDArray[Any]]]:
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        raise CalendarError(
            t("cal.shape_mismatch", a=arrays[0].shape, b=[a.shape for a in arrays[1:]])
        ) from None
    return shape, [np.ascontiguousarray(np.broadcast_to(a, shape).reshape(-1)) for a in arrays]


def _read_only(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    view = a.view()
    view.flags.writeable = False
    return view
