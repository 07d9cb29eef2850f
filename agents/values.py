"""Values a claim states, normalised so they can be compared: numbers, places, peoples.

"5 %" and "five percent" are one value; "$3.2 million" is 3 200 000 dollars; "American",
"America" and "the United States" name one country. Used by the entailment rules (a
claim's values must be the cited text's) and by the answer check (a comparison is
recomputed from the values read on each branch).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Quantity", "country_key", "month_number", "quantities", "same_quantity"]

# Countries and regions with the adjectives and nouns English uses for their people
# (general English, not any corpus): each row "key: spellings".
_PEOPLES = """
afghanistan: afghan, afghans, afghani
albania: albanian, albanians
algeria: algerian, algerians
argentina: argentine, argentinian, argentinians, argentines
armenia: armenian, armenians
australia: australian, australians
austria: austrian, austrians
bangladesh: bangladeshi, bangladeshis
belgium: belgian, belgians
bolivia: bolivian, bolivians
bosnia: bosnian, bosnians
brazil: brazilian, brazilians
britain: british, briton, britons, uk, u.k., united kingdom, great britain
bulgaria: bulgarian, bulgarians
cambodia: cambodian, cambodians
cameroon: cameroonian, cameroonians
canada: canadian, canadians
chile: chilean, chileans
china: chinese, prc, people's republic of china
colombia: colombian, colombians
croatia: croatian, croatians, croat, croats
cuba: cuban, cubans
czechia: czech, czechs, czech republic, czechoslovakia, czechoslovak
denmark: danish, dane, danes
egypt: egyptian, egyptians
england: english, englishman, englishwoman
estonia: estonian, estonians
ethiopia: ethiopian, ethiopians
finland: finnish, finn, finns
france: french, frenchman, frenchwoman
georgia: georgian, georgians
germany: german, germans, west germany, east germany
ghana: ghanaian, ghanaians
greece: greek, greeks
hungary: hungarian, hungarians
iceland: icelandic, icelander, icelanders
india: indian, indians
indonesia: indonesian, indonesians
iran: iranian, iranians, persia, persian
iraq: iraqi, iraqis
ireland: irish, irishman, irishwoman
israel: israeli, israelis
italy: italian, italians
jamaica: jamaican, jamaicans
japan: japanese
jordan: jordanian, jordanians
kenya: kenyan, kenyans
korea: korean, koreans, south korea, north korea
latvia: latvian, latvians
lebanon: lebanese
lithuania: lithuanian, lithuanians
malaysia: malaysian, malaysians
mexico: mexican, mexicans
morocco: moroccan, moroccans
netherlands: dutch, dutchman, holland, the netherlands
new zealand: new zealander, new zealanders
nigeria: nigerian, nigerians
norway: norwegian, norwegians
pakistan: pakistani, pakistanis
peru: peruvian, peruvians
philippines: filipino, filipinos, filipina, philippine
poland: polish
portugal: portuguese
romania: romanian, romanians
russia: russian, russians, soviet, soviet union, ussr
saudi arabia: saudi, saudis, saudi arabian
scotland: scottish, scot, scots, scotsman
serbia: serbian, serbians, serb, serbs
singapore: singaporean, singaporeans
slovakia: slovak, slovaks, slovakian
slovenia: slovenian, slovene, slovenians
south africa: south african, south africans
spain: spanish, spaniard, spaniards
sri lanka: sri lankan, sri lankans
sweden: swedish, swede, swedes
switzerland: swiss
syria: syrian, syrians
taiwan: taiwanese
thailand: thai, thais
tunisia: tunisian, tunisians
turkey: turkish, turk, turks, türkiye
ukraine: ukrainian, ukrainians
united states: american, americans, america, u.s., usa, u.s.a., united states of america
uruguay: uruguayan, uruguayans
venezuela: venezuelan, venezuelans
vietnam: vietnamese, viet nam
wales: welsh, welshman
yugoslavia: yugoslav, yugoslavian, yugoslavs
"""


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold().replace("\u2019", "'"))
    return " ".join("".join(c for c in folded if not unicodedata.combining(c)).split())


def _peoples() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in _PEOPLES.strip().splitlines():
        key, _, rest = line.partition(":")
        table[key] = key
        for spelling in rest.split(","):
            table.setdefault(spelling.strip().replace(".", ""), key)
    return table


_COUNTRY = _peoples()


def country_key(name: str) -> str | None:
    """The country a place or people name stands for ("American" → "united states"), or
    ``None`` when it is not one Threadline knows."""
    key = _fold(name).replace(".", "").strip().removeprefix("the ")
    return _COUNTRY.get(key)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number a text states: its value, unit (``""`` when bare), surface text, and
    the index of the token its number stands at (not part of the value)."""

    value: float
    unit: str
    text: str
    year: bool = False
    at: int = field(default=0, compare=False)


_WORD_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80}
_WORD_NUMBERS |= {"ninety": 90, "hundred": 100, "dozen": 12}
_SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "m": 1e6,
    "mn": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
}
_CURRENCY = {
    "$": "usd",
    "us$": "usd",
    "dollar": "usd",
    "dollars": "usd",
    "usd": "usd",
    "€": "eur",
    "euro": "eur",
    "euros": "eur",
    "eur": "eur",
    "£": "gbp",
    "pound": "gbp",
    "pounds": "gbp",
    "gbp": "gbp",
    "sterling": "gbp",
    "¥": "jpy",
    "yen": "jpy",
    "jpy": "jpy",
    "yuan": "cny",
    "rmb": "cny",
    "cny": "cny",
    "rupee": "inr",
    "rupees": "inr",
    "inr": "inr",
    "franc": "chf",
    "francs": "chf",
    "chf": "chf",
}
_PERCENT = {"%", "percent", "per cent", "pct", "percentage"}
_UNIT_ALIASES = {
    "km": "kilometre",
    "kilometer": "kilometre",
    "kilometers": "kilometre",
    "kilometres": "kilometre",
    "mi": "mile",
    "miles": "mile",
    "m": "metre",
    "meter": "metre",
    "meters": "metre",
    "metres": "metre",
    "kg": "kilogram",
    "kilograms": "kilogram",
    "lb": "pound-weight",
    "lbs": "pound-weight",
    "ft": "foot",
    "feet": "foot",
    "hrs": "hour",
    "hours": "hour",
    "mins": "minute",
    "minutes": "minute",
    "yrs": "year",
    "years": "year",
}
_MONTH_NAMES = (
    "january february march april may june july august september october november december"
).split()
#: month names and abbreviations → the month's number ("mar" → 3)
_MONTHS = (
    {m: n for n, m in enumerate(_MONTH_NAMES, 1)}
    | {m[:3]: n for n, m in enumerate(_MONTH_NAMES, 1)}
    | {"sept": 9}
)


def month_number(name: str) -> int:
    """The number of a month named or abbreviated ("March", "mar" → 3; 0 if none)."""
    return _MONTHS.get(name.lower(), 0)


_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")


def _number(token: Any) -> float | None:
    text = token.text.lower().replace("\u2212", "-")
    if _NUMBER.match(text):
        return float(text.replace(",", ""))
    match = re.match(r"^([+-]?\d+(?:\.\d+)?)(k|m|mn|bn|b|tn|%)$", text)
    if match:
        return float(match.group(1))
    return float(_WORD_NUMBERS[text]) if text in _WORD_NUMBERS else None


def quantities(doc: Any) -> list[Quantity]:
    """Every number a parsed text states, with its scale and unit.

    "$3.2 million" → 3 200 000 usd; "5 %" and "five percent" → 5 %; "12 km" → 12
    kilometre; "in 2024" → the year 2024; "20 March 851" → 20 (march) and the year 851.
    """
    found: list[Quantity] = []
    tokens = list(doc)
    i = 0
    while i < len(tokens):
        value = _number(tokens[i])
        if value is None:
            i += 1
            continue
        quantity, end = _quantity(doc, tokens, i, value)
        found.append(quantity)
        i = end
    return found


def _quantity(doc: Any, tokens: list[Any], i: int, value: float) -> tuple[Quantity, int]:
    token = tokens[i]
    start, end = i, i + 1
    unit = ""
    suffix = re.match(r"^[\d.,]+(k|m|mn|bn|b|tn|%)$", token.text.lower())
    if suffix and suffix.group(1) == "%":
        unit = "%"
    elif suffix:
        value *= _SCALES[suffix.group(1)]
    while end < len(tokens) and tokens[end].text.lower() in _SCALES and not unit:
        value *= _SCALES[tokens[end].text.lower()]
        end += 1
    before = tokens[start - 1].text.lower() if start > 0 else ""
    if before in _CURRENCY and not unit:
        unit = _CURRENCY[before]
        start -= 1
    if end < len(tokens) and not unit:
        unit, end = _unit_after(tokens, end)
    if not unit and before in _MONTHS and len(token.text) <= 2 and 1 <= value <= 31:
        unit = f"day:{before}"  # "October 8, 1970": the 8th of October
    year = (
        not unit
        and value.is_integer()
        and (
            (1000 <= value <= 2199 and len(token.text) == 4)
            or before in _MONTHS
            or (start > 1 and tokens[start - 2].text.lower() in _MONTHS)
        )
    )
    quantity = Quantity(value=value, unit=unit, text=doc[start:end].text, year=year, at=token.i)
    return quantity, end


def _unit_after(tokens: list[Any], end: int) -> tuple[str, int]:
    """The unit written after a number, and where the quantity ends."""
    nxt = tokens[end]
    word = nxt.text.lower()
    pair = f"{word} {tokens[end + 1].text.lower()}" if end + 1 < len(tokens) else ""
    if pair in _PERCENT:
        return "%", end + 2
    if word in _PERCENT:
        return "%", end + 1
    if word in _CURRENCY:
        return _CURRENCY[word], end + 1
    if word in _MONTHS:
        return "day:" + word[:3], end
    if nxt.pos_ in ("NOUN", "PROPN") and not nxt.text[:1].isupper():
        return _UNIT_ALIASES.get(word, nxt.lemma_.lower()), end
    return "", end


def same_quantity(a: Quantity, b: Quantity) -> bool:
    """Whether two stated numbers are the same value in the same unit (a bare number
    matches a number with a unit: "revenue of 5" is not a change of unit)."""
    digits_a, digits_b = _digits(a.text), _digits(b.text)
    if digits_a and digits_b and max(len(digits_a), len(digits_b)) > 6:
        # Long integers (account, card and phone numbers, ids) match digit for digit: a
        # float carries 15-17 significant digits and a relative tolerance passes a changed
        # last digit.
        if digits_a != digits_b:
            return False
    elif a.value.is_integer() and b.value.is_integer():
        if a.value != b.value:
            return False
    elif abs(a.value - b.value) > 1e-9 * max(1.0, abs(a.value)):
        return False
    return not a.unit or not b.unit or a.unit == b.unit


def _digits(text: str) -> str:
    """The digits of a number written as an integer (grouped by spaces, commas, dots or
    hyphens), or "" when it has a fraction, a sign or letters."""
    if not text or not re.fullmatch(r"\d[\d ,.\-]*\d|\d", text.strip()):
        return ""
    groups = re.split(r"[ ,.\-]", text.strip())
    # "3.5" and "1,5" are fractions, not groups: every group after the first has 3+ digits
    # unless the separators are spaces or hyphens (phone, card and account numbers).
    if ("." in text or "," in text) and any(len(g) != 3 for g in groups[1:]):
        return ""
    return "".join(groups)
