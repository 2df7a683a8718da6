"""The outage map's geometry (JP6794864B2 Fig. 9): prefecture outlines shipped in ``prefectures.json``
(made by ``scripts/make_prefecture_shapes.py``), framed on the service territory; and, inside a
prefecture, where no outlines of cities and districts are shipped, a schematic: one tile per city
with a cell per district (停電地域).

Geometry only: what is shaded and how is the caller's business (:mod:`.outage_map`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache

from .site import HERE


@dataclass(frozen=True)
class Outline:
    name: str
    path: str  # SVG path data
    label: tuple[int, int]  # a point inside, for the name and the count
    box: tuple[int, int, int, int]  # min x, min y, max x, max y


@dataclass(frozen=True)
class Frame:
    """What a map shows: the viewBox and a text size that reads well at any width it is drawn at."""
    x: float
    y: float
    width: float
    height: float

    @property
    def view_box(self) -> str:
        return f"{self.x:g} {self.y:g} {self.width:g} {self.height:g}"

    @property
    def font_size(self) -> float:
        return round(self.width / 30, 1)


@cache
def outlines() -> dict[str, Outline]:
    data = json.loads((HERE / "prefectures.json").read_text(encoding="utf-8"))
    return {name: Outline(name, shape["d"], tuple(shape["label"]), tuple(shape["box"]))
            for name, shape in data["prefectures"].items()}


def frame(prefectures: set[str], margin: float = 0.12) -> Frame:
    """The box around ``prefectures`` (the service territory and wherever an outage is), with a margin
    that shows their neighbours for orientation, never narrower than tall by much (phones are narrow)."""
    boxes = [outlines()[p].box for p in prefectures if p in outlines()] or [o.box for o in outlines().values()]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    pad = margin * max(x1 - x0, y1 - y0)
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    if (y1 - y0) < (x1 - x0) * 0.6:  # a flat territory: add sea above and below rather than shrink the land
        extra = ((x1 - x0) * 0.6 - (y1 - y0)) / 2
        y0, y1 = y0 - extra, y1 + extra
    return Frame(math.floor(x0), math.floor(y0), math.ceil(x1 - x0), math.ceil(y1 - y0))


@dataclass(frozen=True)
class Cell:
    """A district's place in the schematic (or the "and N more" cell)."""
    name: str
    x: int
    y: int
    width: int
    height: int

    @property
    def middle(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2


@dataclass(frozen=True)
class Tile:
    """A city: a heading band, then its districts in rows."""
    name: str
    x: int
    y: int
    width: int
    height: int
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Schematic:
    tiles: tuple[Tile, ...]
    frame: Frame


# Units of the schematic: 3 cells of 130 across, so at a phone's 330 px a district's name is still
# about 13 px high; on a desktop the page caps the drawing's width.
CELL_W, CELL_H, GAP, HEAD = 130, 64, 6, 40
COLUMNS = 3


def schematic(cities: list[tuple[str, list[str]]]) -> Schematic:
    """One tile per city, stacked, each with its districts' cells ``COLUMNS`` to a row (a city without
    any keeps its heading band, so it reads as "no outage here" rather than disappearing)."""
    width = COLUMNS * CELL_W + (COLUMNS + 1) * GAP
    tiles, y = [], 0
    for city, districts in cities:
        rows = math.ceil(len(districts) / COLUMNS)
        cells = tuple(Cell(name, GAP + (i % COLUMNS) * (CELL_W + GAP), y + HEAD + (i // COLUMNS) * (CELL_H + GAP),
                           CELL_W, CELL_H) for i, name in enumerate(districts))
        height = HEAD + rows * (CELL_H + GAP) + (GAP if not rows else 0)
        tiles.append(Tile(city, 0, y, width, height, cells))
        y += height + 2 * GAP
    return Schematic(tuple(tiles), Frame(0, 0, width, max(y - 2 * GAP, HEAD)))
