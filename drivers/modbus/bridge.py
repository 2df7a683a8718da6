"""The bus bridge: one Modbus master over TCP or RTU serial, as a pymodbus sync client.

The bridge moves register words and nothing else; it knows no chip. Every failure comes out as
one :class:`BusFault` subclass, so the device driver can count and retry by kind:

* :class:`BusTimeout`        no reply within the timeout (no power, wrong address or baud rate)
* :class:`BusFrameError`     a reply arrived but was damaged (RTU: bad CRC; TCP: bad MBAP header)
* :class:`BusExceptionReply` the device answered with a Modbus exception code
* :class:`BusConnectionError` the port or socket could not be opened, or broke

pymodbus retries are off (``retries=0``): the driver owns the retry policy and its backoff.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
from dataclasses import dataclass
from typing import Literal

import serial
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerRTU

from appliance.errors import ConfigError

EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "slave device failure",
    0x05: "acknowledge",
    0x06: "slave device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}


class BusFault(Exception):
    """A failed Modbus transaction; ``kind`` names the fault for counters and messages."""

    kind = "fault"


class BusTimeout(BusFault):
    kind = "timeout"


class BusFrameError(BusFault):
    kind = "crc"


class BusConnectionError(BusFault):
    kind = "connection"


class BusExceptionReply(BusFault):
    kind = "exception"

    def __init__(self, code: int) -> None:
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"exception reply 0x{code:02X} ({name})")


@dataclass(frozen=True)
class ModbusEndpoint:
    """Where the chip is: a Modbus TCP server (a gateway or the emulator) or an RS-485 port.

    Serial lines are 8 data bits, ``parity`` (N/E/O), 1 stop bit: 8N1 for both supported chips.
    """

    transport: Literal["tcp", "serial"]
    host: str = ""
    port: int = 502
    device: str = ""
    baud: int = 9600
    parity: str = "N"
    timeout: float = 1.0

    @classmethod
    def tcp(cls, host: str, port: int = 502, timeout: float = 1.0) -> ModbusEndpoint:
        return cls("tcp", host=host, port=port, timeout=timeout)

    @classmethod
    def serial(
        cls, device: str, baud: int = 9600, parity: str = "N", timeout: float = 1.0
    ) -> ModbusEndpoint:
        return cls("serial", device=device, baud=baud, parity=parity.upper(), timeout=timeout)

    @classmethod
    def parse_tcp(cls, text: str, timeout: float = 1.0) -> ModbusEndpoint:
        """``HOST:PORT`` (or ``HOST``, port 502; ``[::1]:502`` for IPv6)."""
        host, sep, port = text.rpartition(":")
        if not sep or "]" in port:
            host, port = text, "502"
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--tcp wants HOST:PORT, e.g. 192.168.1.50:502, not {text!r}")
        return cls.tcp(host, int(port), timeout)

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ConfigError(f"Modbus timeout must be positive, not {self.timeout}")
        if self.transport == "serial" and self.parity not in ("N", "E", "O"):
            raise ConfigError(f"serial parity must be N, E or O, not {self.parity!r}")

    def describe(self) -> str:
        if self.transport == "tcp":
            return f"Modbus TCP {self.host}:{self.port}"
        return f"Modbus RTU {self.device} {self.baud} 8{self.parity}1"


class _TcpClient(ModbusTcpClient):
    """pymodbus logs a refused connect and forgets why; keep the reason for the message."""

    last_error: str = ""

    def connect(self) -> bool:
        if self.socket:
            return True
        try:
            self.socket = socket.create_connection(
                (self.comm_params.host, self.comm_params.port),
                timeout=self.comm_params.timeout_connect,
            )
        except OSError as exc:
            self.last_error = exc.strerror or str(exc)
            self.close()
        return self.socket is not None


class _SerialClient(ModbusSerialClient):
    """As :class:`_TcpClient`: keep why the serial port did not open."""

    last_error: str = ""

    def connect(self) -> bool:
        if self.socket:
            return True
        try:
            self.socket = serial.serial_for_url(
                self.comm_params.host,
                timeout=self.comm_params.timeout_connect,
                write_timeout=self.comm_params.timeout_connect,
                bytesize=self.comm_params.bytesize,
                stopbits=self.comm_params.stopbits,
                baudrate=self.comm_params.baudrate,
                parity=self.comm_params.parity,
                exclusive=True,  # two masters on one adapter garble each other
            )
            self.socket.inter_byte_timeout = self.inter_byte_timeout
        except (OSError, ValueError, serial.SerialException) as exc:
            # pyserial nests the OS message twice; the errno's text is the useful part.
            code = getattr(exc, "errno", None)
            if code in (errno.EAGAIN, errno.EBUSY):  # the exclusive lock is held elsewhere
                self.last_error = "it is in use by another program (one master per bus)"
            else:
                self.last_error = os.strerror(code) if isinstance(code, int) else str(exc)
            self.close()
        return self.socket is not None


class FrameWatch:
    """Looks at every reply byte stream the client sees (a pymodbus ``trace_packet`` hook).

    pymodbus silently drops a damaged frame and then times out, so without this a CRC error on
    the line would look like a silent chip. Knowing the difference tells the installer to look at
    the A/B wiring and termination rather than at the address or the power.
    """

    def __init__(self, rtu: bool) -> None:
        self.rtu = rtu
        self.requests = 0  # requests put on the wire (one per transaction)
        self.damaged = ""  # why the last reply was rejected, "" if none

    def __call__(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self.requests += 1
            self.damaged = ""
        elif data and not self.damaged:
            self.damaged = self._rtu_damage(data) if self.rtu else self._mbap_damage(data)
        return data

    @staticmethod
    def _rtu_damage(data: bytes) -> str:
        if len(data) < 5:
            return ""
        function = data[1]
        if function & 0x80:
            size = 5
        elif function in (0x03, 0x04):
            size = 3 + data[2] + 2
        else:
            return ""
        if len(data) < size:
            return ""  # not all there yet
        crc = (data[size - 2] << 8) | data[size - 1]
        if FramerRTU.check_CRC(data[: size - 2], crc):
            return ""
        return "CRC error in the reply"

    @staticmethod
    def _mbap_damage(data: bytes) -> str:
        # TCP has its own checksums; what a gateway can get wrong is the MBAP header.
        if len(data) >= 8 and data[2:4] != b"\x00\x00":
            return "malformed reply (bad MBAP protocol identifier)"
        return ""


class ModbusBridge:
    """A Modbus master on one endpoint. Not thread-safe: one chip driver owns it."""

    def __init__(self, endpoint: ModbusEndpoint) -> None:
        self.endpoint = endpoint
        self.watch = FrameWatch(rtu=endpoint.transport == "serial")
        common = {"timeout": endpoint.timeout, "retries": 0, "trace_packet": self.watch}
        self.client: _TcpClient | _SerialClient
        if endpoint.transport == "tcp":
            self.client = _TcpClient(endpoint.host, port=endpoint.port, **common)
        else:
            self.client = _SerialClient(
                endpoint.device,
                baudrate=endpoint.baud,
                bytesize=8,
                parity=endpoint.parity,
                stopbits=1,
                **common,
            )
        # pymodbus counts silent replies and, after a few, claims to close the connection;
        # the driver decides that itself, so keep pymodbus out of it.
        self.client.set_max_no_responses(1 << 30)

    @property
    def requests(self) -> int:
        """Requests sent so far (each one a Modbus transaction)."""
        return self.watch.requests

    def connect(self) -> None:
        if not self.client.connect():
            serial_port = self.endpoint.transport == "serial"
            what = "cannot open the serial port" if serial_port else "cannot connect"
            raise BusConnectionError(f"{what}: {self.client.last_error or 'unknown reason'}")

    def read_registers(self, function: int, start: int, count: int, address: int) -> list[int]:
        """One block read (function 0x03 or 0x04) of ``count`` registers from device ``address``."""
        self.connect()
        read = (
            self.client.read_input_registers
            if function == 0x04
            else self.client.read_holding_registers
        )
        try:
            reply = read(start, count=count, device_id=address)
        except ConnectionException as exc:
            self.close()  # reopen on the next transaction
            if "unexpectedly closed" in str(exc):
                raise BusConnectionError("connection closed by the other end") from None
            raise BusConnectionError(f"connection broke: {exc}") from None
        except ModbusIOException as exc:
            if self.watch.damaged:
                raise BusFrameError(self.watch.damaged) from None
            if "No response" in str(exc):
                raise BusTimeout(f"no reply within {self.endpoint.timeout:g} s") from None
            raise BusFrameError(f"malformed reply: {exc}") from None
        except (ModbusException, ValueError, OSError) as exc:
            self.close()
            raise BusConnectionError(f"bus error: {exc}") from None
        if reply.isError():
            raise BusExceptionReply(getattr(reply, "exception_code", 0))
        words = list(reply.registers)
        if len(words) != count:
            raise BusFrameError(f"malformed reply: {len(words)} registers instead of {count}")
        return words

    def close(self) -> None:
        self.client.close()


def quiet_pymodbus(level: int = logging.CRITICAL) -> None:
    """Silence pymodbus's own log.

    pymodbus logs every timeout and refused connection at ERROR, with a dump of recent frames
    (from every client and server in the process). The driver counts, retries and reports those
    faults itself, so an application calls this once unless it is debugging the wire.
    """
    logging.getLogger("pymodbus").setLevel(level)
