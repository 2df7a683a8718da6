"""Frame-level faults the chip emulator injects at run time: a reply never sent, a damaged reply, a
slave exception. Settable from any thread while the emulator serves."""
from __future__ import annotations

import threading

FAULT_KINDS = ("no_answer", "bad_crc", "exception")  # in order of precedence


class _FaultSwitch:
    """``faults.no_answer = True | N | False`` as a shorthand for :meth:`Faults.set`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.kind = name

    def __get__(self, faults: Faults | None, owner: type | None = None) -> int | bool:
        return self if faults is None else faults.get(self.kind)  # type: ignore[return-value]

    def __set__(self, faults: Faults, value: int | bool) -> None:
        faults.set(self.kind, value)


class Faults:
    """Faults to inject, settable from any thread while the emulator runs.

    Each kind is off (False), on until cleared (True), or on for the next N requests (an int)::

        emulator.faults.no_answer = True   # every request times out
        emulator.faults.bad_crc = 3        # the next 3 replies are damaged
        emulator.faults.clear()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._left: dict[str, int | None] = {}  # kind -> requests left, None = until cleared

    def set(self, kind: str, count: int | bool | None = True) -> None:
        """Turn ``kind`` on (True / None: until cleared; N: next N requests) or off (False / 0)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        with self._lock:
            if count is False or count == 0:
                self._left.pop(kind, None)
            elif count is True or count is None:
                self._left[kind] = None
            elif count < 0:
                raise ValueError("a fault count cannot be negative")
            else:
                self._left[kind] = int(count)

    def clear(self, kind: str | None = None) -> None:
        with self._lock:
            if kind is None:
                self._left.clear()
            else:
                self._left.pop(kind, None)

    def get(self, kind: str) -> int | bool:
        """True (until cleared), the requests left, or False."""
        with self._lock:
            if kind not in self._left:
                return False
            left = self._left[kind]
            return True if left is None else left

    def take(self) -> str | None:
        """The fault for the request being answered now (consuming one of a counted fault)."""
        with self._lock:
            for kind in FAULT_KINDS:
                if kind in self._left:
                    left = self._left[kind]
                    if left is not None:
                        if left <= 1:
                            del self._left[kind]
                        else:
                            self._left[kind] = left - 1
                    return kind
        return None

    no_answer = _FaultSwitch()
    bad_crc = _FaultSwitch()
    exception = _FaultSwitch()
