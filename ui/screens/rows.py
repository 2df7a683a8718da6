"""Text rows of the scrolling lists (contracts, alerts): made once, updated in place, never rebuilt
on a refresh; a row grows to its wrapped text."""
from __future__ import annotations

from dataclasses import dataclass

from kivy.uix.gridlayout import GridLayout
from kivy.uix.scrollview import ScrollView

from ..widgets import PANEL, TEXT, Text, panel_background, put


@dataclass(frozen=True)
class RowSpec:
    """What one row shows. ``height`` is a minimum (design pixels); ``tone`` None: no panel (a header)."""

    text: str
    height: float
    tone: tuple[float, ...] | None = PANEL
    color: tuple[float, ...] = TEXT
    size: float = 16
    padded: bool = True


class Row(Text):
    """One row; in a line beside a button (``size_hint_y`` 1) it grows the line instead of itself."""

    def __init__(self, spec: RowSpec, scale: float) -> None:
        super().__init__(markup=True, size_hint_y=None)
        self.scale = scale
        self.spec: RowSpec | None = None
        self.min_height = 0.0
        self.tone_color = panel_background(self, spec.tone or (0, 0, 0, 0), scale * 6)
        self.bind(texture_size=lambda *_: self.fit())
        self.show(spec)

    def show(self, spec: RowSpec) -> None:
        """Only what changed is set: an unchanged text keeps its texture."""
        if spec == self.spec:
            return
        self.spec = spec
        s = self.scale
        self.min_height = s * spec.height
        put(self, text=spec.text, color=spec.color, font_size=s * spec.size,
            padding=(s * 10, s * 4) if spec.padded else (0, 0))
        self.fit()
        tone = spec.tone or (0, 0, 0, 0)
        if tuple(self.tone_color.rgba) != tuple(tone):
            self.tone_color.rgba = tone

    def fit(self) -> None:
        """The height given is a minimum: a long message (a long company name, English) takes the
        lines it needs."""
        box = self if self.size_hint_y is None else self.parent
        if box is not None:
            box.height = max(self.min_height, self.texture_size[1])


def sync_rows(lst: GridLayout, pool: list[Row], specs: list[RowSpec], scale: float) -> None:
    """Show ``specs`` in ``lst``, reusing the rows in ``pool``: updated in place, added or removed
    only at the end."""
    for i, spec in enumerate(specs):
        if i < len(pool):
            pool[i].show(spec)
        else:
            pool.append(Row(spec, scale))
        if pool[i].parent is None:
            lst.add_widget(pool[i])
    for row in pool[len(specs):]:
        if row.parent is not None:
            lst.remove_widget(row)


def scrolling_list(scale: float, padding: float = 4) -> tuple[ScrollView, GridLayout]:
    """A vertical list that scrolls under a finger: the scroll view and the list inside it."""
    scroll = ScrollView(do_scroll_x=False, bar_width=scale * 6)
    lst = GridLayout(cols=1, spacing=scale * 6, size_hint_y=None, padding=scale * padding)
    lst.bind(minimum_height=lst.setter("height"))
    scroll.add_widget(lst)
    return scroll, lst
