"""Cloud handlers: example company servers and the grid operator's outage pipeline."""
