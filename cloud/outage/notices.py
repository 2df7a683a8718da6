"""Notices to one customer that are not outages: a meter's security error (JP5159864B2 embodiment 4,
"transmitted to the customer's mobile phone"). The manager's API and the collector (a meter's own
alert on ``meters/{id}/alerts``) both come here, so the e-mail is the same whichever way it came."""
from __future__ import annotations

from datetime import datetime

from .model import Event, Language, MeterAlertEvent
from .storage import Storage
from .texts import when


def security_error(storage: Storage, meter_id: str, detail: str, at: datetime, reference: str, now: datetime) -> bool:
    """Queue the e-mail; False when the meter has no reachable customer or the notice is a repeat."""
    reg = storage.registration(meter_id)
    if reg is None or not reg.reachable:
        return False
    key = f"security:{meter_id}:{reference or at.isoformat()}"
    detail_json = {"detail": detail, "at_text": when(at, reg.language)}
    return storage.add_notifications([(key, Event.SECURITY_ERROR, meter_id, None, True, now, detail_json)], now) == 1


def alert_detail(alert: MeterAlertEvent, lang: Language) -> str:
    """What the customer reads, in the registration's language."""
    company = alert.company_code
    if lang is Language.JA:
        text = f"{company}の契約確認データがメーターの記録と一致しませんでした。{company}へのデータ送信を止めています。"
        if alert.breaker_open:
            text += "電力会社の確認に失敗したため、メーターが電気を止めています。"
        return text + "心当たりがない場合は、契約先の会社にご連絡ください。"
    text = (f"The confirmation data of {company} did not match your meter's records. "
            f"Your meter has stopped sending data to {company}.")
    if alert.breaker_open:
        text += " The power company's check failed, so the meter has cut the power."
    return text + " If you did not expect this, please contact the company."


def meter_alert(storage: Storage, alert: MeterAlertEvent, now: datetime) -> bool:
    reg = storage.registration(alert.meter_id)
    lang = reg.language if reg is not None else Language.JA
    return security_error(storage, alert.meter_id, alert_detail(alert, lang), alert.at, f"alert-{alert.alert_id}", now)
