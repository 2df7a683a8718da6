"""``smartmeter sim card insert|remove|status|serve|stop``: the emulated cards in the meter's slots
(the daemon is :mod:`drivers.cards.sim`)."""
from __future__ import annotations

import argparse
import base64
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError

RAW = argparse.RawDescriptionHelpFormatter


def register_sim(sub: Any) -> None:
    from .sim import default_socket

    p = sub.add_parser("card", help="emulated contract cards in the meter's slots", formatter_class=RAW,
                       description="""Insert and remove emulated cards. Slots: 1-3 = PC/SC readers
(vpcd, Type 4 card on TCP 35963-35965), 4 = NFC (FeliCa Type 3 tag over nfcpy udp:localhost:54321).
The first insert starts the emulator daemon (and pcscd, if none runs); `stop` ends both.""",
                       epilog="""examples:
  smartmeter sim card insert --slot 1 night.ndef
  smartmeter sim card insert --slot 4 data-a.cose      a signed document is wrapped as NDEF
  smartmeter sim card insert --slot 2 --pull-after 5 night.ndef   pulled out mid-read
  smartmeter sim card remove --slot 1
  smartmeter sim card status
  smartmeter sim card stop""")
    p.add_argument("--socket", type=Path, default=default_socket(), help="the emulator's control socket")
    cs = p.add_subparsers(dest="action", metavar="insert|remove|status|serve|stop", required=True)
    i = cs.add_parser("insert", help="insert a card (an NDEF image or a signed document)")
    i.add_argument("--slot", required=True)
    i.add_argument("--pull-after", type=int, help="answer this many APDUs / block reads, then vanish")
    i.add_argument("file", type=Path)
    i.set_defaults(func=cmd_sim_insert)
    r = cs.add_parser("remove", help="take the card out of a slot")
    r.add_argument("--slot", required=True)
    r.set_defaults(func=cmd_sim_remove)
    cs.add_parser("status", help="which slots hold a card").set_defaults(func=cmd_sim_status)
    s = cs.add_parser("serve", help="run the emulator in the foreground")
    s.add_argument("--no-pcscd", action="store_true", help="do not start pcscd even if none runs")
    s.set_defaults(func=cmd_sim_serve)
    cs.add_parser("stop", help="stop the emulator daemon").set_defaults(func=cmd_sim_stop)


def cmd_sim_insert(args: argparse.Namespace) -> int:
    from .sim import card_image, ensure_daemon, request

    image = card_image(read_file(args.file))
    ensure_daemon(args.socket)
    reply = request(args.socket, {"op": "insert", "slot": args.slot, "pull_after": args.pull_after,
                                  "image": base64.b64encode(image).decode()})
    print(f"slot {reply['slot']}: card inserted ({reply['bytes']} bytes) -> {reply['reader']}")
    return 0


def cmd_sim_remove(args: argparse.Namespace) -> int:
    from .sim import request, running

    if not running(args.socket):
        print(f"slot {args.slot}: no emulator running, nothing to remove")
        return 0
    reply = request(args.socket, {"op": "remove", "slot": args.slot})
    print(f"slot {reply['slot']}: {'card removed' if reply['removed'] else 'was empty'}")
    return 0


def cmd_sim_status(args: argparse.Namespace) -> int:
    from .sim import request, running

    if not running(args.socket):
        print("card emulator: not running")
        return 0
    for slot, st in request(args.socket, {"op": "status"})["slots"].items():
        held = f"card ({st['card_bytes']} bytes)" if st["card_bytes"] is not None else "empty"
        print(f"slot {slot}: {st['kind']:<4} {st['reader']:<24} {held}")
    return 0


def cmd_sim_serve(args: argparse.Namespace) -> int:
    from .sim import serve

    serve(args.socket, start_pcscd=not args.no_pcscd)
    return 0


def cmd_sim_stop(args: argparse.Namespace) -> int:
    from .sim import request, running

    if running(args.socket):
        request(args.socket, {"op": "stop"})
        print("card emulator stopped")
    else:
        print("card emulator: not running")
    return 0


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
