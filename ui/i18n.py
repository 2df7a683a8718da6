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

WEEKDAYS = (("月", "火", "水", "木", "金", "土", "日"), ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))

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
    "energy_register": ("買電 積算 kWh", "Bought (import) total kWh"),
    "export_register": ("売電 積算 kWh", "Sold (export) total kWh"),
    "forward": ("買電", "Buying"),
    "reverse": ("売電", "Selling"),
    "state_forward": ("買電中", "Buying power"),
    "state_no_load": ("無負荷（使っていません）", "No load (nothing in use)"),
    "state_reverse": ("売電中", "Selling power"),
    "state_breaker_open": ("ブレーカー切", "Breaker off"),
    "state_supply_cut": ("停電", "Power cut"),
    "state_unmeasured": ("無計量", "Not measuring"),
    "state_unknown": ("計量値なし", "No reading yet"),
    "unmeasured_hint": ("計量できていません。続くときは販売店にご連絡ください。",
                        "The meter cannot measure. If this goes on, contact your installer."),
    "supply_cut_hint": ("電気が来ていません。復旧をお待ちください。", "There is no supply. Please wait for it to return."),
    "reading_at": ("計量時刻", "Measured at"),
    "usage_title": ("{day} の使用量", "Usage on {day}"),
    "usage_axis": ("kWh/30分", "kWh per 30 min"),
    "usage_total": ("合計 {kwh:.2f} kWh", "Total {kwh:.2f} kWh"),
    "usage_vs_prev": ("前日比 {diff:+.2f} kWh", "{diff:+.2f} kWh vs the day before"),
    "usage_vs_prev_pct": ("前日比 {diff:+.2f} kWh ({pct:+.0f}%)", "{diff:+.2f} kWh ({pct:+.0f}%) vs the day before"),
    "usage_vs_prev_so_far": ("前日同時刻比 {diff:+.2f} kWh", "{diff:+.2f} kWh vs the day before at this time"),
    "usage_prev_none": ("前日の計量値なし", "No readings the day before"),
    "usage_yen": ("電気代の目安 約{yen:,.0f}円（{menu}）", "About ¥{yen:,.0f} ({menu})"),
    "usage_yen_unknown": ("「{menu}」の単価が未登録のため金額は出せません", "No prices for “{menu}”: no yen estimate"),
    "usage_yen_no_menu": ("料金メニューが分からないため金額は出せません", "Tariff menu unknown: no yen estimate"),
    "usage_bar": ("{start}〜{end}  {kwh:.3f} kWh", "{start}–{end}  {kwh:.3f} kWh"),
    "usage_bar_yen": ("{start}〜{end}  {kwh:.3f} kWh（約{yen:.1f}円）", "{start}–{end}  {kwh:.3f} kWh (about ¥{yen:.1f})"),
    "usage_bar_none": ("{start}〜{end}  計量値なし", "{start}–{end}  no reading"),
    "usage_hint": ("棒に触れるとその30分の値を表示します", "Touch a bar for its half hour"),
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
    "group_power": ("電力会社（電気の購入先）", "Power companies (who you buy from)"),
    "group_data": ("データ利用会社（使用量データの提供先）", "Data companies (who receive your data)"),
    "panel_b_empty": ("カードを差し込むと会社が一覧に加わります", "Insert a card to add its company to the list"),
    "select": ("選択", "Select"),
    "ok": ("決定", "OK"),
    "cancel": ("取消", "Cancel"),
    "power_company": ("電力会社", "Power company"),
    "data_company": ("データ利用会社", "Data company"),
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
    "alert_security_text": (("{c}からの確認がメーターの記録と合いませんでした。{c}へのデータ送信を止めています。"
                             "心当たりがないときは{c}にご連絡ください。"),
                            ("{c}'s confirmation did not match your meter's records, so your meter has stopped "
                             "sending data to {c}. If you did not expect this, contact {c}.")),
    "alert_grid_opened": ("送配電事業者({c})が電気を止めました。", "The grid operator ({c}) switched your supply off."),
    "alert_grid_closed": ("送配電事業者({c})が電気を入れました。", "The grid operator ({c}) switched your supply on."),
    "alert_breaker_fault_text": ("ブレーカーが指令どおりに動いていません。販売店に点検を依頼してください。",
                                 "The breaker does not follow its command. Ask your installer to check it."),
    "close": ("×", "×"),
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
    "alert_breaker": ("ブレーカー: {state}", "Breaker: {state}"),
    "breaker_open": ("切", "off"),
    "breaker_closed": ("入", "on"),
    "alert_company": ("会社: {c}", "Company: {c}"),
    "alert_failed": ("内容: {m}", "What failed: {m}"),
    "clear": ("確認", "Dismiss"),
    "switching": ("{name} に切り換えます", "Switching to {name}"),
    "switched": ("{name} に切り換えました", "Switched to {name}"),
    "data_starting": ("{name} へのデータ提供を開始します", "Starting to share data with {name}"),
    "data_started": ("{name} へのデータ提供を開始しました", "Now sharing data with {name}"),
    "confirm_switch": ("{name} に切り換えますか？", "Switch to {name}?"),
    "confirm_switch_yes": ("切り換える", "Switch"),
    "confirm_data": ("{name} へのデータ提供を開始しますか？", "Start sharing data with {name}?"),
    "confirm_data_yes": ("開始する", "Start"),
    "confirm_no": ("やめる", "Cancel"),
    "scheduled": ("{name} へ {at} に切り換えます", "Switch to {name}: {at}"),
    "unscheduled": ("切換日時を解除しました", "Switch date-time cleared"),
    "refused_past": ("その日時はもう過ぎています。日時設定で、これから先の日時を選んでください。",
                     "That date-time has passed. Choose a later one with Set date-time."),
    "refused_unregistered": ("登録されていない会社のカードです。会社に新しいカードを依頼してください。",
                             "The card is not from a registered company. Ask the company for a new card."),
    "refused_certificate_period": ("カードの会社証明書が有効期間外です。会社に新しいカードを依頼してください。",
                                   "The card's company certificate is out of date. Ask the company for a new card."),
    "refused_tampered": ("カードの内容が正しくありません（書き換えられた可能性）。会社にご連絡ください。",
                         "The card's contents do not check out (it may have been altered). Contact the company."),
    "refused_expired": ("カードの有効期限が切れています。会社に新しいカードを依頼してください。",
                        "The card has expired. Ask the company for a new card."),
    "refused_not_yet_valid": ("カードの発行日時がメーターの時刻より後です。メーターの時刻を販売店にご確認ください。",
                              "The card is dated after the meter's clock. Ask your installer to check the clock."),
    "refused_wrong_meter": ("このメーター用のカードではありません。会社にご確認ください。",
                            "The card is for another meter. Please check with the company."),
    "refused_used": ("このカードは使用済みです。切り換えるには会社に新しいカードを依頼してください。",
                     "This card was already used. Ask the company for a new card to switch."),
    "refused_confirmation": ("会社からの確認が一致しません。しばらくしてもう一度お試しください。",
                             "The company's confirmation did not match. Please try again later."),
    "refused_unreadable": ("カードを読み取れませんでした。もう一度差し込んでください。",
                           "The card could not be read. Please insert it again."),
    "refused_contents": ("カードの内容では切り換えられません。会社に新しいカードを依頼してください。",
                         "The card's contents cannot be used to switch. Ask the company for a new card."),
    "refused_not_grid": ("電気の入切の指令が送配電事業者からではないため、受け付けていません。電気はそのままです。",
                         "An order to switch your supply did not come from the grid operator, so it was refused. "
                         "Your supply is unchanged."),
    "refused_other": ("受け付けられませんでした。もう一度お試しください。続くときは販売店にご連絡ください。",
                      "That was not accepted. Please try again; if it goes on, contact your installer."),
    "view_failed": ("メーターの情報を読み込めません。続くときは販売店にご連絡ください。",
                    "The meter's data cannot be read. If this goes on, contact your installer."),
    "link_ok": ("接続中", "Online"),
    "link_down": ("未接続", "Offline"),
    "backlog_line": ("送信待ち {n}件（回線の確認中）", "{n} waiting to send (checking the line)"),
    "backlog_late": ("送信待ち {n}件（送信が遅れています）", "{n} waiting to send (delayed)"),
    "drawer": ("模擬操作", "Emulation"),
    "drawer_title": ("模擬操作", "Emulation"),
    "drawer_slot": ("スロット{n}: {card}", "Slot {n}: {card}"),
    "drawer_no_card": ("なし", "empty"),
    "drawer_load": ("負荷 {w} W", "load {w} W"),
    "drawer_profile": ("負荷: 家庭の使用パターン", "load: household profile"),
    "drawer_solar": ("負荷 {w} W・太陽光 {s} W", "load {w} W, solar {s} W"),
    "drawer_breaker": ("ブレーカー {state}", "breaker {state}"),
    "drawer_supply_on": ("電源あり", "supply on"),
    "drawer_supply_off": ("停電中", "supply cut"),
    "mode_once": ("日時指定", "Date-time"),
    "mode_weekly": ("毎週", "Weekly"),
    "weekly_pick": ("曜日を選んでください", "Pick the days"),
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
    "emu_breaker": ("ブレーカー 切/入", "Breaker off/on"),
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
        return self.t("switch_weekly", days=self.weekly(switch.weekly))

    def weekly(self, slots) -> str:
        """Weekly slots (``WeeklySlot``) as a household reads them: 月・水 22:00."""
        by_time: dict[str, list[int]] = {}
        for s in slots:
            by_time.setdefault(s.at, []).append(s.day)
        sep = "・" if self.lang == "ja" else ", "
        return " / ".join(sep.join(WEEKDAYS[self.index][d] for d in sorted(days)) + f" {at}"
                          for at, days in by_time.items())

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
