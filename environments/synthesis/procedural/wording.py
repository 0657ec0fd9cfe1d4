"""Words for the procedural backend: articles, plurals, verb forms and what a column means.

Tool descriptions, parameter descriptions, domain descriptions and policies are all written from
the schema and the contracts; this module holds the small pieces of English they share, so that
every text speaks of a table in the same words.
"""

from __future__ import annotations

from typing import Any

from ..spec import ColumnSpec, TableSpec

DATE_EXAMPLE = "2026-03-10"
DATE_TIME_EXAMPLE = "2026-03-10T09:00:00Z"
DATE_FORMAT_WORDS = f"a date written YYYY-MM-DD, e.g. {DATE_EXAMPLE}"
DATE_TIME_FORMAT_WORDS = f"ISO 8601 with a time zone, e.g. {DATE_TIME_EXAMPLE}"

# Acronyms kept upper-case wherever a label is shown.
_ACRONYMS = {"ipo": "IPO", "kwh": "kWh", "ph": "pH", "hvac": "HVAC", "etf": "ETF", "sql": "SQL"}


def words(name: str) -> str:
    """``amount_due`` -> ``amount due`` (acronyms restored)."""
    return " ".join(_ACRONYMS.get(w, w) for w in name.replace("_", " ").split())


def label(table: TableSpec) -> str:
    return words(table.label)


def plural(table: TableSpec) -> str:
    """The table's rows in words: ``visit slots``. Table names are already plural nouns."""
    return words(table.name)


def article(noun: str) -> str:
    """``a visit``, ``an invoice``, ``a unit``, ``an IPO allocation``."""
    lowered = noun.lower()
    vowel_sound = lowered[:1] in "aeiou" and not lowered.startswith(("uni", "use", "usu", "eu", "one"))
    return f"{'an' if vowel_sound or noun.startswith('IPO') else 'a'} {noun}"


def join(items: list[str], last: str = "and") -> str:
    items = [i for i in items if i]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def status_words(status: str) -> str:
    return status.replace("_", " ")


_PARTICIPLES = {"hold": "put on hold", "call_off": "called off", "sell": "sold", "fulfil": "fulfilled",
                "cancel": "cancelled", "return": "returned to the student", "play": "played",
                "shortlist": "shortlisted", "reopen": "reopened", "abandon": "abandoned"}
_THIRD_PERSON = {"call_off": "calls off", "finish": "finishes", "dispatch": "dispatches", "publish": "publishes"}


def participle(verb: str) -> str:
    """``confirm`` -> ``confirmed``, ``close`` -> ``closed``, ``hold`` -> ``put on hold``."""
    if verb in _PARTICIPLES:
        return _PARTICIPLES[verb]
    return verb + "d" if verb.endswith("e") else verb + "ed"


def third_person(verb: str) -> str:
    if verb in _THIRD_PERSON:
        return _THIRD_PERSON[verb]
    return verb + "es" if verb.endswith(("sh", "ch", "s", "x")) else verb + "s"


def verb_words(verb: str) -> str:
    return verb.replace("_", " ")


# What a column holds, as a noun phrase about ``{x}`` (the row's label). Columns not listed here
# are described from their generator and name (see :func:`column_phrase`).
_COLUMN_PHRASES = {
    "full_name": "the full name of the {x}",
    "email": "the e-mail address of the {x}",
    "contact_email": "the contact e-mail address of the {x}",
    "phone": "the phone number of the {x}",
    "city": "the city of the {x}",
    "address": "the street address of the {x}",
    "date_of_birth": "the {x}'s date of birth",
    "birth_date": "the {x}'s date of birth",
    "starts_at": "when the {x} starts",
    "kickoff": "the kick-off time of the {x}",
    "paid_at": "when the payment was made",
    "updated_at": "when the {x} was last updated",
    "due_on": "the date the {x} is due",
    "next_due": "the date the next dose is due",
    "closes_on": "the date the {x} closes",
    "starts_on": "the date the {x} starts",
    "start_date": "the date the {x} starts",
    "joined_on": "the date the {x} joined",
    "worked_on": "the date the work was done",
    "route_date": "the day the {x} is driven",
    "check_in": "the check-in date of the {x}",
    "event_date": "the date of the {x}",
    "amount_due": "the amount still due on the {x}",
    "amount": "the amount of the {x}",
    "quantity": "the quantity of the {x}",
    "weight_kg": "the weight of the {x} in kg",
    "max_load_kg": "the maximum load of the {x} in kg",
    "duration_minutes": "how long the {x} lasts, in minutes",
    "runtime_minutes": "the running time of the {x}, in minutes",
    "hectares": "the area of the {x} in hectares",
    "expected_yield_t": "the expected yield of the {x} in tonnes",
    "tonnes": "the weight of the {x} in tonnes",
    "discount_pct": "the discount of the {x}, in percent",
    "estimate_hours": "the estimated effort of the {x}, in hours",
    "weekly_hours": "the hours the {x} works per week",
    "years_experience": "the {x}'s years of experience",
    "power_watts": "the power of the {x} in watts",
    "kwh": "the energy measured, in kWh",
    "word_count": "the length of the {x} in words",
    "household_size": "how many people live in the {x}'s household",
    "lots": "how many lots the {x} is for",
    "lots_available": "how many lots of the {x} are available",
    "vacancies": "how many vacancies the {x} has",
    "dock_doors": "how many loading doors the {x} has",
    "capacity_people": "how many people the {x} holds",
    "guest_limit": "how many guests the {x} may have",
    "max_points": "the highest score the {x} can get",
    "refills": "how many refills the {x} allows",
    "nights": "how many nights the {x} lasts",
    "months": "how many months the {x} runs",
    "stars": "the rating given, from 1 to 5 stars",
    "rating": "the {x}'s rating from 1 to 5",
    "label": "the short code of the {x}",
    "symbol": "the ticker symbol of the {x}",
    "firmware": "the firmware version of the {x}",
    "handle": "the {x}'s handle",
    "license_no": "the {x}'s license number",
    "room": "the room code of the {x}",
    "score": "the score of the {x}",
    "value": "the value the {x} measured",
    "is_private": "whether the {x} is private",
    "home": "whether the {x} is played at home",
    "remote": "whether the {x} can be done remotely",
    "flagged": "whether the {x} is flagged as abnormal",
    "pinned": "whether the {x} is pinned",
    "helpful": "whether the {x} was marked helpful",
    "certified_organic": "whether the {x} is certified organic",
    "goals_for": "the goals scored by the team",
    "goals_against": "the goals conceded by the team",
    "last_price": "the last traded price of the {x}",
    "limit_price": "the limit price of the {x}",
    "cash_balance": "the cash balance of the {x}",
    "desired_salary": "the {x}'s desired salary",
    "salary_max": "the top of the {x}'s salary range",
    "budget": "the budget of the {x}",
    "loyalty_points": "the {x}'s loyalty points",
    "monthly_rent": "the monthly rent of the {x}",
    "nightly_rate": "the price per night of the {x}",
    "hourly_rate": "the hourly rate of the {x}",
    "price_per_day": "the daily price of the {x}",
    "unit_price": "the price of one unit",
    "unit_cost": "the cost of one unit",
    "fee": "the fee of the {x}",
    "deposit": "the deposit of the {x}",
    "declared_value": "the declared value of the {x}",
    "destination_city": "the city the {x} goes to",
    "shipping_city": "the city the {x} is shipped to",
    "location": "the city of the {x}",
    "status": "the status of the {x}",
    "opponent": "the opposing team of the {x}",
    "reason": "the reason for the {x}",
    "dietary": "the {x}'s dietary needs",
    "rsvp": "the {x}'s answer to the invitation",
    "breed": "the breed of the {x}",
    "bedrooms": "how many bedrooms the {x} has",
    "floors": "how many floors the {x} has",
    "credits": "how many credits the {x} is worth",
    "year_built": "the year the {x} was built",
    "founded": "the year the {x} was founded",
    "applied_at": "when the application was sent",
    "machine": "the kind of machine the {x} is for",
    "method": "how the {x} was paid",
    "season": "the season the {x} belongs to",
    "venue": "where the {x} takes place",
    "test_name": "the name of the test of the {x}",
    "available": "how many seats of the {x} are available",
    "on_hand": "how many units of the {x} are on hand",
    "reported_at": "when the {x} was filed",
    "side": "whether the {x} buys or sells",
    "owner_name": "the name of the {x}'s owner",
    "memo": "a note on the {x}, in free text",
}


def column_phrase(col: ColumnSpec, row_label: str) -> str:
    """A noun phrase for what ``col`` holds in a row labelled ``row_label``."""
    x = row_label
    if col.name in _COLUMN_PHRASES:
        return _COLUMN_PHRASES[col.name].format(x=x)
    kind = col.generator.split("(")[0]
    if kind == "capacity":
        return f"how many {capacity_unit(col)} are left on the {x}"
    if kind == "stock":
        return f"how many units of the {x} are in stock"
    if kind == "created" or (col.type == "datetime" and col.name.endswith("_at")):
        return f"when the {x} was {words(col.name[:-3])}"
    if col.type == "date" and col.name.endswith("_on"):
        return f"the date the {x} was {words(col.name[:-3])}"
    if col.type == "boolean":
        return f"whether the {x} is {words(col.name)}"
    if kind == "title" or col.name == "name":
        return f"the name of the {x}"
    if kind == "company":
        return f"the company name of the {x}"
    if kind == "text":
        return f"the {words(col.name)} of the {x}, in free text"
    return f"the {words(col.name)} of the {x}"


def capacity_unit(col: ColumnSpec) -> str:
    """What a capacity column counts: ``rooms_left`` -> ``rooms``; ``places`` by default."""
    return words(col.name[: -len("_left")]) if col.name.endswith("_left") else "places"


def value_words(col: ColumnSpec) -> str:
    """A short hint on the accepted values of a column (enum values, date formats)."""
    if col.type == "enum" and col.values:
        return "one of " + join(list(col.values), "or")
    if col.type == "date":
        return DATE_FORMAT_WORDS
    if col.type == "datetime":
        return DATE_TIME_FORMAT_WORDS
    return ""


_SHORT = {"email": "e-mail address", "contact_email": "contact e-mail address", "phone": "phone number",
          "full_name": "full name", "starts_at": "start time", "date_of_birth": "date of birth",
          "birth_date": "date of birth", "amount_due": "amount due", "kwh": "energy used (kWh)", "due_on": "due date",
          "next_due": "next due date", "closes_on": "closing date", "starts_on": "start date", "start_date": "start date",
          "worked_on": "work date", "check_in": "check-in date", "kickoff": "kick-off time", "months": "number of months",
          "nights": "number of nights", "refills": "number of refills", "lots": "number of lots",
          "bedrooms": "number of bedrooms", "floors": "number of floors", "dock_doors": "number of loading doors",
          "vacancies": "number of vacancies", "paid_at": "payment time", "quantity": "quantity",
          "stars": "star rating", "label": "unit code", "hectares": "area (hectares)", "weight_kg": "weight (kg)",
          "tonnes": "weight (tonnes)", "max_load_kg": "maximum load (kg)", "power_watts": "power (watts)",
          "duration_minutes": "duration (minutes)", "runtime_minutes": "running time (minutes)",
          "discount_pct": "discount (%)", "expected_yield_t": "expected yield (tonnes)", "is_private": "privacy flag",
          "years_experience": "years of experience", "word_count": "word count", "lots_available": "lots available",
          "on_hand": "units on hand", "available": "seats available", "stock": "units in stock",
          "license_no": "license number", "goals_for": "goals scored", "goals_against": "goals conceded",
          "test_name": "test name", "year_built": "year built",
          "stock_units": "units in stock", "created_at": "creation time"}


def short_phrase(col: ColumnSpec) -> str:
    """The column in two or three words (for lists of attributes): ``e-mail address``, ``date issued``."""
    if col.name in _SHORT:
        return _SHORT[col.name]
    kind = col.generator.split("(")[0]
    if kind == "capacity":
        return f"{capacity_unit(col)} left"
    if col.type == "date" and col.name.endswith("_on"):
        return f"date {words(col.name[:-3])}"
    if col.type == "datetime" and col.name.endswith("_at"):
        return f"time {words(col.name[:-3])}"
    return words(col.name)


def humanize_tool(name: str) -> str:
    return name.replace("_", " ")


def describe_values(values: list[Any]) -> str:
    return join([str(v) for v in values], "or")
