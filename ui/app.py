"""The Kivy touch UI: a thin client of the meter core through :class:`appliance.api.MeterAPI`.

Screens (``ui.screens``, one per module): meter display (Fig. 7), usage, card panel (Fig. 9(a) or
9(b), chosen by config), contracts, alerts; plus the emulation drawer when running ``--emulate``.
The app shell (``ui.shell``) wires them. This module imports no Kivy: :func:`prepare_kivy` must
configure it before its window is imported.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .i18n import CJK_FONT, CJK_FONT_BOLD
from .model import CardSlots

_FONT_DONE = False


def prepare_kivy(size: tuple[int, int] = (800, 480), fullscreen: bool = False) -> None:
    """Window size and the CJK font, before the first Kivy window import. Call once per process."""
    global _FONT_DONE
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")  # Kivy logs through ours; it leaves the root level alone
    from kivy.config import Config

    Config.set("graphics", "width", str(size[0]))
    Config.set("graphics", "height", str(size[1]))
    Config.set("graphics", "resizable", "0" if fullscreen else "1")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "exit_on_escape", "0" if fullscreen else "1")
    if fullscreen:
        Config.set("graphics", "show_cursor", "0")
    if not _FONT_DONE:
        from kivy.core.text import DEFAULT_FONT, LabelBase

        # Registered once for the whole app: every Label draws Japanese with Noto Sans CJK.
        LabelBase.register(DEFAULT_FONT, CJK_FONT, fn_bold=CJK_FONT_BOLD if os.path.exists(CJK_FONT_BOLD) else None)
        _FONT_DONE = True


@dataclass
class UiSettings:
    panel: str = "a"  # a: Fig. 9(a) three slots; b: Fig. 9(b) one slot + company list
    language: str = "ja"
    slots: tuple[str, ...] = ("1", "2", "3")
    panel_b_slot: str = "1"
    refresh_s: float = 1.0
    no_load_w: float = 5.0


def create_app(api, cards: CardSlots, settings: UiSettings, emulation: Any = None):
    """The touch screen's Kivy app on ``api`` (an :class:`appliance.api.MeterAPI`) and the card slots;
    ``emulation`` (the desktop emulation's control) adds the emulation drawer. Call
    :func:`prepare_kivy` first: this imports Kivy's window."""
    from .shell import SmartMeterApp

    return SmartMeterApp(api, cards, settings, emulation=emulation)
