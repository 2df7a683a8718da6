"""Region shards of the outage manager: a manager per region, each judging only its region's meters.

The region map is a TOML file naming each region's prefectures, as the areas' keys write them
(prefecture/city/district)::

    [regions]
    west = ["広島県", "山口県"]
    east = ["岡山県", "鳥取県", "島根県"]

An area lies in one prefecture, so a region owns whole areas: its outages, its distribution
automation words and its operators' input never concern another region. Managers of different
regions judge side by side; two of the same region take turns, the second a standby.
"""
from __future__ import annotations

import tomllib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from .model import Area
from .storage import Storage
from .storage.outages import JUDGING_LOCK

# JIS X 0401 order, as the areas' keys write them
PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県", "埼玉県", "千葉県",
    "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県",
    "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県",
    "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)

# PostgreSQL: a region's manager holds the whole territory's judging lock shared and its region's
# exclusively, so regions judge side by side while a manager of the whole territory still waits for all
SHARED_JUDGING = text("SELECT pg_advisory_xact_lock_shared(:key)")


class RegionMapError(ValueError):
    """The region map names an unknown prefecture, one twice, or a region with none."""


class OutsideRegion(ValueError):
    """Input about an area that another region's manager judges."""


@dataclass(frozen=True)
class Region:
    name: str
    prefectures: tuple[str, ...]

    def holds(self, area: Area) -> bool:
        return area.prefecture in self.prefectures

    def holds_key(self, area_key: str) -> bool:
        return area_key.split("/", 1)[0] in self.prefectures

    @property
    def lock_key(self) -> int:
        """A stable advisory lock key of its own, beside the whole territory's."""
        return (JUDGING_LOCK << 32) | zlib.crc32(self.name.encode("utf-8"))

    def refuse_outside(self, area: Area) -> None:
        if not self.holds(area):
            raise OutsideRegion(f"area {area.key} is not in region {self.name} ({', '.join(self.prefectures)})")


def lock_for_judging(storage: Storage, region: Region | None) -> None:
    """Inside a transaction: make this the only manager judging the region (None: the whole territory).
    SQLite's BEGIN IMMEDIATE already made the transaction the only writer of every region."""
    if region is None or storage.dialect != "postgresql":
        storage.lock_for_update()
        return
    storage._execute(SHARED_JUDGING, {"key": JUDGING_LOCK})
    storage.serialize(region.lock_key)


def region_map(regions: Mapping[str, object]) -> dict[str, Region]:
    """Regions from ``{name: [prefecture, ...]}``, checked: known prefectures, each in one region, none empty."""
    if not regions:
        raise RegionMapError("the region map names no region")
    out: dict[str, Region] = {}
    owner: dict[str, str] = {}
    for name, prefectures in regions.items():
        if not isinstance(prefectures, list) or not prefectures:
            raise RegionMapError(f"region {name!r} names no prefecture (a list such as [\"広島県\", \"山口県\"])")
        for p in prefectures:
            if p not in PREFECTURES:
                raise RegionMapError(f"region {name!r}: {p!r} is not one of the 47 prefectures (written as 広島県, 東京都, 北海道)")
            if p in owner:
                raise RegionMapError(f"{p} is in two regions, {owner[p]!r} and {name!r}: a prefecture has one manager")
            owner[p] = name
        out[name] = Region(name, tuple(prefectures))
    return out


def load_region_map(path: Path) -> dict[str, Region]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise RegionMapError(f"no region map at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegionMapError(f"{path}: {exc}") from None
    regions = data.get("regions")
    if not isinstance(regions, dict):
        raise RegionMapError(f"{path}: no [regions] table")
    try:
        return region_map(regions)
    except RegionMapError as exc:
        raise RegionMapError(f"{path}: {exc}") from None


def region_named(path: Path, name: str) -> Region:
    regions = load_region_map(path)
    if name not in regions:
        raise RegionMapError(f"{path}: no region {name!r} (regions: {', '.join(regions)})")
    return regions[name]
