"""Knobs: the behaviours a test turns on, shared by every patch, changeable while serving."""
from __future__ import annotations

import copy
import threading
import time


class Knobs:
    """A JSON object of settings. Patches read them per request with `get`."""

    def __init__(self, initial: dict) -> None:
        self._initial = copy.deepcopy(initial)
        self._values = copy.deepcopy(initial)
        self._lock = threading.Lock()

    def get(self, name: str, default=None):
        with self._lock:
            return copy.deepcopy(self._values.get(name, default))

    def merge(self, values: dict) -> None:
        with self._lock:
            self._values.update(copy.deepcopy(values))

    def reset(self) -> None:
        with self._lock:
            self._values = copy.deepcopy(self._initial)

    def snapshot(self) -> dict:
        with self._lock:
            return copy.deepcopy(self._values)


class Calls:
    """Every API call served, in order, for tests and benchmarks that count calls."""

    def __init__(self) -> None:
        self._items: list[dict] = []
        self._lock = threading.Lock()

    def add(self, action: str, status: int) -> None:
        with self._lock:
            self._items.append({"action": action, "t": time.time(), "status": status})

    def list(self) -> list[dict]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


calls = Calls()
