"""The manager's roster: how many customers each area has and how its meters sit behind concentrators.

The indoor rule needs an area's size and the communication-fault rule each concentrator's meter count
(Table 1, summed). Both change only when the utility imports registrations, so the roster holds them
in memory, one entry per concentrator, and reloads them when the registrations' change counter moved;
where each silent meter is placed is looked up once and kept until then. A tick then reads the
registrations of the meters that newly went silent, not of every meter of their areas. A region's
manager keeps its region's areas only.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .regions import Region
from .storage import Storage


@dataclass(frozen=True)
class Placement:
    area: str  # the area's key
    concentrator: str


@dataclass
class Roster:
    region: Region | None = None  # None: the whole territory
    version: int | None = None  # the registrations' change counter this roster was loaded at
    sizes: dict[str, int] = field(default_factory=dict)  # area -> customers
    concentrators: dict[str, dict[str, int]] = field(default_factory=dict)  # area -> concentrator -> meters
    prefectures: tuple[str, ...] = ()  # whose down candidates the manager reads
    _placed: dict[str, Placement | None] = field(default_factory=dict)  # meter -> where (None: unregistered)

    def refresh(self, storage: Storage) -> bool:
        """Reload the layout if an import changed the registrations since; True if it did."""
        version = storage.registrations_version()
        if version == self.version:
            return False
        sizes: dict[str, int] = {}
        concentrators: dict[str, dict[str, int]] = {}
        for area, conc, n in storage.registration_layout():
            if self.region is not None and not self.region.holds_key(area):
                continue
            sizes[area] = sizes.get(area, 0) + n
            concentrators.setdefault(area, {})[conc] = n
        self.version, self.sizes, self.concentrators = version, sizes, concentrators
        # the whole territory reads every registered prefecture's candidates, a range each, as a region does
        self.prefectures = self.region.prefectures if self.region else tuple(sorted({a.split("/", 1)[0] for a in sizes}))
        self._placed.clear()  # a meter may have moved area or concentrator
        return True

    def place(self, storage: Storage, meters: Iterable[str]) -> dict[str, Placement]:
        """Where each of these meters is registered (unregistered ones left out), reading only the new ones."""
        meters = list(meters)
        unknown = [m for m in meters if m not in self._placed]
        if unknown:
            found = storage.placements(unknown)
            for m in unknown:
                self._placed[m] = Placement(*found[m]) if m in found else None
        return {m: p for m in meters if (p := self._placed[m]) is not None}

    def forget(self, keep: Iterable[str]) -> None:
        """Drop the placements of meters no longer silent, so the cache stays as small as the silence."""
        keep = set(keep)
        self._placed = {m: p for m, p in self._placed.items() if m in keep}
