#!/usr/bin/env python3
"""Export the 47 prefecture outlines as small SVG paths for the operations site's outage map
(JP6794864B2 Fig. 9): writes ``cloud/web/prefectures.json``, which the package ships.

A development tool, run by hand when the shapes should change; neither the site nor CI runs it. It
reads the outlines of the ``japanmap`` package (MIT; Hokkaido and Okinawa moved closer, as that
package draws them), which pulls in OpenCV and NumPy, so it is not in any extra of setup.cfg::

    .venv/bin/pip install japanmap==0.6.0
    .venv/bin/python scripts/make_prefecture_shapes.py

The borders are simplified once per shared border (Douglas-Peucker), so neighbours still meet
without gaps, then written as rounded relative path commands: about 30 kB for the whole country.
Units: 1/100 degree of latitude (about 1.1 km), longitude shrunk by cos 35.7° (the map's middle).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "cloud" / "web" / "prefectures.json"
X_RATIO = 0.812  # cos(35.7°): a degree of longitude is shorter than one of latitude here
UNITS = 100  # per degree
TOLERANCE = 1.2  # units a simplified border may stray from the true one


def main() -> None:
    from japanmap import get_data, pref_names

    points, borders = get_data(move_hokkaido=True, move_okinawa=True)
    xy = [(p[0][0] * X_RATIO * UNITS, -p[0][1] * UNITS) for p in points]
    left, top = min(x for x, _ in xy), min(y for _, y in xy)
    xy = [(x - left, y - top) for x, y in xy]
    simplified: dict[tuple[int, ...], list[int]] = {}

    def arc(indices: list[int]) -> list[int]:
        """One border, simplified the same way whichever prefecture walks it (and in which direction)."""
        key = tuple(indices)
        if key[::-1] < key:
            return arc(indices[::-1])[::-1]
        if key not in simplified:
            simplified[key] = _simplify(indices, xy)
        return simplified[key]

    shapes = {}
    for code, pref_borders in enumerate(borders):
        rings: list[list[int]] = []
        for _, indices in pref_borders:
            part = arc(indices)
            if rings and rings[-1][-1] == part[0]:
                rings[-1].extend(part[1:])
            else:
                rings.append(list(part))
        rings = [r for r in rings if len(r) >= 4]
        coords = [[(round(xy[i][0]), round(xy[i][1])) for i in r] for r in rings]
        shapes[pref_names[code + 1]] = {"d": _path(coords), "label": _label_point(coords),
                                        "box": _box(c for ring in coords for c in ring)}
    width = round(max(x for x, _ in xy))
    height = round(max(y for _, y in xy))
    OUT.write_text(json.dumps({"width": width, "height": height, "prefectures": shapes}, ensure_ascii=False,
                              separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(shapes)} prefectures, {OUT.stat().st_size:,} bytes")


def _simplify(indices: list[int], xy: list[tuple[float, float]]) -> list[int]:
    """Douglas-Peucker on one border; a closed one (an island) is cut in two at its far point first."""
    if indices[0] == indices[-1] and len(indices) > 3:
        first = xy[indices[0]]
        far = max(range(1, len(indices) - 1), key=lambda k: math.dist(first, xy[indices[k]]))
        return _simplify(indices[:far + 1], xy)[:-1] + _simplify(indices[far:], xy)
    keep = [False] * len(indices)
    keep[0] = keep[-1] = True
    stack = [(0, len(indices) - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        pa, pb = xy[indices[a]], xy[indices[b]]
        k, d = max(((k, _distance(xy[indices[k]], pa, pb)) for k in range(a + 1, b)), key=lambda kd: kd[1])
        if d > TOLERANCE:
            keep[k] = True
            stack += [(a, k), (k, b)]
    return [i for i, kept in zip(indices, keep) if kept]


def _distance(p, a, b) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    length = math.hypot(bx - ax, by - ay)
    if length == 0:
        return math.hypot(px - ax, py - ay)
    return abs((bx - ax) * (ay - py) - (ax - px) * (by - ay)) / length


def _path(rings: list[list[tuple[int, int]]]) -> str:
    """Each ring as ``M x,y`` then relative steps (short numbers); repeated points are dropped."""
    out = []
    for ring in rings:
        x0, y0 = ring[0]
        steps, (x, y) = [], ring[0]
        for nx, ny in ring[1:]:
            if (nx, ny) != (x, y):
                steps.append(f"{nx - x},{ny - y}")
                x, y = nx, ny
        out.append(f"M{x0},{y0}l" + " ".join(steps) + "z")
    return "".join(out)


def _box(points) -> list[int]:
    xs, ys = zip(*points)
    return [min(xs), min(ys), max(xs), max(ys)]


def _label_point(rings: list[list[tuple[int, int]]]) -> list[int]:
    """The inside point farthest from the border of the largest ring (a label never sits in the sea)."""
    ring = max(rings, key=lambda r: abs(_area(r)))
    x0, y0, x1, y1 = _box(ring)
    step = max(1.0, max(x1 - x0, y1 - y0) / 40)
    best, best_d = ((x0 + x1) // 2, (y0 + y1) // 2), -1.0
    y = y0 + step / 2
    while y < y1:
        x = x0 + step / 2
        while x < x1:
            if _inside((x, y), ring):
                d = min(_distance((x, y), a, b) for a, b in zip(ring, ring[1:] + ring[:1]))
                if d > best_d:
                    best, best_d = (round(x), round(y)), d
            x += step
        y += step
    return list(best)


def _area(ring) -> float:
    return sum(ax * by - bx * ay for (ax, ay), (bx, by) in zip(ring, ring[1:] + ring[:1])) / 2


def _inside(p, ring) -> bool:
    x, y = p
    inside = False
    for (ax, ay), (bx, by) in zip(ring, ring[1:] + ring[:1]):
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


if __name__ == "__main__":
    main()
