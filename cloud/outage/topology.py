"""A synthetic but plausible service territory: customers in areas (prefecture / city / district),
each area served by a few concentrators (集約装置), and the distribution system above them (Fig. 10's
配電系統): each city's districts are fed by substations (変電所) named after the town, a substation by a
few feeders (配電線) each serving a run of neighbouring districts, a feeder cut by switches into
sections (区間), one per concentrator. Deterministic, so the fleet simulator and the registrations
it imports agree without sharing files."""
from __future__ import annotations

from dataclasses import dataclass

from .model import Area, Language, Registration

PREFECTURES = {
    "広島県": ("広島市中区", "広島市南区", "呉市", "福山市", "東広島市"),
    "岡山県": ("岡山市北区", "倉敷市", "津山市"),
    "山口県": ("下関市", "山口市", "周南市"),
    "鳥取県": ("鳥取市", "米子市"),
    "島根県": ("松江市", "出雲市"),
}
CITIES = [(pref, city) for pref, cities in PREFECTURES.items() for city in cities]
DISTRICTS = ("基町", "本通", "紙屋町", "八丁堀", "大手町", "宇品", "段原", "皆実町", "舟入", "江波")
FAMILY = ("山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤")
# the town a city's substations are named after (a ward's own neighbourhood, not the whole city)
SUBSTATION_TOWNS = {
    "広島市中区": "千田", "広島市南区": "宇品", "呉市": "呉", "福山市": "福山", "東広島市": "西条",
    "岡山市北区": "岡山", "倉敷市": "倉敷", "津山市": "津山", "下関市": "下関", "山口市": "山口", "周南市": "徳山",
    "鳥取市": "鳥取", "米子市": "米子", "松江市": "松江", "出雲市": "出雲",
}
SUBSTATION_SUFFIXES = ("中央", "東", "西", "南", "北", "港", "北東", "北西", "南東", "南西", "山手", "浜")
GIVEN = ("太郎", "花子", "一郎", "美咲", "健", "由美", "翔", "陽子")
ROMAJI = {"山田": "Yamada", "佐藤": "Sato", "鈴木": "Suzuki", "高橋": "Takahashi", "田中": "Tanaka",
          "伊藤": "Ito", "渡辺": "Watanabe", "中村": "Nakamura", "小林": "Kobayashi", "加藤": "Kato"}


@dataclass(frozen=True)
class FleetSpec:
    meters: int
    area_size: int = 40  # customers per district
    concentrators_per_area: int = 2
    english_every: int = 10  # every n-th customer reads English e-mail
    email_domain: str = "example.jp"
    districts_per_feeder: int = 4  # neighbouring districts of one city on one feeder
    feeders_per_substation: int = 6

    def __post_init__(self) -> None:
        if not 1 <= self.meters <= 10_000_000:
            raise ValueError("meters must be between 1 and 10,000,000")
        if min(self.area_size, self.concentrators_per_area, self.districts_per_feeder, self.feeders_per_substation) < 1:
            raise ValueError("area_size, concentrators_per_area, districts_per_feeder and feeders_per_substation "
                             "must be at least 1")

    @property
    def areas(self) -> int:
        return -(-self.meters // self.area_size)


def meter_id(n: int) -> str:
    return f"SM{n:07d}"


def area_of(index: int) -> Area:
    pref, city = CITIES[index % len(CITIES)]
    rest = index // len(CITIES)
    return Area(pref, city, f"{DISTRICTS[rest % len(DISTRICTS)]}{rest // len(DISTRICTS) + 1}丁目")


def concentrator_of(spec: FleetSpec, n: int) -> str:
    a, pos = divmod(n, spec.area_size)
    return f"CN{a:06d}-{pos * spec.concentrators_per_area // spec.area_size + 1}"


@dataclass(frozen=True)
class Circuit:
    """Where a meter hangs in the distribution system (配電系統)."""

    substation: str  # 変電所
    feeder: str  # 配電線
    section: str  # 区間


def circuit_of(spec: FleetSpec, n: int) -> Circuit:
    """Meter ``n``'s substation, feeder and section. A city's districts (in the order :func:`area_of`
    numbers them) go to its feeders in runs of ``districts_per_feeder``, the feeders to substations in
    runs of ``feeders_per_substation``; the sections of a feeder are its concentrators in order."""
    a, pos = divmod(n, spec.area_size)
    city = CITIES[a % len(CITIES)][1]
    district_no = a // len(CITIES)  # the how-many-th district of its city
    feeder_no, district_on_feeder = divmod(district_no, spec.districts_per_feeder)
    station_no, feeder_on_station = divmod(feeder_no, spec.feeders_per_substation)
    suffix = SUBSTATION_SUFFIXES[station_no % len(SUBSTATION_SUFFIXES)]
    again = station_no // len(SUBSTATION_SUFFIXES)  # a very large city runs out of names: 千田第2中央
    station = f"{SUBSTATION_TOWNS[city]}{f'第{again + 1}' if again else ''}{suffix}"
    section = district_on_feeder * spec.concentrators_per_area + pos * spec.concentrators_per_area // spec.area_size + 1
    return Circuit(f"{station}変電所", f"{station}{feeder_on_station + 1}号線", f"第{section}区間")


def registration(spec: FleetSpec, n: int) -> Registration:
    family, given = FAMILY[n % len(FAMILY)], GIVEN[(n // len(FAMILY)) % len(GIVEN)]
    circuit = circuit_of(spec, n)
    english = spec.english_every and n % spec.english_every == spec.english_every - 1
    return Registration(
        meter_id=meter_id(n),
        customer_number=f"C{n:09d}",
        area=area_of(n // spec.area_size),
        concentrator_id=concentrator_of(spec, n),
        email=f"c{n:07d}@{spec.email_domain}",
        name=f"{ROMAJI[family]} {given}" if english else f"{family} {given}",
        language=Language.EN if english else Language.JA,
        substation=circuit.substation, feeder=circuit.feeder, section=circuit.section,
    )


def registrations(spec: FleetSpec):
    for n in range(spec.meters):
        yield registration(spec, n)


def area_meters(spec: FleetSpec, area_index: int) -> list[int]:
    start = area_index * spec.area_size
    return list(range(start, min(start + spec.area_size, spec.meters)))
