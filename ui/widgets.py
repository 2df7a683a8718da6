"""Drawing widgets of the touch screen: a 7-segment readout, the Fig. 7 marks, a bar chart, and
small helpers for flat buttons and wrapping labels."""
from __future__ import annotations

from kivy.graphics import Color, Line, Mesh, Rectangle, RoundedRectangle
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.widget import Widget

BG = (0.10, 0.11, 0.13, 1)
PANEL = (0.16, 0.17, 0.20, 1)
TEXT = (0.93, 0.94, 0.96, 1)
DIM = (0.55, 0.57, 0.62, 1)
GREY = (0.38, 0.39, 0.42, 1)
ACCENT = (0.10, 0.36, 0.76, 1)  # white text on it: over 6:1
LIT = (1.0, 0.72, 0.15, 1)  # a lit card-select button / mark
ON_LIT = (0.1, 0.1, 0.1, 1)  # text on a lit button
GOOD = (0.25, 0.75, 0.40, 1)  # as text or a mark on the dark background
BAD = (0.90, 0.30, 0.28, 1)
GO = (0.10, 0.45, 0.22, 1)  # a button's fill: white text on it over 5:1
STOP = (0.70, 0.16, 0.14, 1)  # a warning button's fill: white text on it over 5:1
BAR = (0.30, 0.62, 1.0, 1)  # usage bars
SEG_ON = (0.35, 1.0, 0.55, 1)
SEG_OFF = (0.12, 0.22, 0.15, 1)
MIN_TOUCH = 48  # px at 800x480: the smallest touch target
MIN_CONTRAST = 4.5  # WCAG AA for text


def luminance(rgba) -> float:
    """Relative luminance (WCAG 2) of an RGB(A) colour with components 0-1."""
    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg, bg) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


class Text(Label):
    """A label that wraps to its width.

    Vertically centred text gets a texture only as tall as the text (``text_size`` height None):
    the screen redraws every frame and a software renderer pays for every pixel of every texture,
    transparent or not."""

    def __init__(self, **kw):
        kw.setdefault("color", TEXT)
        kw.setdefault("halign", "left")
        kw.setdefault("valign", "middle")
        super().__init__(**kw)
        self.bind(size=self._wrap)

    def _wrap(self, *_):
        self.text_size = (self.width, None if self.valign == "middle" else self.height)


class Flat(Button):
    """A flat touch button with a colour that can be changed (``tone``)."""

    tone = ListProperty(PANEL)

    def __init__(self, **kw):
        kw.setdefault("background_normal", "")
        kw.setdefault("background_down", "")
        kw.setdefault("color", TEXT)
        kw.setdefault("halign", "center")
        kw.setdefault("valign", "middle")
        tone = kw.pop("tone", PANEL)
        super().__init__(**kw)
        self.tone = tone
        self.bind(tone=self._paint, state=self._paint, size=self._wrap)
        self._paint()

    def _wrap(self, *_):
        self.text_size = (self.width - 8, None)

    def _paint(self, *_):
        r, g, b, a = self.tone
        k = 0.75 if self.state == "down" else 1.0
        self.background_color = (r * k, g * k, b * k, a)


# --- 7 segments ------------------------------------------------------------------------------

SEGMENTS = {  # a b c d e f g
    "0": "abcdef", "1": "bc", "2": "abdeg", "3": "abcdg", "4": "bcfg", "5": "acdfg", "6": "acdefg",
    "7": "abc", "8": "abcdefg", "9": "abcdfg", "-": "g", " ": "", "E": "adefg", "r": "eg", "o": "cdeg",
}


class SevenSegment(Widget):
    """A 7-segment style readout of ``text`` (digits, ``-``, space and decimal points).

    Drawn as two meshes, lit and unlit segments, whatever the number of digits: two draw calls a
    frame instead of one per segment (the readout is redrawn every frame; the text changes once a
    second)."""

    text = StringProperty("")
    digits = NumericProperty(6)
    on_color = ListProperty(SEG_ON)
    off_color = ListProperty(SEG_OFF)

    def __init__(self, **kw):
        super().__init__(**kw)
        self._cells: list[dict[str | None, list[float]]] = []  # per digit: segment (None: the dot) -> polygon
        with self.canvas:
            self._off_color = Color(*self.off_color)
            self._off = Mesh(mode="triangles")
            self._on_color = Color(*self.on_color)
            self._on = Mesh(mode="triangles")
        # Geometry is computed once per size/position; a new text only refills the two meshes.
        self.bind(pos=self._layout, size=self._layout, digits=self._layout)
        self.bind(text=self._paint, on_color=self._paint, off_color=self._paint)
        self._layout()

    def cells(self) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        for ch in self.text:
            if ch == "." and out:
                out[-1] = (out[-1][0], True)
            else:
                out.append((ch, False))
        n = int(self.digits)
        out = [(" ", False)] * max(0, n - len(out)) + out[-n:]
        return out

    def _layout(self, *_):
        self._cells = []
        n = int(self.digits)
        if self.width > 0 and self.height > 0 and n > 0:
            cw = self.width / n
            h = min(self.height, cw * 1.8)
            w = h / 1.8 * 0.82
            t = max(2.0, h * 0.10)  # segment thickness
            y0 = self.y + (self.height - h) / 2
            for i in range(n):
                x0 = self.x + i * cw + (cw - w) / 2 - t * 0.3
                hh = (h - 3 * t) / 2
                rects = {
                    "a": (x0 + t, y0 + h - t, w - 2 * t, t),
                    "g": (x0 + t, y0 + hh + t, w - 2 * t, t),
                    "d": (x0 + t, y0, w - 2 * t, t),
                    "f": (x0, y0 + hh + 1.5 * t, t, hh + 0.5 * t),
                    "b": (x0 + w - t, y0 + hh + 1.5 * t, t, hh + 0.5 * t),
                    "e": (x0, y0 + t * 0.5, t, hh + 0.5 * t),
                    "c": (x0 + w - t, y0 + t * 0.5, t, hh + 0.5 * t),
                }
                cell: dict[str | None, list[float]] = {seg: _quad(x + 1, y + 1, sw - 2, sh - 2)
                                                       for seg, (x, y, sw, sh) in rects.items()}
                cell[None] = _octagon(x0 + w + t * 0.7, y0 + t * 0.55, t * 0.55)  # the decimal point
                self._cells.append(cell)
        self._paint()

    def _paint(self, *_):
        self._on_color.rgba = self.on_color
        self._off_color.rgba = self.off_color
        lit: list[list[float]] = []
        unlit: list[list[float]] = []
        for cell, (ch, dot) in zip(self._cells, self.cells()):
            segs = SEGMENTS.get(ch, "")
            for seg, poly in cell.items():
                (lit if (dot if seg is None else seg in segs) else unlit).append(poly)
        self._on.vertices, self._on.indices = _fan_mesh(lit)
        self._off.vertices, self._off.indices = _fan_mesh(unlit)


def _quad(x: float, y: float, w: float, h: float) -> list[float]:
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def _octagon(cx: float, cy: float, r: float) -> list[float]:
    import math

    return [v for k in range(8) for v in (cx + r * math.cos(k * math.pi / 4), cy + r * math.sin(k * math.pi / 4))]


def _fan_mesh(polygons: list[list[float]]) -> tuple[list[float], list[int]]:
    """Convex polygons (flat x, y lists) as one triangle mesh: Kivy's (x, y, u, v) vertices and indices."""
    vertices: list[float] = []
    indices: list[int] = []
    base = 0
    for poly in polygons:
        n = len(poly) // 2
        for k in range(n):
            vertices += (poly[2 * k], poly[2 * k + 1], 0.0, 0.0)
        for k in range(1, n - 1):
            indices += (base, base + k, base + k + 1)
        base += n
    return vertices, indices


class Mark(Widget):
    """A Fig. 7 operation mark: ``mode`` off / on / blink; ``phase`` drives the blinking."""

    mode = StringProperty("off")
    phase = BooleanProperty(True)
    lit = BooleanProperty(False)
    arrow = StringProperty("right")  # right: forward (import), left: reverse (export)

    def __init__(self, **kw):
        super().__init__(**kw)
        self._fill = self._edge = None
        # Geometry is built on size/position; blinking only recolours the two Color instructions.
        self.bind(mode=self._update, phase=self._update, pos=self._draw, size=self._draw, lit=self._paint)
        self._draw()
        self._update()

    def _update(self, *_):
        self.lit = self.mode == "on" or (self.mode == "blink" and self.phase)

    def _draw(self, *_):
        from kivy.graphics import Triangle

        self.canvas.clear()
        s = min(self.width, self.height)
        cx, cy = self.center
        with self.canvas:
            self._fill = Color(1, 1, 1, 1)
            d = 1 if self.arrow == "right" else -1
            pts = [cx - d * s * 0.45, cy + s * 0.35, cx + d * s * 0.45, cy, cx - d * s * 0.45, cy - s * 0.35]
            Triangle(points=pts)
            self._edge = Color(1, 1, 1, 1)
            Line(points=pts + pts[:2], width=1.2)
        self._paint()

    def _paint(self, *_):
        if self._fill is None:
            return
        self._fill.rgba = LIT if self.lit else (0.25, 0.24, 0.20, 1)
        self._edge.rgba = LIT if self.lit else GREY


class BarChart(Widget):
    """A day's usage: one bar per half-hour slot (``values``, kWh; None draws nothing) on a y-axis
    from 0 to ``top`` kWh (the same for every day shown, so days compare by eye), labelled at
    ``y_ticks``; a red tick under the slots in ``bad``; hour labels under the axis every
    ``tick_hours``. A touch on a bar selects it (``selected``), outlined."""

    values = ListProperty([])
    bad = ListProperty([])
    top_kwh = NumericProperty(1.0)
    y_ticks = ListProperty([])
    tick_hours = NumericProperty(3)
    font_size = NumericProperty(14)
    selected = NumericProperty(-1)  # the touched bar, -1 none

    def __init__(self, **kw):
        super().__init__(**kw)
        self._ticks: dict[tuple[str, float], object] = {}  # label textures, rendered once per font size
        self.bind(values=self._draw, bad=self._draw, pos=self._draw, size=self._draw, font_size=self._draw,
                  top_kwh=self._draw, y_ticks=self._draw, selected=self._draw)

    @property
    def gutter(self) -> float:
        """Room left of the bars for the y-axis labels."""
        return self.font_size * 3.2

    def slot_at(self, x: float) -> int | None:
        n = len(self.values)
        left = self.x + self.gutter
        if not n or x < left:
            return None
        return min(n - 1, int((x - left) / ((self.width - self.gutter) / n)))

    def on_touch_down(self, touch):
        if self.collide_point(*touch.pos):
            i = self.slot_at(touch.x)
            if i is not None:
                self.selected = i
                return True
        return super().on_touch_down(touch)

    def _tick(self, text: str):
        from kivy.core.text import Label as CoreLabel

        key = (text, self.font_size)
        if key not in self._ticks:
            label = CoreLabel(text=text, font_size=self.font_size)
            label.refresh()
            self._ticks[key] = label.texture
        return self._ticks[key]

    def _label(self, text: str, x: float, y: float) -> None:
        tex = self._tick(text)
        Rectangle(texture=tex, size=tex.size, pos=(x, y))

    def _draw(self, *_):
        self.canvas.clear()
        n = len(self.values)
        axis = self.font_size * 1.6  # room under the bars for the hour labels
        base = self.y + axis
        left = self.x + self.gutter
        width = self.width - self.gutter
        height = self.top - base - self.font_size * 0.8
        top_kwh = max(self.top_kwh, 1e-9)
        with self.canvas:
            Color(*PANEL)
            Rectangle(pos=self.pos, size=self.size)
            for v in self.y_ticks:  # gridlines and their values
                y = base + height * v / top_kwh
                Color(*GREY)
                Line(points=[left, y, self.right, y], width=1, dash_length=3, dash_offset=3)
                tex = self._tick(f"{v:g}")
                Color(*DIM)
                Rectangle(texture=tex, size=tex.size, pos=(left - tex.width - 4, y - tex.height / 2))
            if n:
                bw = width / n
                per_hour = n / 24
                for h in range(0, 25, int(self.tick_hours)):
                    x = left + min(h * per_hour * bw, width - 1)
                    Color(*GREY)
                    Line(points=[x, base, x, base - axis * 0.25], width=1)
                    tex = self._tick(str(h))
                    Color(*DIM)
                    Rectangle(texture=tex, size=tex.size,
                              pos=(min(max(left, x - tex.width / 2), self.right - tex.width), self.y + 2))
                for i, v in enumerate(self.values):
                    if v:
                        Color(*(LIT if i == self.selected else BAR))
                        Rectangle(pos=(left + i * bw + bw * 0.1, base + 1),
                                  size=(max(1, bw * 0.8), height * min(v, top_kwh) / top_kwh))
                if 0 <= self.selected < n:
                    Color(*LIT)
                    Line(rectangle=(left + self.selected * bw, base, bw, height), width=1)
                Color(*BAD)
                for i in self.bad:
                    Rectangle(pos=(left + i * bw + bw * 0.1, base - 4), size=(max(1, bw * 0.8), 4))
            Color(*GREY)
            Line(points=[left, base, self.right, base], width=1)
            Line(points=[left, base, left, base + height], width=1)


def differs(current, value) -> bool:
    """Whether setting a property to ``value`` would change it (lists and tuples compare by items)."""
    if isinstance(current, (list, tuple)) and isinstance(value, (list, tuple)):
        return list(current) != list(value)
    return current != value


def put(widget, **props) -> None:
    """Set only the properties whose value changes: an unchanged text keeps its texture, an unchanged
    colour does not dispatch a redraw."""
    for key, value in props.items():
        if differs(getattr(widget, key), value):
            setattr(widget, key, value)


def panel_background(widget, color=PANEL, radius=8):
    with widget.canvas.before:
        c = Color(*color)
        r = RoundedRectangle(pos=widget.pos, size=widget.size, radius=[radius])
    widget.bind(pos=lambda *_: setattr(r, "pos", widget.pos), size=lambda *_: setattr(r, "size", widget.size))
    return c
