"""``smartmeter ui``: the touch screen's process, on the meter (kiosk) or beside an emulated one.

It assembles what the UI needs -- the core's API over the meter's store, the core's card check,
the card readers -- and hands them to :mod:`ui.app`, which knows only the core's API.

The UI's own config (``/etc/smartmeter/ui.toml``) is separate from the meter's::

    [ui]
    panel = "a"                 # a: Fig. 9(a) three card slots; b: Fig. 9(b) one slot + company list
    language = "ja"             # ja | en (the screen has a toggle)
    meter_config = "meter.toml" # the meter service's config: store, meter id, interval
    registry_key = "registry.pub"
    nfc = ""                    # an nfcpy device for slot 4, e.g. "usb" or "tty:AMA0:pn532"

    [ui.readers]                # PC/SC reader name -> front-panel slot
    "ACS ACR122U PICC Interface 00 00" = "1"
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Literal

import msgspec

from appliance.config import SlotName, load_toml

log = logging.getLogger("smartmeter.ui")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write WIDTHxHEIGHT, e.g. 800x480") from None
    return w, h


class UiSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    panel: Literal["a", "b"] = "a"  # a: Fig. 9(a) three card slots; b: Fig. 9(b) one slot + company list
    language: Literal["ja", "en"] = "ja"  # the screen has a toggle
    meter_config: Path = Path("/etc/smartmeter/meter.toml")  # relative: to the UI config's folder
    registry_key: Path | None = None  # default: the meter config's trust.registry_public_key
    nfc: str = ""  # an nfcpy device for slot 4, e.g. "usb" or "tty:AMA0:pn532"
    readers: dict[str, SlotName] = {}  # PC/SC reader name -> front-panel slot


class UiConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ui: UiSection = UiSection()
    base: Path = msgspec.field(default=Path("."), name="__base__")  # the file's folder


def load_ui_config(path: Path | None) -> UiConfig:
    if path is None:
        return UiConfig()
    cfg = load_toml(path, UiConfig, what="UI config")
    return msgspec.structs.replace(cfg, base=Path(path).parent)


def cmd_ui(args: argparse.Namespace) -> int:
    cfg = load_ui_config(args.config)
    panel = args.panel or cfg.ui.panel
    language = args.language or cfg.ui.language
    if args.emulate or args.attach:
        return run_emulation(args.size, panel, language, fullscreen=False, attach_to=args.attach)
    return run_kiosk(cfg, args.size, panel, language, fullscreen=not args.window)


def run_emulation(size, panel: str, language: str, fullscreen: bool = False, attach_to: Path | None = None) -> int:
    """The app in a window beside an emulated meter: a new one in a child process, or the running one
    in ``attach_to`` (the demo's). The UI reaches it as it reaches a real meter, plus the drawer."""
    import tempfile

    from .attach import EmulationProcess, attach

    child = None
    if attach_to is None:
        child = EmulationProcess(Path(tempfile.mkdtemp(prefix="smartmeter-ui-"))).start()
        attach_to = child.workdir
    emu = attach(attach_to)
    print(f"emulated meter {emu.meter_id}: broker 127.0.0.1:{emu.descriptor['broker']['port']}, files in {attach_to}",
          flush=True)
    try:
        return run_attached(emu, size, panel, language, fullscreen)
    finally:
        emu.close()
        if child is not None:
            child.stop()


def run_attached(emu, size, panel: str, language: str, fullscreen: bool = False) -> int:
    from ui.app import UiSettings, create_app, prepare_kivy

    prepare_kivy(size, fullscreen)
    slots = emu.card_slots(("1", "2", "3", "4"))
    readers = emu.start_card_readers(slots.callbacks())
    try:
        create_app(emu.api, slots, UiSettings(panel=panel, language=language), emulation=emu.control).run()
    finally:
        for r in readers:
            r.stop()
    return 0


def run_kiosk(cfg: UiConfig, size, panel: str, language: str, fullscreen: bool = True) -> int:
    """The UI on the meter itself: the store of the running meter service, the real card readers."""
    from appliance.clock import SystemClock
    from appliance.config import load_config
    from appliance.trust.keys import load_public
    from ui.app import UiSettings, create_app, prepare_kivy
    from ui.model import CardSlots

    from .assembly import card_check, meter_api

    ui, base = cfg.ui, cfg.base
    meter_cfg = load_config(base / ui.meter_config)
    clock = SystemClock()
    api = meter_api(meter_cfg, clock)
    # ui.registry_key, if the installer gave one, else the meter's own trust anchor
    root = load_public(base / ui.registry_key) if ui.registry_key else None
    check = card_check(meter_cfg, clock, api.store, root)
    readers = {name: str(slot) for name, slot in ui.readers.items()}
    slot_names = tuple(sorted(set(readers.values()) | ({"4"} if ui.nfc else set()))) or ("1", "2", "3")
    prepare_kivy(size, fullscreen)
    slots = CardSlots(slot_names, check, clock.now, verify_stored=check.stored)
    settings = UiSettings(panel=panel, language=language, slots=slot_names[:3], panel_b_slot=slot_names[0])
    watchers = []
    try:
        from drivers.cards.pcsc import PcscSlots

        watchers.append(PcscSlots(slots.callbacks(), readers, only_named=bool(readers)).start())
        if ui.nfc:
            from drivers.cards.nfc import NfcSlot

            watchers.append(NfcSlot("4", ui.nfc, slots.callbacks()).start())
        create_app(api, slots, settings).run()
    finally:
        for w in watchers:
            w.stop()
        api.store.close()
    return 0


def register(groups) -> None:
    ui = groups["ui"]
    description = ("The Kivy touch screen. Kiosk: fullscreen on the meter, reading the meter service's store "
                   "and the card readers. --emulate: a window with a whole emulated meter and a drawer to "
                   "insert cards, set load/solar, cut the supply and stop the broker.")
    ui.description = description  # "ui" is one command: `smartmeter ui [--emulate] [--config ...]`
    _ui_args(ui)
    ui.set_defaults(func=cmd_ui)


def _ui_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--emulate", action="store_true", help="desktop emulation: a window and an emulated meter")
    p.add_argument("--attach", type=Path, metavar="DIR",
                   help="desktop emulation beside a running emulated system (the demo's work directory)")
    p.add_argument("--config", type=Path, help="the UI config (ui.toml); see docs/ui.md")
    p.add_argument("--size", type=parse_size, default=(800, 480), help="window size, e.g. 800x480, 1024x600")
    p.add_argument("--panel", choices=["a", "b"], help="override the config: Fig. 9(a) or 9(b) card panel")
    p.add_argument("--language", choices=["ja", "en"], help="start language (default ja)")
    p.add_argument("--window", action="store_true", help="kiosk mode in a window instead of fullscreen")
