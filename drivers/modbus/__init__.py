"""Modbus metering-chip driver (PZEM-004T v3, Eastron SDM120/SDM630) and its emulator."""
