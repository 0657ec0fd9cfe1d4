"""Saying values the way people do, and recognizing them in what people write (Django-free).

Used by the scenario writer (dates, times and amounts in a user's words), the scripted user
(is this the action I asked for?) and the reward (was the answer said?). Recognition is lenient on
form and strict on value: "Tuesday 10 March at 9 am", "March 10th, 09:00" and "2026-03-10T09:00Z"
all name the same instant; "10 March" never matches "11 March".
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
_MONTH_ABBR = {m[:3]: i + 1 for i, m in enumerate(MONTHS)}
_MONTH_ABBR["sept"] = 9
WORD_NUMBERS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|\.\d)")
_ORDINAL = re.compile(r"\b(\d{1,2})(st|nd|rd|th)\b")
REFUSAL_CUES = ("can't", "cannot", "can not", "unable", "not able", "not allowed", "not permitted", "isn't possible",
                "is not possible", "not possible", "won't be able", "am not able", "i'm afraid", "unfortunately",
                "not eligible", "can only", "only able", "i must decline", "i have to decline", "not something i can",
                "can no longer", "no longer be", "nothing to pay", "nothing is owed", "sorry, but", "i'm sorry, but",
                "i am sorry, but", "won't be possible", "will not be possible", "not eligible")
# "Only resolved alerts can be reopened, and this one is still open."
_ONLY_CAN = re.compile(r"\bonly\b[^.!?]*\bcan\b", re.IGNORECASE)
CONFIRM_CUES = ("shall i", "should i", "do you want me to", "would you like me to", "can you confirm", "could you confirm",
                "please confirm", "do you confirm", "confirm that", "is that correct", "is that right", "ok to proceed",
                "okay to proceed", "may i proceed", "shall we proceed", "go ahead?", "proceed?", "(yes/no)", "yes or no",
                "want me to go ahead", "like me to go ahead", "like me to proceed", "want me to proceed",
                "confirm?", "is that okay", "is that ok", "does that sound right", "does that sound good",
                "does that work", "sound good?", "is this correct", "is this right", "would you like to continue",
                "would you like to proceed", "do you want to proceed", "are you sure you want", "just to confirm",
                "you'd like me to", "you would like me to", "you want me to", "can i go ahead", "shall i go ahead",
                "ok?", "okay?", "correct?", "right?", "please confirm", "to confirm,")


def parse_instant(value: Any) -> dt.datetime | None:
    """An ISO 8601 date-time with a zone, as a UTC datetime (None when it is not one)."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(dt.timezone.utc)


def parse_date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Saying


def say_date(value: str | dt.date, today: dt.date | None = None, weekday: bool = True) -> str:
    day = value if isinstance(value, dt.date) else parse_date(value)
    if day is None:
        return str(value)
    text = f"{day.day} {MONTHS[day.month - 1].capitalize()}"
    if weekday:
        text = f"{day.strftime('%A')} {text}"
    if today is None or day.year != today.year:
        text += f" {day.year}"
    return text


def say_time(value: str | dt.datetime) -> str:
    moment = value if isinstance(value, dt.datetime) else parse_instant(value)
    return moment.strftime("%H:%M") if moment else str(value)


def say_instant(value: str, today: dt.date | None = None) -> str:
    moment = parse_instant(value)
    if moment is None:
        return str(value)
    return f"{say_date(moment.date(), today)} at {say_time(moment)}"


def say_money(value: float) -> str:
    return f"{value:,.2f}"


def say_quantity(n: int, noun: str) -> str:
    words = {v: k for k, v in WORD_NUMBERS.items()}
    word = words.get(n, str(n))
    return f"{word} {noun}{'' if n == 1 else 's'}"


def humanize(value: Any) -> str:
    """An enum or status spelling as words: 'in_progress' -> 'in progress'."""
    return str(value).replace("_", " ")


# ---------------------------------------------------------------------------------------------
# Recognizing


@functools.lru_cache(maxsize=512)  # the simulated user and the reward test one text against many phrases
def normalize(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = _ORDINAL.sub(r"\1", text)
    return re.sub(r"\s+", " ", text)


@functools.lru_cache(maxsize=4096)
def _phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    words = [re.escape(w) for w in normalize(phrase).replace("_", " ").split()]
    if not words:
        return None
    return re.compile(r"(?<![\w])" + r"[\s_-]+".join(words) + r"(?![\w])")


def contains_word(text: str, phrase: str) -> bool:
    """``phrase`` (one or more words) appears in ``text`` as whole words, case-insensitively."""
    pattern = _phrase_pattern(phrase)
    return pattern is not None and pattern.search(normalize(text)) is not None


def contains_any(text: str, phrases: tuple[str, ...] | list[str]) -> bool:
    low = normalize(text)
    return any(p in low if not p[0].isalnum() or " " in p or "'" in p else contains_word(low, p) for p in phrases)


@functools.lru_cache(maxsize=512)
def numbers_in(text: str) -> tuple[float, ...]:
    """Every number written in ``text`` (thousands separators allowed; small numbers in words too).
    Kept per text: a reply is searched for each number the agent saw (the recital check)."""
    found = [float(m.group().replace(",", "")) for m in _NUMBER.finditer(text.replace("$", " ").replace("€", " "))]
    for word, value in WORD_NUMBERS.items():
        if contains_word(text, word):
            found.append(float(value))
    return tuple(found)


def mentions_number(text: str, value: float, tolerance: float = 0.005) -> bool:
    return any(abs(n - value) <= tolerance for n in numbers_in(text))


def mentions_date(text: str, value: str | dt.date) -> bool:
    day = value if isinstance(value, dt.date) else parse_date(value)
    if day is None:
        return False
    low = normalize(text)
    if day.isoformat() in low:
        return True
    month = MONTHS[day.month - 1]
    names = [month, month[:3]] + (["sept"] if day.month == 9 else [])
    for name in names:
        if re.search(rf"(?<!\d){day.day} (?:of )?{name}\b", low) or re.search(rf"\b{name}\.? {day.day}(?![\d:.]\d)(?!\d)", low):
            return True
    return False


def _hour_forms(moment: dt.datetime) -> list[str]:
    h, m = moment.hour, moment.minute
    twelve = h % 12 or 12
    suffix = "am" if h < 12 else "pm"
    forms = [f"{h:02d}:{m:02d}", f"{h}:{m:02d}", f"{h:02d}.{m:02d}", f"{h}.{m:02d}", f"{twelve}:{m:02d} ?{suffix}",
             f"{twelve}\\.{m:02d} ?{suffix}"]
    if m == 0:
        forms += [f"{twelve} ?{suffix}", f"{twelve} o'clock"]
        if h == 12:
            forms.append("noon")
    return forms


def mentions_time(text: str, value: str | dt.datetime) -> bool:
    moment = value if isinstance(value, dt.datetime) else parse_instant(value)
    if moment is None:
        return False
    low = normalize(text).replace("a.m.", "am").replace("p.m.", "pm")
    return any(re.search(rf"(?<![\d:.]){form}(?![\d])", low) for form in _hour_forms(moment))


def mentions_instant(text: str, value: str) -> bool:
    moment = parse_instant(value)
    if moment is None:
        return False
    if value in text or moment.strftime("%Y-%m-%dT%H:%M") in text:
        return True
    return mentions_date(text, moment.date()) and mentions_time(text, moment)


def mentions(text: str, kind: str, value: Any) -> bool:
    """Whether ``text`` states ``value`` (of a kind: number, money, date, datetime, words)."""
    if kind in ("number", "money", "count"):
        return isinstance(value, (int, float)) and mentions_number(text, float(value),
                                                                   0.005 if kind == "money" else 1e-9)
    if kind == "date":
        return mentions_date(text, value)
    if kind == "datetime":
        return mentions_instant(text, value)
    words = humanize(value)
    return contains_word(text, words) or any(contains_word(text, other) for other in SAME_WORDS.get(words.lower(), ()))


# Other words people use for a status ("it is being worked on" says it is in progress).
SAME_WORDS = {"in progress": ("being worked on", "underway", "under way")}


def refuses(text: str) -> bool:
    return contains_any(text, REFUSAL_CUES) or _ONLY_CAN.search(text) is not None


WH_WORDS = ("what", "which", "when", "where", "who", "whom", "whose", "how")
INTERJECTIONS = ("sure", "ok", "okay", "great", "thanks", "thank you", "alright", "of course", "certainly", "right",
                 "perfect", "got it", "no problem")


def _wh_question(sentence: str) -> bool:
    """ "Sure, what e-mail should I change it to?": an open question, whatever its "should I"."""
    words = re.sub(r"^(?:(?:" + "|".join(re.escape(i) for i in INTERJECTIONS) + r")\b[\s,!.-]*)+", "",
                   sentence.strip().lower())
    return words.split(" ", 1)[0].strip(",") in WH_WORDS


# "Could you confirm your e-mail address?" asks for a fact, not for a yes to a change.
_CONFIRM_IDENTITY = re.compile(r"\b(?:confirm|verify)\s+(?:your|the|my)\s+(?:e-?mail|name|identity|address|account|"
                               r"phone|date of birth|details)", re.IGNORECASE)


# A question that opens with the action is a proposal: "Cancel your visit on 10 March at 09:00?"
IMPERATIVES = ("cancel", "book", "pay", "update", "change", "move", "reschedule", "close", "reopen", "file", "submit",
               "proceed", "go ahead", "confirm", "post", "send", "add", "set", "make", "charge", "leave", "log", "open")


def _opening_word(sentence: str) -> str:
    words = re.sub(r"^(?:(?:" + "|".join(re.escape(i) for i in INTERJECTIONS) + r")\b[\s,!.-]*)+", "",
                   sentence.strip().lower())
    return words.split(" ", 1)[0].strip(",")


def asks_confirmation(text: str) -> bool:
    """The message asks for a yes or no to something it proposes ("Shall I go ahead?", "Cancel your
    visit on 10 March?"); a sentence that opens with a question word asks for a fact instead ("What
    should I change it to?")."""
    sentences = re.findall(r".+?(?:[.!?]+(?=\s|$)|$)", text, re.DOTALL)  # not at an e-mail's dots
    return any((contains_any(s, CONFIRM_CUES) or (s.rstrip().endswith("?") and _opening_word(s) in IMPERATIVES)
                or contains_word(s, "yes/no") or contains_word(s, "yes or no"))
               and not _wh_question(s) and not _CONFIRM_IDENTITY.search(s) for s in sentences)
