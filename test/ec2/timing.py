"""Time for the knob-driven behaviours: durations from knobs, and the moment a request sees.

A duration knob is milliseconds, a number or `[min, max]` (uniform, drawn from one generator
seeded by the `seed` knob), multiplied by `time_scale`. With `preset: "realistic"`, a knob left
unset takes the preset's value. Each resource draws its durations once, when it is created, so
one resource's transitions are consistent while two resources differ.

Each request sees the world at `seen_at()`: now, or for a Describe under `stale_read_ms` a moment
up to that long ago, so that a read can go back in time as EC2's eventually consistent reads do.
"""
from __future__ import annotations

import random
import threading
import time

# Small non-zero values for every behaviour: enough that each transitional state is observed by
# a poller that polls quickly, small enough that a whole build stays within seconds.
REALISTIC = {
    "volume_creating_ms": [150, 400],
    "attach_visible_after_ms": [0, 250],
    "attaching_ms": [100, 400],
    "detaching_ms": [100, 400],
    "snapshot_ms": [300, 900],
    "image_pending_ms": [200, 600],
    "copy_ms": [400, 1000],
    "snapshot_in_use_after_deregister_ms": [200, 600],
    "not_found_after_create_ms": [0, 200],
    "stale_read_ms": 150,
}

DURATION_KNOBS = tuple(REALISTIC)

_knobs = None
_rng = random.Random(0)
_rng_lock = threading.Lock()
_seed = None
_local = threading.local()


def bind(knobs) -> None:
    """Called once by the first patch: every helper below reads these knobs."""
    global _knobs
    _knobs = knobs


def knob(name: str, default=None):
    """A knob's value; an unset duration knob falls back to the preset."""
    value = _knobs.get(name) if _knobs is not None else None
    if value is None and _knobs is not None and _knobs.get("preset") == "realistic":
        value = REALISTIC.get(name)
    return default if value is None else value


def _uniform(low: float, high: float) -> float:
    global _seed
    with _rng_lock:
        seed = knob("seed", 0)
        if seed != _seed:
            _rng.seed(seed)
            _seed = seed
        return _rng.uniform(low, high)


def duration(name: str) -> float:
    """Seconds: one draw of the duration knob `name` (0 when unset)."""
    value = knob(name, 0)
    if isinstance(value, (list, tuple)):
        low, high = float(value[0]), float(value[1])
        ms = _uniform(low, high) if high > low else low
    else:
        ms = float(value)
    return max(0.0, ms) * float(knob("time_scale", 1)) / 1000.0


def now() -> float:
    return time.monotonic()


def begin_request(action: str, fresh: bool = False) -> None:
    """Fixes the moment this request sees (stale for Describe calls under `stale_read_ms`)."""
    _local.describing = action.startswith("Describe")
    lag = duration("stale_read_ms") if _local.describing and not fresh else 0.0
    if lag > 0:
        lag = _uniform(0.0, lag)
    _local.seen_at = now() - lag


def end_request() -> None:
    _local.seen_at = None
    _local.describing = False


def seen_at() -> float:
    """The moment the current request sees (now outside a request)."""
    seen = getattr(_local, "seen_at", None)
    return now() if seen is None else seen


def birth() -> float:
    """When a new resource is born: now, or, for one moto makes while serving a Describe (a
    region's source images and their snapshots, on the region's first use), long ago: those
    stand for resources that existed before the test EC2 started."""
    return 0.0 if getattr(_local, "describing", False) else now()
