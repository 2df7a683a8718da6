"""Contract cards: NDEF layout, PC/SC and NFC card slots, and emulated cards that speak the real protocols.

Hardware libraries (pyscard, nfcpy) are imported only by the modules that drive them, so the
core and the company's tool never need a reader to start.
"""
