"""The touch screen's screens and popups, one per module; each builds its named widgets once and
refreshes them in place from the :class:`~ui.screens.base.UiContext` it shares with the shell."""
