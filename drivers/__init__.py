"""Hardware drivers and their protocol-level emulators."""
