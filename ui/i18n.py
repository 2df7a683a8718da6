"""Display texts in Japanese (default) and English, and the dates people see (JST).

Every string the touch screen shows is here. No Kivy here: the presenter and the tests use it too.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from appliance.clock import JST
from appliance.datatypes import NAMES as DATA_TYPE_NAMES  # shared with the web pages
from appliance.datatypes import DataType
from appliance.domain import SwitchTime
from appliance.schedule import DAYS

CJK_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
CJK_FONT_BOLD = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"

TEXTS: dict[str, tuple[str, str]] = {
    # key: (Japanese, English)
    "app_title": ("スマートメーター", "Smart meter"),
    "tab_meter": ("計量", "Meter"),
    "tab_usage": ("使用量", "Usage"),
    "tab_panel": ("カード", "Cards"),
    "tab_contracts": ("契約", "Contracts"),
    "tab_alerts": ("お知らせ", "Alerts"),
    "lang_toggle": ("English", "日本語"),
    "power_now": ("現在の電力", "Present power"),
    "power_unit": ("W", "W"),
    "energy_register": ("積算電力量 (買電) kWh", "Energy register (import) kWh"),
    "forward": ("順潮流", "Forward"),
    "reverse": ("逆潮流", "Reverse"),
    "state_forward": ("順潮流計量中", "Forward flow: measuring"),
    "state_no_load": ("無負荷", "No load"),
    "state_reverse": ("逆潮流計量中 (売電)", "Reverse flow: exporting"),
    "state_breaker_open": ("開閉器開放", "Breaker open"),
    "state_unknown": ("計量値なし", "No reading yet"),
    "reading_at": ("計量時刻", "Measured at"),
    "usage_title": ("{day} の使用量 (kWh/30分)", "Usage on {day} (kWh per 30 min)"),
    "usage_total": ("合計 {kwh:.3f} kWh  (計量値 {n} 件、横軸は時)", "Total {kwh:.3f} kWh  ({n} readings; hours across)"),
    "usage_none": ("この日の計量値はありません", "No readings on this day"),
    "prev_day": ("◀ 前日", "◀ Earlier"),
    "next_day": ("翌日 ▶", "Later ▶"),
    "slot": ("スロット {n}", "Slot {n}"),
    "slot_empty": ("カードなし", "No card"),
    "slot_reading": ("読み取り中…", "Reading…"),
    "card_select": ("カード選択", "Select card"),
    "in_force": ("契約中", "In force"),
    "datetime_unset": ("----/--/-- --:--", "----/--/-- --:--"),
    "datetime_set": ("日時設定", "Set date-time"),
    "switch_at": ("切換日時", "Switch at"),
    "switch_immediate": ("即時", "now"),
    "switch_weekly": ("毎週 {days}", "weekly {days}"),
    "set_ok": ("設定", "Set"),
    "set_clear": ("解除", "Clear"),
    "set_back": ("戻る", "Back"),
    "day": ("日", "Day"),
    "hour": ("時", "Hour"),
    "minute": ("分", "Min"),
    "step_down": ("−", "−"),
    "step_up": ("+", "+"),
    "panel_b_title": ("会社・料金メニュー", "Companies and tariff menus"),
    "panel_b_empty": ("カードを差し込むと会社が一覧に加わります", "Insert a card to add its company to the list"),
    "select": ("選択", "Select"),
    "ok": ("決定", "OK"),
    "cancel": ("取消", "Cancel"),
    "power_company": ("電力会社", "Power company"),
    "data_company": ("データ活用会社", "Data company"),
    "receives": ("受け取るデータ", "Receives"),
    "menu": ("料金メニュー", "Tariff menu"),
    "since": ("開始", "Since"),
    "pending": ("予定の切換", "Pending changes"),
    "pending_none": ("予定の切換はありません", "No pending changes"),
    "in_force_title": ("契約中の会社", "Companies in force"),
    "alerts_none": ("お知らせはありません", "No alerts"),
    "alert_security": ("セキュリティエラー", "Security error"),
    "alert_card": ("カードを受け付けられません", "Card refused"),
    "alert_breaker_remote": ("送配電事業者による電気の入切", "Supply switched by the grid operator"),
    "alert_link": ("クラウドとの接続が切れています", "Cloud connection lost"),
    "alert_link_queued": ("未送信の計量値 {n} 件 (接続が戻ると送信します)",
                          "{n} readings queued (sent when the connection returns)"),
    "link_unreachable": ("サーバーに届きません。ネットワークの線とルーターをご確認ください。",
                         "The server cannot be reached. Check the network cable and the router."),
    "link_account_refused": ("サーバーがこのメーターの登録情報を受け付けません。販売店にご連絡ください。",
                             "The server does not accept this meter's login. Please contact your installer."),
    "link_server_cert_refused": ("接続先のサーバーを確認できません（証明書が違います）。販売店にご連絡ください。",
                                 "The server could not be verified (wrong certificate). Please contact your installer."),
    "link_cert_expired": ("このメーターの証明書の期限が切れています。販売店にご連絡ください。",
                          "This meter's certificate has expired. Please contact your installer."),
    "link_cert_refused": ("サーバーがこのメーターの証明書を受け付けません。販売店にご連絡ください。",
                          "The server does not accept this meter's certificate. Please contact your installer."),
    "link_closed": ("サーバーが接続を切りました。しばらくして自動で再接続します。",
                    "The server closed the connection. The meter will retry by itself."),
    "link_lost": ("接続が途切れました。自動で再接続します。", "The connection dropped. The meter will reconnect by itself."),
    "alert_breaker": ("開閉器: {state}", "Breaker: {state}"),
    "breaker_open": ("開放", "open"),
    "breaker_closed": ("投入", "closed"),
    "alert_company": ("会社: {c}", "Company: {c}"),
    "alert_failed": ("内容: {m}", "What failed: {m}"),
    "clear": ("確認", "Dismiss"),
    "switched": ("{name} に切り換えます", "Switching to {name}"),
    "scheduled": ("{name} へ {at} に切り換えます", "Switch to {name} at {at}"),
    "unscheduled": ("切換日時を解除しました", "Switch date-time cleared"),
    "rejected": ("受け付けられません: {r}", "Refused: {r}"),
    "link_ok": ("接続中", "Online"),
    "link_down": ("未接続", "Offline"),
    "queued": ("未送信 {n}", "Queued {n}"),
    "drawer": ("模擬操作", "Emulation"),
    "action_contract": ("新規契約", "new contract"),
    "action_abolish": ("契約廃止", "abolition"),
    "action_menu": ("料金メニュー変更", "tariff-menu change"),
    "emu_insert": ("挿入", "Insert"),
    "emu_remove": ("抜く", "Remove"),
    "emu_load": ("負荷 {w} W", "Load {w} W"),
    "emu_solar": ("太陽光 {w} W", "Solar {w} W"),
    "emu_supply_cut": ("停電", "Cut supply"),
    "emu_supply_restore": ("復電", "Restore supply"),
    "emu_broker_off": ("ブローカー停止", "Broker down"),
    "emu_broker_on": ("ブローカー再開", "Broker up"),
    "emu_breaker": ("開閉器 開/閉", "Breaker open/close"),
    "emu_spoof_on": ("{card}: 偽の確認応答", "{card}: spoof confirmations"),
    "emu_spoof_off": ("{card}: 正しい確認応答に戻す", "{card}: answer truthfully"),
}



class Texts:
    """The current language; ``t(key, **fmt)`` gives the text."""

    def __init__(self, lang: str = "ja") -> None:
        self.lang = lang

    @property
    def index(self) -> int:
        return 0 if self.lang == "ja" else 1

    def toggle(self) -> str:
        self.lang = "en" if self.lang == "ja" else "ja"
        return self.lang

    def t(self, key: str, **fmt: object) -> str:
        text = TEXTS[key][self.index]
        return text.format(**fmt) if fmt else text

    def data_types(self, types: Iterable[DataType]) -> str:
        sep = "・" if self.lang == "ja" else ", "
        return sep.join(DATA_TYPE_NAMES.get(t.value, (t.value, t.value))[self.index] for t in types)

    def when(self, dt: datetime | None) -> str:
        if dt is None:
            return TEXTS["datetime_unset"][0]
        return dt.astimezone(JST).strftime("%Y/%m/%d %H:%M")

    def switch(self, switch: SwitchTime) -> str:
        """When a pending change switches: at once, at a date-time, or on weekly days (JST)."""
        if switch.immediate:
            return self.t("switch_immediate")
        if switch.at is not None:
            return self.when(switch.at)
        return self.t("switch_weekly", days=", ".join(f"{DAYS[s.day]} {s.at}" for s in switch.weekly))

    def reason(self, problem: dict | None) -> str:
        if not problem:
            return ""
        return (problem.get("reason_ja") if self.lang == "ja" else None) or problem.get("reason", "")


def stamp(value: datetime | str | None) -> str:
    """A moment as the screens show it (JST, to the second); ``value`` as a datetime or ISO-8601."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(JST).strftime("%m/%d %H:%M:%S")
