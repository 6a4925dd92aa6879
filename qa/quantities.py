"""Numbers in text as values with units (pure functions): digits with English or French separators, number words,
ordinals, fractions, months, decades and centuries; and whether two of them say the same thing."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from .text import Lang, fold

_UNITS = {  # spelled unit -> canonical unit
    "%": "%", "percent": "%", "per cent": "%", "pour cent": "%", "pourcent": "%", "pct": "%",
    "$": "USD", "us$": "USD", "dollar": "USD", "dollars": "USD", "usd": "USD",
    "€": "EUR", "euro": "EUR", "euros": "EUR", "eur": "EUR",
    "£": "GBP", "pound": "GBP", "pounds": "GBP", "sterling": "GBP", "gbp": "GBP", "livres": "GBP", "livre": "GBP",
    "¥": "JPY", "yen": "JPY", "chf": "CHF", "francs": "FRF", "franc": "FRF",
    "km": "km", "kilometre": "km", "kilometres": "km", "kilometer": "km", "kilometers": "km", "kilomètre": "km", "kilomètres": "km",
    "m": "m", "metre": "m", "metres": "m", "meter": "m", "meters": "m", "mètre": "m", "mètres": "m",
    "cm": "cm", "centimetres": "cm", "centimeters": "cm", "centimètres": "cm",
    "mm": "mm", "millimetres": "mm", "millimeters": "mm", "millimètres": "mm",
    "µm": "um", "μm": "um", "micrometres": "um", "micrometers": "um", "micromètres": "um", "microns": "um",
    "nm": "nm", "nanometres": "nm", "nanometers": "nm", "nanomètres": "nm",
    "mi": "mile", "mile": "mile", "miles": "mile", "ft": "ft", "foot": "ft", "feet": "ft", "inch": "in", "inches": "in",
    "kg": "kg", "kilograms": "kg", "kilogrammes": "kg", "g": "g", "grams": "g", "grammes": "g",
    "t": "t", "tonnes": "t", "tons": "t", "lb": "lb", "pounds weight": "lb",
    "°c": "°C", "°f": "°F", "degrees": "deg", "degree": "deg", "degrés": "deg", "degré": "deg",
    "s": "s", "sec": "s", "second": "s", "seconds": "s", "seconde": "s", "secondes": "s",
    "minute": "min", "minutes": "min", "min": "min", "hour": "h", "hours": "h", "heure": "h", "heures": "h", "h": "h",
    "day": "day", "days": "day", "jour": "day", "jours": "day", "week": "week", "weeks": "week", "semaine": "week",
    "semaines": "week", "month": "month", "months": "month", "mois": "month", "year": "year", "years": "year",
    "an": "year", "ans": "year", "année": "year", "années": "year",
    "db": "dB", "décibel": "dB", "décibels": "dB", "decibel": "dB", "decibels": "dB",
    "gpa": "GPa", "mpa": "MPa", "kw": "kW", "mw": "MW", "gw": "GW", "w": "W", "watts": "W", "hz": "Hz", "ghz": "GHz",
    "mph": "mph", "km/h": "km/h",
}
_PREFIX_CURRENCY = {"$": "USD", "us$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_SCALE = {"thousand": 1e3, "thousands": 1e3, "mille": 1e3, "k": 1e3, "million": 1e6, "millions": 1e6, "m": 1e6,
          "mn": 1e6, "billion": 1e9, "billions": 1e9, "bn": 1e9, "milliard": 1e9, "milliards": 1e9, "trillion": 1e12,
          "hundred": 1e2, "hundreds": 1e2, "cent": 1e2, "cents": 1e2, "dozen": 12, "dozens": 12}
_CARDINAL = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7, "huit": 8, "neuf": 9, "dix": 10,
    "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16, "vingt": 20, "vingts": 20,
    "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60, "zero": 0, "zéro": 0,
}
_ORDINAL = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
    "tenth": 10, "eleventh": 11, "twelfth": 12, "twentieth": 20, "hundredth": 100, "premier": 1, "première": 1,
    "premiers": 1, "premières": 1, "deuxième": 2, "seconde": 2, "troisième": 3, "quatrième": 4, "cinquième": 5,
    "sixième": 6, "septième": 7, "huitième": 8, "neuvième": 9, "dixième": 10, "onzième": 11, "douzième": 12,
    "vingtième": 20, "centième": 100, "cinquantième": 50,
}
_FRACTION = {"half": 50.0, "halves": 50.0, "moitié": 50.0, "quarter": 25.0, "quarters": 25.0, "quart": 25.0,
             "third": 100 / 3, "thirds": 100 / 3, "tiers": 100 / 3, "fifth": 20.0, "fifths": 20.0}
_GLYPH = {"½": 0.5, "¼": 0.25, "¾": 0.75, "⅓": 1 / 3, "⅔": 2 / 3}
MONTHS = {m: i for i, ms in enumerate([
    ("january", "janvier", "jan"), ("february", "février", "fevrier", "feb"), ("march", "mars", "mar"),
    ("april", "avril", "apr"), ("may", "mai"), ("june", "juin", "jun"), ("july", "juillet", "jul"),
    ("august", "août", "aout", "aug"), ("september", "septembre", "sept", "sep"), ("october", "octobre", "oct"),
    ("november", "novembre", "nov"), ("december", "décembre", "decembre", "dec")], start=1) for m in ms}
_VAGUE = {"dozens": 12, "hundreds": 1e2, "thousands": 1e3, "millions": 1e6, "billions": 1e9, "milliards": 1e9,
          "centaines": 1e2, "milliers": 1e3, "dizaines": 10, "douzaines": 12}
_APPROX = ("about", "around", "approximately", "roughly", "nearly", "almost", "some", "circa", "c.", "estimated",
           "an estimated", "close to", "just under", "just over", "environ", "près de", "presque", "quelque",
           "quelques", "approximativement", "autour de", "vers", "à peu près", "un peu moins de", "un peu plus de",
           "une dizaine de", "une centaine de", "une vingtaine de", "une trentaine de")
_MORE = ("more than", "over", "above", "at least", "exceeding", "upwards of", "in excess of", "plus de", "au moins",
         "au-delà de", "supérieur à", "supérieure à", "dépasse", "exceeds", "exceeded")
_LESS = ("less than", "fewer than", "under", "below", "up to", "at most", "moins de", "jusqu'à", "au plus",
         "inférieur à", "inférieure à", "no more than")
Qualifier = Literal["exact", "approx", "more", "less"]


@dataclass(frozen=True)
class Quantity:
    values: frozenset[float]  # possible readings ("1,000" in French may be 1 or 1000); empty for a vague amount
    unit: str  # canonical unit ("%", "USD", "km", "month", "ord", "century", "decade"), "" if none
    qualifier: Qualifier  # "about 5,000" -> approx, "more than 60" -> more
    start: int  # offsets in the text
    end: int
    step: float = 1.0  # precision of the literal (1.3 million -> 100000), for "about" roundings
    vague: float = 0.0  # "millions of" -> 1e6
    fraction: bool = False  # a fraction word ("a quarter"), compared loosely with percentages


_DIGITS = re.compile(
    r"(?P<cur>(?:US)?[$€£¥]\s?)?"
    r"(?P<num>\d{1,3}(?:(?:,\d{3})+|(?:[ \u00a0\u202f]\d{3})+|(?:\.\d{3})+)(?:[.,]\d+)?(?!\d)|\d+(?:[.,]\d+)?)"
    r"(?P<glyph>\s?[½¼¾⅓⅔])?(?:(?P<ord>st|nd|rd|th|er|re|e|ème|eme|è|s(?=\W|$))|(?P<att>bn|mn|km|kg|cm|mm|nm|m|k|g|h|t))?(?![\w])"
    r"|(?P<lone>[½¼¾⅓⅔])"
    r"|\b(?P<roman>[IVXL]+)(?P<rord>e|er|ème)(?=\s+siècles?\b)"
)


def _digit_values(literal: str, lang: Lang) -> tuple[frozenset[float], float]:
    """Possible values of a digit literal in a language, and its precision step."""
    s = literal.replace("\u00a0", " ").replace("\u202f", " ")
    if " " in s:  # 1 000 000 (French, or a non-breaking space anywhere)
        s = s.replace(" ", "")
    groups = re.fullmatch(r"(\d{1,3})((?:[.,]\d{3})+)", s)
    if groups:
        seps = set(re.findall(r"[.,]", groups.group(2)))
        whole = float(re.sub(r"[.,]", "", s))
        if len(seps) == 1 and groups.group(2).count(next(iter(seps))) == 1:  # one group: "1,000" or "5.000"
            sep = next(iter(seps))
            decimal = float(s.replace(sep, "."))
            thousands_sep = "," if lang == "en" else "."
            if sep == thousands_sep:
                return (frozenset({whole, decimal}) if lang == "fr" else frozenset({whole})), 1.0
            return (frozenset({decimal, whole}) if lang == "fr" else frozenset({decimal})), 0.001
        return frozenset({whole}), 1.0
    m = re.fullmatch(r"(\d{1,3}(?:,\d{3})+)\.(\d+)", s) or re.fullmatch(r"(\d{1,3}(?:\.\d{3})+),(\d+)", s)
    if m:  # 1,234.5 (en) or 1.234,5 (fr)
        return frozenset({float(re.sub(r"[.,]", "", m.group(1)) + "." + m.group(2))}), 10.0 ** -len(m.group(2))
    m = re.fullmatch(r"(\d+)[.,](\d+)", s)
    if m:
        return frozenset({float(f"{m.group(1)}.{m.group(2)}")}), 10.0 ** -len(m.group(2))
    return frozenset({float(s)}), 1.0


def _before(text: str, start: int, n: int = 28) -> str:
    return " " + re.sub(r"\s+", " ", fold(text[max(0, start - n) : start])).strip() + " "


def _qualifier(text: str, start: int) -> Qualifier:
    head = _before(text, start)
    for words, q in ((_MORE, "more"), (_LESS, "less"), (_APPROX, "approx")):
        if any(head.endswith(" " + fold(w) + " ") for w in words):
            return q  # type: ignore[return-value]
    return "exact"


def _unit_after(text: str, end: int) -> tuple[str, float, int]:
    """(unit, scale, end) of what follows a number: "5 million dollars" -> ("USD", 1e6, ...)."""
    scale, unit = 1.0, ""
    rest = text[end:]
    m = re.match(r"[\s\u00a0\u202f-]*([a-zà-ÿ]+|%)", rest, re.IGNORECASE)
    if m and fold(m.group(1)) in {fold(k) for k in _SCALE} and not (m.group(1) in ("m", "k", "t") and m.start(1) > 0):
        scale = _SCALE.get(m.group(1).lower(), _SCALE.get(fold(m.group(1)), 1.0))
        end += m.end()
        rest = text[end:]
        m2 = re.match(r"\s+(?:de |d['’]|of )?", rest)
        if m2 and re.match(r"(dollars?|euros?|livres?|pounds?|francs?)\b", rest[m2.end():], re.IGNORECASE):
            end += m2.end()
            rest = text[end:]
    for size in (3, 2, 1):  # "per cent", "pour cent", "km/h", "°C"
        m = re.match(r"[\s\u00a0\u202f-]*((?:[%°]?[\w/]+|%)(?:\s+[\w/]+){" + str(size - 1) + r"})(?![\w])", rest)
        if m and m.group(1).casefold() in _UNITS:
            unit = _UNITS[m.group(1).casefold()]
            end += m.end()
            break
        if size == 1:
            m = re.match(r"[\s\u00a0\u202f]*(%)", rest)
            if m:
                unit, end = "%", end + m.end()
    if unit:
        per = re.match(r"\s+(?:per|par|a|an|/)\s+([\w/]+)|/([\w]+)", text[end:])
        if per and (per.group(1) or per.group(2)).casefold() in _UNITS:
            unit = f"{unit}/{_UNITS[(per.group(1) or per.group(2)).casefold()]}"
            end += per.end()
    return unit, scale, end


def quantities(text: str, lang: Lang) -> list[Quantity]:
    """The numbers of a text as values with units: digits (en/fr separators), number words, ordinals, months, fractions."""
    found: list[Quantity] = []
    taken = [False] * (len(text) + 1)
    for m in _DIGITS.finditer(text):
        if m.group("roman"):
            value = _roman(m.group("roman"))
            unit = "century" if re.match(r"\s*(siècle|siècles|century)\b", text[m.end():], re.IGNORECASE) else "ord"
            found.append(Quantity(frozenset({float(value)}), unit, "exact", m.start(), m.end()))
            continue
        if m.group("lone"):
            found.append(Quantity(frozenset({_GLYPH[m.group("lone")]}), "", _qualifier(text, m.start()), m.start(), m.end(), 0.5))
            continue
        values, step = _digit_values(m.group("num"), lang)
        if m.group("glyph"):
            values = frozenset(v + _GLYPH[m.group("glyph").strip()] for v in values)
        unit, scale, end = ("", 1.0, m.end())
        ordinal = m.group("ord")
        if ordinal == "s":  # the 1630s
            unit = "decade" if len(m.group("num")) == 4 else ""
            found.append(Quantity(values, unit, _qualifier(text, m.start()), m.start(), m.end()))
            continue
        if ordinal and not (ordinal in ("e", "er", "re") and lang == "en"):
            unit = "ord"
            if re.match(r"\s*(?:-|\s)?(century|centuries|siècle|siècles)\b", text[m.end():], re.IGNORECASE):
                unit = "century"
        elif ordinal:  # "5e" in English is not an ordinal
            continue
        elif m.group("att"):  # "€60m", "40km"
            att = m.group("att")
            if m.group("cur") and att in ("bn", "mn", "m", "k"):
                scale = _SCALE[att]
            else:
                unit = _UNITS.get(att, "")
        else:
            unit, scale, end = _unit_after(text, m.end())
            if re.match(r"s\b", text[m.end():m.end() + 2]) or re.search(r"\b(années|annees)\s+$", text[max(0, m.start() - 8):m.start()]):
                unit = "decade" if len(m.group("num")) == 4 else unit
        if m.group("cur"):
            unit = _PREFIX_CURRENCY[m.group("cur").strip().casefold()] if not unit or unit == "" else unit
        start = m.start()
        found.append(Quantity(frozenset(v * scale for v in values), unit, _qualifier(text, start), start, end, step * scale))
        for i in range(start, end):
            taken[i] = True
    found.extend(_word_quantities(text, lang, taken))
    return sorted(found, key=lambda q: q.start)


def _roman(numeral: str) -> int:
    values = {"I": 1, "V": 5, "X": 10, "L": 50}
    total = 0
    for a, b in zip(numeral, numeral[1:] + " "):
        total += -values[a] if b != " " and values[b] > values[a] else values[a]
    return total


def _word_quantities(text: str, lang: Lang, taken: list[bool]) -> list[Quantity]:
    out: list[Quantity] = []
    words = [(m.start(), m.end(), m.group()) for m in re.finditer(r"[A-Za-zÀ-ÿ]+", text)]
    i = 0
    while i < len(words):
        a, b, w = words[i]
        f = w.casefold()
        if taken[a]:
            i += 1
            continue
        if f in MONTHS and (w[0].isupper() or lang == "fr") and f not in ("mar", "jan", "sept", "dec", "oct", "nov", "apr", "jun", "jul", "aug", "sep", "feb") \
                and not (f == "may" and (a == 0 or not w[0].isupper())) and not (f == "mars" and lang == "en"):
            out.append(Quantity(frozenset({float(MONTHS[f])}), "month", "exact", a, b))
            i += 1
            continue
        if f in _ORDINAL and not re.search(r"\b(per|par|\d)[\s-]*$", text[max(0, a - 5):a], re.IGNORECASE):
            unit = "century" if re.match(r"[\s-]+(century|centuries)\b", text[b:], re.IGNORECASE) else "ord"
            if f in _FRACTION and re.search(r"\b(a|one|two|un|deux)\s+$", text[max(0, a - 5):a], re.IGNORECASE):
                pass  # "a third of", "two thirds": a fraction, below
            else:
                out.append(Quantity(frozenset({float(_ORDINAL[f])}), unit, "exact", a, b))
                i += 1
                continue
        if f in _FRACTION:
            count = 1.0
            prev = words[i - 1][2].casefold() if i else ""
            if prev in _CARDINAL and not taken[words[i - 1][0]]:
                count = _CARDINAL[prev]
            out.append(Quantity(frozenset({_FRACTION[f] * count}), "%", _qualifier(text, a), a, b, fraction=True))
            i += 1
            continue
        if f in _VAGUE:
            before = words[i - 1][2].casefold() if i else ""
            if before not in _CARDINAL:
                out.append(Quantity(frozenset(), "", "approx" if f.startswith("d") and lang == "fr" else "exact", a, b, vague=_VAGUE[f]))
                i += 1
                continue
        if f in _CARDINAL or (f in ("a", "an", "one", "un", "une") and i + 1 < len(words)
                              and words[i + 1][2].casefold() in ("dozen", "hundred", "thousand", "million", "billion", "douzaine", "centaine", "milliard", "mille")
                              and text[b:words[i + 1][0]].strip() == ""):
            j, total, current, end = i, 0.0, 0.0, b
            while j < len(words):
                g = words[j][2].casefold()
                gap = text[words[j - 1][1]:words[j][0]] if j > i else ""
                if j > i and gap.strip() not in ("", "-", "and", "et") and not re.fullmatch(r"\s*(-|and|et)\s*", gap):
                    break
                if g in _CARDINAL:
                    current += _CARDINAL[g]
                elif g in ("a", "an", "one", "un", "une") and j == i:
                    current = 1
                elif g in ("hundred", "cent", "cents"):
                    current = max(current, 1) * 100
                elif g in ("dozen", "douzaine"):
                    current = max(current, 1) * 12
                elif g in ("centaine",):
                    current = max(current, 1) * 100
                elif g in ("thousand", "mille", "million", "millions", "billion", "milliard", "milliards"):
                    total += max(current, 1) * _SCALE[g]
                    current = 0
                elif g == "and" or g == "et":
                    j += 1
                    continue
                else:
                    break
                end = words[j][1]
                j += 1
            value = total + current
            unit, scale, end2 = _unit_after(text, end)
            if f == "a" and value == 1:
                value = 0  # a bare "a" is no number
            if value:
                out.append(Quantity(frozenset({value * scale}), unit, _qualifier(text, a), a, end2))
            i = max(j, i + 1)
            continue
        i += 1
    return out


def _same_value(a: Quantity, b: Quantity) -> bool:
    for x in a.values:
        for y in b.values:
            if math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                return True
            if (a.fraction or b.fraction) and abs(x - y) < 0.5:
                return True
    return False


_METRIC = {"um": ("m", 1e-6), "nm": ("m", 1e-9), "mm": ("m", 1e-3), "cm": ("m", 1e-2), "m": ("m", 1.0),
           "km": ("m", 1e3), "g": ("kg", 1e-3), "kg": ("kg", 1.0), "t": ("kg", 1e3)}


def _in_base(q: Quantity) -> Quantity:
    """24 mm and 2.4 cm compare equal: metric lengths and masses in their base unit."""
    base = _METRIC.get(q.unit)
    if not base:
        return q
    return Quantity(frozenset(round(v * base[1], 12) for v in q.values), base[0], q.qualifier, q.start, q.end,
                    q.step * base[1], q.vague, q.fraction)


def _units_agree(claim: Quantity, span: Quantity) -> bool:
    if claim.unit == span.unit:
        return True
    if not claim.unit:  # "5 million" for "$5 million": less precise, not wrong
        return span.unit not in ("ord", "month", "century", "decade", "%") or claim.fraction
    return False


def matches(claim: Quantity, span: Quantity) -> bool:
    """Whether a span's quantity says what the claim's says (value, unit and qualifier)."""
    if claim.unit != span.unit and claim.unit in _METRIC and span.unit in _METRIC:
        claim, span = _in_base(claim), _in_base(span)
    if not _units_agree(claim, span):
        return False
    if claim.vague or span.vague:
        if claim.vague and span.vague:
            return claim.vague == span.vague
        if claim.vague:
            return any(2 * claim.vague <= v < 1000 * claim.vague for v in span.values)
        return False
    if span.qualifier in ("more", "less"):  # "above 96 GPa" supports "above 96 GPa", not "above 69 GPa"
        return claim.qualifier == span.qualifier and _same_value(claim, span)
    if claim.qualifier in ("exact", "approx") and span.qualifier in ("exact", "approx"):
        if _same_value(claim, span):
            return True
        if claim.qualifier == "approx" and claim.step > 1 or (claim.qualifier == "approx" and claim.step < 1):
            step = claim.step
            return any(round(y / step) * step == x or math.isclose(round(y / step) * step, x, rel_tol=1e-9)
                       for x in claim.values for y in span.values)
        return False
    if claim.qualifier == "more":
        return any(y > x or (span.qualifier == "more" and y >= x) for x in claim.values for y in span.values)
    if claim.qualifier == "less":
        return any(y < x or (span.qualifier == "less" and y <= x) for x in claim.values for y in span.values)
    return _same_value(claim, span)


def kind(q: Quantity) -> str:
    """What a number counts, for telling which other numbers it could be confused with."""
    if q.unit:
        return q.unit.split("/")[0] if q.unit not in ("ord", "month", "century", "decade") else q.unit
    if q.values and all(v.is_integer() and 1000 <= v <= 2100 for v in q.values):
        return "year"
    return "count"
