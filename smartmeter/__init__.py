"""The ``smartmeter`` console script: the composition root that plugs drivers and UI into the core."""
