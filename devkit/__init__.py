"""Development helpers: a private Mosquitto, a throwaway PostgreSQL, a pcscd with virtual readers,
free ports and child-process lifecycles, for the demo, the desktop emulation, the tests and the
benchmarks. Nothing a production meter or cloud handler runs imports this package (a test checks).
"""
