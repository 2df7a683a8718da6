"""NDEF messages on contract cards, and how they sit in Type 4 (ISO 14443-4 / HCE) and Type 3 (FeliCa) tags.

The first record of the message is an NFC Forum external type record
``urn:nfc:ext:smartmeter.example:contract`` whose payload is the signed contract change data (a
COSE_Sign1). Other records may follow (e.g. a URI for a phone); the meter ignores them. The whole
message fits in 888 bytes, the user memory of an NTAG216 (interfaces.md section 4).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import ndef

from appliance.trust.rejections import DocumentTooLarge, MalformedDocument

RECORD_TYPE = "urn:nfc:ext:smartmeter.example:contract"
MAX_MESSAGE = 888

# NFC Forum Type 4 Tag (T4T v2.0)
NDEF_AID = bytes.fromhex("D2760000850101")
CC_FILE_ID = 0xE103
NDEF_FILE_ID = 0xE104
T4T_MAPPING_VERSION = 0x20
ACCESS_GRANTED = 0x00
ACCESS_DENIED = 0xFF

# NFC Forum Type 3 Tag (FeliCa): NDEF service, block size, system code
T3T_SYSTEM_CODE = 0x12FC
T3T_NDEF_SERVICE_READ = 0x000B
T3T_NDEF_SERVICE_WRITE = 0x0009
T3T_BLOCK = 16
T3T_MAPPING_VERSION = 0x10


class NotAContractCard(MalformedDocument):
    """The card answered, but what it holds is not a contract card's NDEF message."""

    code = "not_a_contract_card"
    reason_ja = "契約カードではありません"


def card_message(signed_document: bytes, *extra: ndef.Record) -> bytes:
    """The NDEF message a company writes to a card; refuses one that would not fit an NTAG216."""
    message = b"".join(ndef.message_encoder([ndef.Record(RECORD_TYPE, "", bytes(signed_document)), *extra]))
    if len(message) > MAX_MESSAGE:
        raise DocumentTooLarge(
            f"the NDEF message is {len(message)} bytes; a contract card holds at most {MAX_MESSAGE} "
            f"(shorten the company name, server address or weekly schedule)")
    return message


def document_from_message(message: bytes) -> bytes:
    """The signed document in the first record, or a plain reason why the card is not a contract card."""
    if not message:
        raise NotAContractCard("the card holds an empty NDEF message")
    if len(message) > MAX_MESSAGE:
        raise NotAContractCard(f"the card's NDEF message is {len(message)} bytes, more than {MAX_MESSAGE}")
    try:
        records = list(ndef.message_decoder(bytes(message), errors="strict"))
    except ndef.DecodeError as exc:
        raise NotAContractCard(f"the card's NDEF message is damaged or truncated ({exc})") from None
    except Exception as exc:  # ndeflib decodes well-known types further; hostile bytes may fail there too
        raise NotAContractCard(f"the card's NDEF message cannot be decoded ({type(exc).__name__})") from None
    if not records:
        raise NotAContractCard("the card holds no NDEF record")
    first = records[0]
    if first.type != RECORD_TYPE:
        raise NotAContractCard(f"the card's first record is {first.type!r}, not a contract ({RECORD_TYPE})")
    return bytes(first.data)


# --- Type 4 Tag: capability container (file E103) and NDEF file (2-byte NLEN + message) ---

@dataclass(frozen=True)
class CapabilityContainer:
    """The CC file of a Type 4 Tag: how to read (MLe) and write (MLc) the NDEF file, and where it is."""

    mle: int = 0x00FF  # max R-APDU data size: the reader reads the NDEF file in chunks of this
    mlc: int = 0x00FF  # max C-APDU data size for UPDATE BINARY
    ndef_file_id: int = NDEF_FILE_ID
    max_ndef_size: int = 2 + MAX_MESSAGE  # NLEN + message
    read_access: int = ACCESS_GRANTED
    write_access: int = ACCESS_GRANTED
    mapping_version: int = T4T_MAPPING_VERSION

    LENGTH = 15

    def to_bytes(self) -> bytes:
        return struct.pack(">HBHHBBHHBB", self.LENGTH, self.mapping_version, self.mle, self.mlc,
                           0x04, 0x06, self.ndef_file_id, self.max_ndef_size, self.read_access, self.write_access)

    @classmethod
    def from_bytes(cls, data: bytes) -> "CapabilityContainer":
        if len(data) < cls.LENGTH:
            raise NotAContractCard(f"the capability container is {len(data)} bytes, shorter than {cls.LENGTH}")
        cclen, version, mle, mlc, tag, tlen, fid, size, read, write = struct.unpack(">HBHHBBHHBB", data[:cls.LENGTH])
        if version >> 4 not in (2, 3):
            raise NotAContractCard(f"unsupported Type 4 Tag mapping version {version >> 4}.{version & 15}")
        if tag != 0x04 or tlen != 0x06:
            raise NotAContractCard("the capability container has no NDEF file control TLV")
        if mle < 0x000F or size < 2 or cclen < cls.LENGTH:
            raise NotAContractCard("the capability container declares impossible sizes")
        if read != ACCESS_GRANTED:
            raise NotAContractCard("the card does not allow reading its NDEF file")
        return cls(mle=mle, mlc=mlc, ndef_file_id=fid, max_ndef_size=size, read_access=read, write_access=write,
                   mapping_version=version)


def type4_files(message: bytes, cc: CapabilityContainer | None = None) -> dict[int, bytes]:
    """The files a Type 4 card serves for ``message``: the CC file and the NDEF file (NLEN first)."""
    cc = cc or CapabilityContainer()
    if len(message) + 2 > cc.max_ndef_size:
        raise DocumentTooLarge(f"the NDEF message is {len(message)} bytes; the card's NDEF file holds {cc.max_ndef_size - 2}")
    body = struct.pack(">H", len(message)) + bytes(message)
    return {CC_FILE_ID: cc.to_bytes(), cc.ndef_file_id: body + bytes(cc.max_ndef_size - len(body))}


# --- Type 3 Tag (FeliCa): attribute information block 0, then NDEF data blocks ---

@dataclass(frozen=True)
class Type3Attributes:
    """Block 0 of a FeliCa NDEF tag (NFC Forum T3T attribute information block)."""

    length: int  # Ln: NDEF message bytes
    nbr: int = 4  # blocks per Read Without Encryption
    nbw: int = 1  # blocks per Write Without Encryption
    nmaxb: int = (MAX_MESSAGE + T3T_BLOCK - 1) // T3T_BLOCK
    writef: int = 0x00  # 0x0F while a write is in progress
    rwflag: int = 0x01  # 0x01 read/write, 0x00 read only
    version: int = T3T_MAPPING_VERSION

    def to_block(self) -> bytes:
        block = bytearray(T3T_BLOCK)
        block[0:5] = struct.pack(">BBBH", self.version, self.nbr, self.nbw, self.nmaxb)
        block[9], block[10] = self.writef, self.rwflag
        block[11:14] = struct.pack(">I", self.length)[1:]
        block[14:16] = struct.pack(">H", sum(block[0:14]))
        return bytes(block)

    @classmethod
    def from_block(cls, block: bytes) -> "Type3Attributes":
        if len(block) != T3T_BLOCK:
            raise NotAContractCard("the FeliCa attribute block is not 16 bytes")
        if sum(block[0:14]) != struct.unpack(">H", block[14:16])[0]:
            raise NotAContractCard("the FeliCa attribute block checksum is wrong")
        version, nbr, nbw, nmaxb = struct.unpack(">BBBH", block[0:5])
        length = struct.unpack(">I", b"\x00" + block[11:14])[0]
        if version >> 4 != 1:
            raise NotAContractCard(f"unsupported FeliCa NDEF mapping version {version >> 4}")
        if length > nmaxb * T3T_BLOCK:
            raise NotAContractCard("the FeliCa attribute block declares more data than the tag holds")
        return cls(length=length, nbr=nbr, nbw=nbw, nmaxb=nmaxb, writef=block[9], rwflag=block[10], version=version)


def type3_blocks(message: bytes, *, writable: bool = True) -> list[bytes]:
    """The 16-byte blocks of a FeliCa NDEF tag holding ``message``: attribute block, then data blocks."""
    attrs = Type3Attributes(length=len(message), rwflag=0x01 if writable else 0x00)
    if len(message) > attrs.nmaxb * T3T_BLOCK:
        raise DocumentTooLarge(f"the NDEF message is {len(message)} bytes; the tag holds {attrs.nmaxb * T3T_BLOCK}")
    data = bytes(message) + bytes(attrs.nmaxb * T3T_BLOCK - len(message))
    return [attrs.to_block()] + [data[i:i + T3T_BLOCK] for i in range(0, len(data), T3T_BLOCK)]
