"""The emulation's virtual PC/SC readers: vsmartcard's vpcd slots as the meter's front-panel slots.

pcscd names a reader ``FRIENDLYNAME NN SS``; vpcd gives each reader.conf entry two slots, on TCP
ports CHANNELID and CHANNELID+1 (``devkit.pcscd`` writes that configuration and runs pcscd).
Slots 1-3 of Fig. 9(a) are the first three vpcd slots; the fourth port is left unused.

vpcd listens on all interfaces: anyone on the network could insert a card. Never install it on a
production meter.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

# vpcd's first port (reader.conf CHANNELID). A test run sets its own (devkit.isolation), so two runs
# on one machine do not share virtual readers.
BASE_PORT = int(os.environ.get("SMARTMETER_VPCD_PORT", "35963"))


@dataclass(frozen=True)
class VpcdSlot:
    slot: str  # the meter's slot number, as printed on the front panel
    reader: str  # the PC/SC reader name pcscd gives it
    port: int  # where the virtual card connects


EMULATION_SLOTS: tuple[VpcdSlot, ...] = (
    VpcdSlot("1", "Virtual PCD 00 00", BASE_PORT),
    VpcdSlot("2", "Virtual PCD 00 01", BASE_PORT + 1),
    VpcdSlot("3", "Virtual PCD 2 00 00", BASE_PORT + 2),
)


def reader_slot_names() -> dict[str, str]:
    """PC/SC reader name -> slot, for :class:`drivers.cards.pcsc.PcscSlots` in emulation."""
    return {s.reader: s.slot for s in EMULATION_SLOTS}
