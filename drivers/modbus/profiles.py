"""Chip profiles: the register map of each supported metering chip, and how its words decode.

A :class:`ChipProfile` is the single definition of a chip's register map. The driver decodes the
one block read with it, and the emulator encodes its simulated measurement with the same
:class:`Register` entries, so the two cannot drift apart.

Supported chips (interfaces.md section 5):

* ``pzem004t``  Peacefair PZEM-004T v3.0: 10 input registers from 0x0000, integers, 32-bit values
  **low word first**. No direction: power is unsigned and there is no export register.
* ``sdm120``    Eastron SDM120 (single phase): IEEE-754 float32 input registers, **high word first**.
* ``sdm630``    Eastron SDM630 (three phase): same encoding; the sample uses the system totals.

The SDM block read is 0x0000..0x004B (76 registers) in one transaction; energy is kWh on the wire
and Wh in a :class:`~appliance.domain.Sample`. Active power is signed: negative means export.
"""
from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from appliance.domain import Sample
from appliance.errors import ConfigError

READ_INPUT_REGISTERS = 0x04

#: The :class:`Sample` fields a block read fills (interfaces.md section 2 names).
SAMPLE_FIELDS: tuple[str, ...] = (
    "voltage_v",
    "current_a",
    "power_w",
    "import_wh_total",
    "export_wh_total",
    "frequency_hz",
    "power_factor",
)


class Codec(str, Enum):
    """How one quantity is laid out in 16-bit registers."""

    U16 = "u16"  # one unsigned register
    U32_LOW_FIRST = "u32-low-first"  # PZEM: the low 16 bits are in the first register
    F32_HIGH_FIRST = "f32-high-first"  # Eastron: IEEE-754 big-endian, high word first

    @property
    def words(self) -> int:
        return 1 if self is Codec.U16 else 2


@dataclass(frozen=True)
class Register:
    """One quantity in the map.

    ``name`` is a :class:`Sample` field when the quantity feeds the sample (e.g. ``power_w``),
    otherwise a descriptive name (``l2_voltage_v``, ``apparent_va``, ...). The engineering value is
    ``raw * scale``: 0.1 for a PZEM voltage in 0.1 V steps, 1000 for an Eastron energy in kWh.
    """

    address: int
    name: str
    codec: Codec
    scale: float = 1.0
    digits: int = 3  # decimals kept when decoding, so float32 noise does not reach the JSON

    @property
    def words(self) -> int:
        return self.codec.words

    def decode(self, words: list[int]) -> float:
        if self.codec is Codec.U16:
            raw: float = words[0]
        elif self.codec is Codec.U32_LOW_FIRST:
            raw = words[0] | (words[1] << 16)
        else:
            raw = struct.unpack(">f", struct.pack(">HH", words[0], words[1]))[0]
        return round(raw * self.scale, self.digits)

    def encode(self, value: float) -> list[int]:
        """The register words for ``value`` (engineering units), as the chip would hold them."""
        raw = value / self.scale
        if self.codec is Codec.F32_HIGH_FIRST:
            high, low = struct.unpack(">HH", struct.pack(">f", raw))
            return [high, low]
        if not math.isfinite(raw) or raw < 0:
            raise ValueError(f"{self.name}={value!r} does not fit an unsigned register")
        limit = 0xFFFF if self.codec is Codec.U16 else 0xFFFFFFFF
        number = min(int(round(raw)), limit)  # a real chip saturates rather than wraps
        if self.codec is Codec.U16:
            return [number]
        return [number & 0xFFFF, number >> 16]


@dataclass(frozen=True)
class ChipProfile:
    """A metering chip: its serial defaults, its register map and its one block read.

    ``registers`` lists every quantity the chip serves. The driver reads ``block_count`` input
    registers from ``block_start`` in one transaction; ``served`` are the (start, count) input
    register ranges a real chip answers (the emulator answers exception 2 outside them).
    """

    name: str
    title: str
    block_start: int
    block_count: int
    registers: tuple[Register, ...]
    served: tuple[tuple[int, int], ...]
    default_baud: int
    default_address: int  # what the driver asks by default
    factory_address: int  # what a chip out of the box answers to (the emulator's default)
    measures_direction: bool
    phases: int = 1
    function: int = READ_INPUT_REGISTERS
    parity: str = "N"
    general_address: int | None = None  # PZEM: 0xF8 reaches the one chip on the bus, any address
    holding: tuple[Register, ...] = field(default=())  # configuration registers (function 0x03)

    def __post_init__(self) -> None:
        for reg in self.block_registers:
            if reg.address + reg.words > self.block_start + self.block_count:
                raise ValueError(f"{self.name}: {reg.name} runs past the block read")

    @property
    def block_registers(self) -> tuple[Register, ...]:
        end = self.block_start + self.block_count
        return tuple(r for r in self.registers if self.block_start <= r.address < end)

    @property
    def names(self) -> tuple[str, ...]:
        """Every quantity name the emulator must supply to :meth:`image`."""
        return tuple(r.name for r in self.registers)

    # -- driver side ------------------------------------------------------------------------
    def decode_values(self, registers: list[int]) -> dict[str, float]:
        """All quantities in one block read, by register name."""
        if len(registers) != self.block_count:
            raise ValueError(
                f"{self.name}: expected {self.block_count} registers, got {len(registers)}"
            )
        out: dict[str, float] = {}
        for reg in self.block_registers:
            at = reg.address - self.block_start
            out[reg.name] = reg.decode(registers[at : at + reg.words])
        return out

    def decode(self, registers: list[int], at: datetime) -> Sample:
        """The :class:`Sample` that one block read stands for (``ok`` True)."""
        values = self.decode_values(registers)
        fields = {name: values.get(name) for name in SAMPLE_FIELDS}
        if not self.measures_direction:
            fields["export_wh_total"] = None  # the chip cannot tell export: never report 0
        return Sample(at=at, ok=True, alarm=bool(values.get("alarm", 0)), **fields)

    # -- emulator side ----------------------------------------------------------------------
    def image(self, values: Mapping[str, float]) -> dict[int, int]:
        """Every served input register (address -> word) for the given quantities.

        Served addresses that hold no quantity read as 0, as on the real chip.
        """
        words = {a: 0 for start, count in self.served for a in range(start, start + count)}
        for reg in self.registers:
            for i, word in enumerate(reg.encode(float(values[reg.name]))):
                words[reg.address + i] = word
        return words

    def encode(self, values: Mapping[str, float]) -> list[int]:
        """The words of the one block read for the given quantities (inverse of :meth:`decode`)."""
        words = self.image(values)
        return [words[a] for a in range(self.block_start, self.block_start + self.block_count)]


def _f32(address: int, name: str, scale: float = 1.0, digits: int = 3) -> Register:
    return Register(address, name, Codec.F32_HIGH_FIRST, scale, digits)


PZEM004T = ChipProfile(
    name="pzem004t",
    title="Peacefair PZEM-004T v3.0 (single phase, no direction)",
    block_start=0x0000,
    block_count=10,
    registers=(
        Register(0x0000, "voltage_v", Codec.U16, 0.1, 1),
        Register(0x0001, "current_a", Codec.U32_LOW_FIRST, 0.001, 3),
        Register(0x0003, "power_w", Codec.U32_LOW_FIRST, 0.1, 1),
        Register(0x0005, "import_wh_total", Codec.U32_LOW_FIRST, 1.0, 0),
        Register(0x0007, "frequency_hz", Codec.U16, 0.1, 1),
        Register(0x0008, "power_factor", Codec.U16, 0.01, 2),
        Register(0x0009, "alarm", Codec.U16, 1.0, 0),  # 0xFFFF = power above the threshold
    ),
    served=((0x0000, 10),),
    default_baud=9600,
    default_address=0xF8,
    factory_address=0x01,
    measures_direction=False,
    general_address=0xF8,
    holding=(
        Register(0x0001, "alarm_threshold_w", Codec.U16, 1.0, 0),
        Register(0x0002, "address", Codec.U16, 1.0, 0),
    ),
)

# The Eastron registers shared by the single- and three-phase meters.
_SDM_TAIL = (
    _f32(0x0046, "frequency_hz", digits=2),
    _f32(0x0048, "import_wh_total", 1000.0, 1),  # kWh on the wire, Wh in the sample
    _f32(0x004A, "export_wh_total", 1000.0, 1),
    _f32(0x0156, "total_wh", 1000.0, 1),  # import + export; outside the block read
)

SDM120 = ChipProfile(
    name="sdm120",
    title="Eastron SDM120 (single phase, measures direction)",
    block_start=0x0000,
    block_count=0x004C,
    registers=(
        _f32(0x0000, "voltage_v", digits=2),
        _f32(0x0006, "current_a"),
        _f32(0x000C, "power_w", digits=2),
        _f32(0x0012, "apparent_va", digits=2),
        _f32(0x0018, "reactive_var", digits=2),
        _f32(0x001E, "power_factor"),
        _f32(0x0024, "phase_angle_deg", digits=2),
        *_SDM_TAIL,
    ),
    served=((0x0000, 80), (0x0156, 2)),
    default_baud=2400,
    default_address=1,
    factory_address=1,
    measures_direction=True,
)


def _per_phase(start: int, quantity: str, digits: int) -> tuple[Register, ...]:
    return tuple(_f32(start + 2 * i, f"l{i + 1}_{quantity}", digits=digits) for i in range(3))


SDM630 = ChipProfile(
    name="sdm630",
    title="Eastron SDM630 (three phase, measures direction)",
    block_start=0x0000,
    block_count=0x004C,
    registers=(
        *_per_phase(0x0000, "voltage_v", 2),
        *_per_phase(0x0006, "current_a", 3),
        *_per_phase(0x000C, "power_w", 2),
        *_per_phase(0x0012, "apparent_va", 2),
        *_per_phase(0x0018, "reactive_var", 2),
        *_per_phase(0x001E, "power_factor", 3),
        *_per_phase(0x0024, "phase_angle_deg", 2),
        # The sample takes the system values: mean phase voltage, sum of line currents, totals.
        _f32(0x002A, "voltage_v", digits=2),
        _f32(0x002E, "mean_current_a"),
        _f32(0x0030, "current_a"),
        _f32(0x0034, "power_w", digits=2),
        _f32(0x0038, "apparent_va", digits=2),
        _f32(0x003C, "reactive_var", digits=2),
        _f32(0x003E, "power_factor"),
        _f32(0x0042, "phase_angle_deg", digits=2),
        *_SDM_TAIL,
    ),
    served=((0x0000, 80), (0x0156, 2)),
    default_baud=9600,
    default_address=1,
    factory_address=1,
    measures_direction=True,
    phases=3,
)

PROFILES: dict[str, ChipProfile] = {p.name: p for p in (PZEM004T, SDM120, SDM630)}


def get_profile(name: str) -> ChipProfile:
    """The profile called ``name``; a clear error naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown metering chip profile {name!r}; known: {', '.join(PROFILES)}"
        ) from None
