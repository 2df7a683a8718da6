"""``smartmeter meter read`` (the installer's check) and ``smartmeter sim modbus`` (the emulator)."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from appliance.clock import Clock, ScaledClock, SystemClock, iso, parse_iso
from appliance.errors import ConfigError

from .bridge import ModbusEndpoint, quiet_pymodbus
from .chip import ModbusMeteringChip
from .emulator import ChipEmulator
from .faults import FAULT_KINDS
from .load_profile import LoadProfile
from .profiles import PROFILES, get_profile

log = logging.getLogger(__name__)

READ_EXAMPLES = """\
examples:
  # a PZEM-004T on a USB-RS485 adapter (9600 8N1, general address 0xF8)
  smartmeter meter read --profile pzem004t --serial /dev/ttyUSB0
  # an SDM120 at address 2 (factory baud 2400)
  smartmeter meter read --profile sdm120 --serial /dev/ttyUSB0 --address 2
  # an SDM630 behind a Modbus TCP gateway
  smartmeter meter read --profile sdm630 --tcp 192.168.1.50:502 --address 1
  # against the emulator (see: smartmeter sim modbus --help)
  smartmeter meter read --profile sdm120 --tcp 127.0.0.1:5020

Prints one sample as JSON and exits 0 when the chip answered; when it did not, prints the
JSON (ok false, with the error) and one line on stderr naming the fault, and exits 1.
"""

SIM_EXAMPLES = """\
examples:
  # an SDM120 with rooftop solar on Modbus TCP, a simulated day in 24 minutes
  smartmeter sim modbus --profile sdm120 --tcp 127.0.0.1:5020 --speed 60
  # a PZEM-004T on one end of a virtual serial cable
  socat -d -d pty,raw,echo=0,link=/tmp/ttyA pty,raw,echo=0,link=/tmp/ttyB &
  smartmeter sim modbus --profile pzem004t --serial /tmp/ttyA
  smartmeter meter read --profile pzem004t --serial /tmp/ttyB
  # a chip that never answers, from a given moment (western Japan, 60 Hz)
  smartmeter sim modbus --profile sdm630 --tcp 127.0.0.1:5020 --fault no_answer \\
      --start 2026-11-23T18:00+09:00 --frequency 60

Runs until Ctrl-C. With -v, logs one line per request served.
"""


def _add_bus_args(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument("--profile", required=True, choices=sorted(PROFILES), help="the metering chip")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT", help=f"Modbus TCP address to {verb}")
    where.add_argument("--serial", metavar="DEV", help=f"serial device to {verb} (Modbus RTU)")
    p.add_argument("--baud", type=int, help="serial baud rate (default: the chip's, 9600 PZEM/"
                   "SDM630, 2400 SDM120)")
    p.add_argument("--parity", default="N", choices=("N", "E", "O"), help="serial parity (default N: 8N1)")


def register(groups) -> None:
    p = groups["meter"].add_parser(
        "read",
        help="read one sample from the metering chip and print it as JSON",
        description="Read one sample from the metering chip in one Modbus block read: the "
        "installer's check of wiring, address and baud rate.",
        epilog=READ_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_bus_args(p, "read from")
    p.add_argument("--address", type=lambda s: int(s, 0), help="Modbus address, e.g. 1 or 0xF8 "
                   "(default: 0xF8 general address for pzem004t, 1 for sdm*)")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for a reply (default 1)")
    p.add_argument("--retries", type=int, default=3, help="attempts after a failed one (default 3)")
    p.set_defaults(func=cmd_read)

    p = groups["sim"].add_parser(
        "modbus",
        help="emulate a metering chip (PZEM-004T, SDM120, SDM630) over Modbus TCP or RTU",
        description="Emulate a metering chip serving a simulated Japanese household's day over real "
        "Modbus: TCP, or RTU on a serial device. Energy registers only grow.",
        epilog=SIM_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_bus_args(p, "serve on")
    p.add_argument("--address", type=lambda s: int(s, 0), help="the chip's Modbus address (default 1; "
                   "a PZEM also answers 0xF8)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    p.add_argument("--start", metavar="ISO", help="simulated start time, e.g. 2026-11-23T06:00+09:00 "
                   "(default: now)")
    p.add_argument("--solar", action=argparse.BooleanOptionalAction, default=None,
                   help="rooftop solar, ~3 kW at noon (default: on for sdm*, off for pzem004t)")
    p.add_argument("--frequency", type=int, default=50, choices=(50, 60),
                   help="grid frequency: 50 (east, default) or 60 (west)")
    p.add_argument("--seed", type=int, default=1, help="household variation seed (default 1)")
    p.add_argument("--import-wh", type=float, default=0.0, help="import register at start, Wh")
    p.add_argument("--fault", choices=FAULT_KINDS, help="inject a fault in every reply (or --fault-count)")
    p.add_argument("--fault-count", type=int, help="only for the first N requests")
    p.set_defaults(func=cmd_sim)


def _endpoint(args: argparse.Namespace, baud: int, timeout: float = 1.0) -> ModbusEndpoint:
    if args.tcp:
        return ModbusEndpoint.parse_tcp(args.tcp, timeout=timeout)
    return ModbusEndpoint.serial(args.serial, baud=args.baud or baud, parity=args.parity, timeout=timeout)


def cmd_read(args: argparse.Namespace) -> int:
    if not args.verbose:
        quiet_pymodbus()
        # The failure goes to stderr once, below; the driver's own warning would repeat it.
        logging.getLogger("drivers.modbus.chip").setLevel(logging.ERROR)
    profile = get_profile(args.profile)
    if args.timeout <= 0 or args.retries < 0:
        raise ConfigError("--timeout must be positive and --retries not negative")
    endpoint = _endpoint(args, profile.default_baud, args.timeout)
    with ModbusMeteringChip(profile, endpoint, args.address, SystemClock(), retries=args.retries) as chip:
        sample = chip.read_sample()
    print(json.dumps(sample.as_json(), ensure_ascii=False))
    if not sample.ok:
        print(f"smartmeter: meter read failed: {sample.error}", file=sys.stderr)
        return 1
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    if not args.verbose:
        quiet_pymodbus(logging.WARNING)
    profile = get_profile(args.profile)
    if args.speed <= 0:
        raise ConfigError("--speed must be positive")
    start = parse_iso(args.start) if args.start else None
    clock: Clock = SystemClock() if start is None and args.speed == 1 else ScaledClock(start, args.speed)
    solar = profile.measures_direction if args.solar is None else args.solar
    load = LoadProfile(seed=args.seed, frequency_hz=float(args.frequency), solar=solar)
    emulator = ChipEmulator(profile, clock, load, args.address, import_wh=args.import_wh)
    if args.fault:
        emulator.faults.set(args.fault, args.fault_count if args.fault_count else True)
    log.info(
        "simulated time starts %s at %gx; solar %s; fault %s. Ctrl-C to stop.",
        iso(clock.now()), args.speed, "on" if solar else "off",
        args.fault or "none",
    )
    try:
        if args.tcp:
            endpoint = ModbusEndpoint.parse_tcp(args.tcp)
            emulator.serve_tcp(endpoint.host, endpoint.port)
        else:
            emulator.serve_rtu(args.serial, args.baud, args.parity)
    except KeyboardInterrupt:
        pass
    log.info("stopped after %d requests", emulator.requests)
    return 0
