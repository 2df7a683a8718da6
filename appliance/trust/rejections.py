"""Why a signed document or command is refused, in plain words for the log and the household display.

Every refusal is a :class:`appliance.errors.ChangeRejected`, so the CLI prints it as one line and the
core stores nothing. ``code`` is stable for logs and events; ``reason_ja`` is the short Japanese
line the display shows.
"""
from __future__ import annotations

from appliance.errors import ChangeRejected


class DocumentRejected(ChangeRejected):
    """A contract change document or a command that fails a check. Subclasses name the check."""

    code = "rejected"
    reason_ja = "契約データを受け付けられません"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedDocument(DocumentRejected):
    code = "malformed"
    reason_ja = "契約データの形式が正しくありません"


class UntrustedCertificate(DocumentRejected):
    code = "untrusted_certificate"
    reason_ja = "会社証明書が登録機関の署名ではありません"


class CertificateNotCurrent(DocumentRejected):
    code = "certificate_not_current"
    reason_ja = "会社証明書の有効期間外です"


class BadSignature(DocumentRejected):
    code = "bad_signature"
    reason_ja = "署名が正しくありません(改ざんの可能性)"


class CompanyMismatch(DocumentRejected):
    code = "company_mismatch"
    reason_ja = "会社コードが証明書と一致しません"


class RoleMismatch(DocumentRejected):
    code = "role_mismatch"
    reason_ja = "会社の種別と契約の種類が一致しません"


class DocumentExpired(DocumentRejected):
    code = "expired"
    reason_ja = "契約データの有効期限が切れています"


class NotYetValid(DocumentRejected):
    code = "not_yet_valid"
    reason_ja = "契約データの発行日時が未来です"


class WrongMeter(DocumentRejected):
    code = "wrong_meter"
    reason_ja = "このメーター宛ての契約データではありません"


class Replayed(DocumentRejected):
    code = "replayed"
    reason_ja = "使用済みの契約データです(再使用)"


class NonceMismatch(DocumentRejected):
    code = "nonce_mismatch"
    reason_ja = "確認データが要求と一致しません"


class NotGridOperator(DocumentRejected):
    """A ``breaker`` command signed by anyone but a certified grid operator (a company, say)."""

    code = "not_grid_operator"
    reason_ja = "送配電事業者以外からの電気の入切指令です(受け付けません)"


class DocumentTooLarge(DocumentRejected):
    """Raised when issuing: the NDEF message would not fit an 888-byte NTAG216."""

    code = "too_large"
    reason_ja = "カードの容量を超えています"


ALL_REJECTIONS: tuple[type[DocumentRejected], ...] = (
    MalformedDocument,
    UntrustedCertificate,
    CertificateNotCurrent,
    BadSignature,
    CompanyMismatch,
    RoleMismatch,
    DocumentExpired,
    NotYetValid,
    WrongMeter,
    Replayed,
    NonceMismatch,
    NotGridOperator,
    DocumentTooLarge,
)
