"""Free loopback ports for the servers the development tools start."""
from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 right now (TCP by default; ``socket.SOCK_DGRAM`` for UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(count: int, *, first: int = 20000, last: int = 60000) -> int:
    """The first of ``count`` consecutive TCP ports free on 127.0.0.1 and on all interfaces (vpcd
    listens on 0.0.0.0) right now."""
    import random

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(first, last - count)
        if all(_bindable(base + i, "127.0.0.1") and _bindable(base + i, "0.0.0.0") for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports between {first} and {last}")


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
