"""Kivy touch UI (Fig. 9 panels, Fig. 7 display)."""
