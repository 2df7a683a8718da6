"""The pages' words, Japanese first, English selectable (``?lang=en``, kept in a cookie)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from appliance.clock import JST

from ..outage.model import Language
from ..outage.texts import REASON, label, when

TEXTS: dict[str, tuple[str, str]] = {
    # key: (Japanese, English)
    "site": ("停電情報", "Power outage information"),
    "other_lang": ("English", "日本語"),
    "lookup_title": ("現在の停電状況", "Power outages now"),
    "lookup_lead": ("都道府県を選ぶと、市区町村・地域ごとの停電戸数が見られます。",
                    "Choose a prefecture to see the homes without power by city and district."),
    "none_now": ("現在、停電は発生していません。", "There is no power outage now."),
    "none_in": ("{place}では、現在、停電は発生していません。", "There is no power outage in {place} now."),
    "col_prefecture": ("都道府県", "Prefecture"),
    "col_place": ("市区町村・地域", "City and district"),
    "back_to": ("{place}の停電状況へ", "Back to {place}"),
    "city_hint": ("市区町村を選ぶと、地域ごとの停電戸数が見られます。", "Choose a city to see its districts."),
    "col_outages": ("停電地域数", "Areas"),
    "col_homes": ("停電戸数", "Homes without power"),
    "col_since": ("停電日時", "Since"),
    "col_expected": ("復旧予定", "Expected back"),
    "col_reason": ("停電理由", "Cause"),
    "homes": ("{n:,}戸", "{n:,}"),
    "counting": ("確認中", "Being counted"),
    "areas": ("{n:,}地域", "{n:,}"),
    "updated": ("{at} 現在", "As of {at}"),
    "live": ("この表は自動で更新されます。", "This table updates by itself."),
    "back": ("都道府県の一覧へ", "All prefectures"),
    "in_place": ("{place}の停電状況", "Power outages in {place}"),
    "count_note": ("停電戸数は、その時点の戸数です。短時間で復旧した戸数は含まれません。",
                   "The number of homes is the number at this moment; homes whose power came back are not counted."),
    "ops_site": ("停電管理（運用者）", "Outage operations"),
    "login_title": ("運用者のサインイン", "Operator sign-in"),
    "user": ("ユーザー名", "User name"),
    "password": ("パスワード", "Password"),
    "sign_in": ("サインイン", "Sign in"),
    "sign_out": ("サインアウト", "Sign out"),
    "signed_in_as": ("{name}（{role}）", "{name} ({role})"),
    "role_operator": ("運用者", "operator"),
    "role_viewer": ("閲覧のみ", "viewer"),
    "login_failed": ("ユーザー名またはパスワードが違います。", "The user name or password is wrong."),
    "login_limited": ("失敗が続いたため、1分間サインインできません。", "Too many failed sign-ins: wait a minute."),
    "nav_accident": ("事故停電一覧", "Outages"),
    "nav_planned": ("工事停電一覧", "Planned outages"),
    "nav_audit": ("操作履歴", "Audit log"),
    "list_accident": ("事故停電一覧", "Outages"),
    "list_planned": ("工事停電一覧", "Planned outages"),
    "filter": ("絞り込み", "Filter"),
    "since": ("停電日時（から）", "Started from"),
    "until": ("停電日時（まで）", "Started until"),
    "area_filter": ("地域（一部でも可）", "Area (any part)"),
    "status_filter": ("状態", "State"),
    "any": ("すべて", "Any"),
    "include_closed": ("復旧済みも表示", "Include restored"),
    "apply": ("表示", "Show"),
    "col_no": ("番号", "No."),
    "col_kind": ("種別", "Kind"),
    "col_area": ("停電地域", "Area"),
    "col_status": ("状態", "State"),
    "col_response": ("対応状況", "Response"),
    "col_notice": ("お知らせ", "Notice"),
    "rows_of": ("{total:,}件中 {first:,}〜{last:,}件", "{first:,}-{last:,} of {total:,}"),
    "prev": ("前へ", "Previous"),
    "next": ("次へ", "Next"),
    "none_listed": ("条件に合う停電はありません。", "No outage matches."),
    "kind_area": ("地域停電", "Area"),
    "kind_indoor": ("屋内（宅内ブレーカ）", "Indoor (home breaker)"),
    "kind_planned": ("工事停電", "Planned"),
    "kind_comm_fault": ("通信障害", "Comm. fault"),
    "status_suspected": ("確認中", "Suspected"),
    "status_declared": ("停電中", "Declared"),
    "status_restoring": ("復旧中", "Restoring"),
    "status_restored": ("復旧", "Restored"),
    "status_planned": ("予定", "Planned"),
    "status_cancelled": ("取消", "Cancelled"),
    "notice_sent": ("通知済み", "Notified"),
    "notice_none": ("—", "—"),
    "outage_title": ("停電 {id}", "Outage {id}"),
    "peak_homes": ("最大停電戸数", "Most homes at once"),
    "operator_input": ("運用者の入力", "Operator input"),
    "expected_hint": ("日本時間。空欄にすると「未定」になります。", "Japan time. Leave empty for \"not yet known\"."),
    "save": ("保存する", "Save"),
    "saved": ("保存しました。お客さまへのお知らせは必要に応じて送られます。",
              "Saved. Customers are notified where needed."),
    "viewer_note": ("閲覧のみのアカウントでは入力できません。", "A viewer account cannot change anything."),
    "choose_one": ("一覧から選んでください。", "Choose one from the list."),
    "bad_time": ("日時の形式が正しくありません。", "That is not a date and time."),
    "before_start": ("停電日時より前の復旧予定は入力できません。", "The expected restoration cannot be before the outage began."),
    "errors_above": ("入力に誤りがあります。各項目の説明をご覧ください。", "Some fields need correcting; see each field."),
    "msg_not_found": ("見つかりません。", "Not found."),
    "msg_csrf": ("ページの有効期限が切れました。もう一度お試しください。", "This page has expired. Please try again."),
    "msg_viewer": ("閲覧のみのアカウントでは変更できません。", "A viewer account cannot change anything."),
    "audit_title": ("操作履歴", "Audit log"),
    "audit_login_failed": ("サインイン失敗", "Sign-in refused"),
    "audit_outage_update": ("停電情報の入力", "Outage input"),
    "audit_remote_switch": ("お客さまによる契約の切り替え", "Customer's contract switch"),
    "col_at": ("日時", "At"),
    "col_actor": ("操作者", "By"),
    "col_action": ("操作", "Action"),
    "col_target": ("対象", "On"),
    "col_detail": ("内容", "Detail"),
    "privacy": ("このページにお客さまの個人情報は表示されません。", "This page shows no customer's personal data."),
}


@dataclass(frozen=True)
class Tx:
    lang: Language

    @property
    def code(self) -> str:
        return self.lang.value

    def has(self, key: str) -> bool:
        return key in TEXTS

    def t(self, key: str, **fmt: object) -> str:
        text = TEXTS[key][0 if self.lang is Language.JA else 1]
        return text.format(**fmt) if fmt else text

    def when(self, at: datetime | None) -> str:
        return when(at, self.lang)

    def reason(self, code: str) -> str:
        return label(REASON, code, self.lang)

    def label(self, table: dict[str, tuple[str, str]], code: str) -> str:
        return label(table, code, self.lang)

    def local_input(self, at: datetime | None) -> str:
        """A time as a ``datetime-local`` field's value, in JST."""
        return "" if at is None else at.astimezone(JST).strftime("%Y-%m-%dT%H:%M")


def language_of(query: str | None, cookie: str | None) -> Language:
    for value in (query, cookie):
        if value in ("ja", "en"):
            return Language(value)
    return Language.JA
