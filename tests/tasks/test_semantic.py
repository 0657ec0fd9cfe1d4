"""The free-text matcher (tasks/semantic.py) measured on a hand-labelled set of gold/candidate pairs.

tests/tasks/data/semantic_pairs.jsonl holds one pair a line: ``{"id", "gold", "candidate", "label",
"kind"}``. A pair is in the dev split when sha1(id) starts with 0-7, in the test split otherwise; the
matcher was developed on dev only (docs/semantic.md tells the history and which test pairs were seen).

The matcher is rules only. A v5 experiment added an embedding "paraphrase rescue"; it was measured,
did not help, and was removed (docs/semantic.md keeps its numbers).

``python tests/tasks/test_semantic.py`` prints the report that docs/semantic.md quotes.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(ROOT))

import pytest

from tasks.semantic import analyze, explain, lexicon_conflicts, semantic_match

DATA = Path(__file__).resolve().parent / "data" / "semantic_pairs.jsonl"
KINDS = ("identical_or_trivial", "paraphrase", "negation", "changed_quantity", "changed_name",
         "contradiction", "unrelated", "elaboration_or_omission")
# The brief's target, and the measured floors on the 1,289 pairs (docs/semantic.md), rules only (v8
# rules): dev 0.907, test 0.872, all 0.890, b3 0.877, b4 0.829, b5 0.853, b6 0.924, b7 0.771 (b5 blind,
# before v6: 0.824; b6 blind, before v7: 0.900; b7 blind, before v8: 0.759).
TARGET_ACCURACY = 0.95
FLOOR = {"dev": 0.90, "test": 0.87, "all": 0.88, "b3": 0.87, "b4": 0.82, "b5": 0.85, "b6": 0.92, "b7": 0.77}


def load_pairs(path: Path = DATA) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def split_of(pair_id: str) -> str:
    return "dev" if hashlib.sha1(pair_id.encode()).hexdigest()[0] in "01234567" else "test"


def accuracy(pairs: list[dict]) -> float:
    return sum(semantic_match(p["gold"], p["candidate"]) == p["label"] for p in pairs) / len(pairs)


PAIRS = load_pairs()
SPLITS = {"dev": [p for p in PAIRS if split_of(p["id"]) == "dev"],
          "test": [p for p in PAIRS if split_of(p["id"]) == "test"], "all": PAIRS,
          # batch 3: written and frozen before v4 was developed (docs/semantic.md)
          "b3": [p for p in PAIRS if p["id"].startswith("b3-")],
          # batch 4: written and frozen before the (since removed) embedding rescue was designed
          "b4": [p for p in PAIRS if p["id"].startswith("b4-")],
          # batch 5: written blind to the matcher (by a helper that never read it), scored once, unchanged since
          "b5": [p for p in PAIRS if p["id"].startswith("b5-")],
          # batch 6: written blind the same way, in other domains; scored once (0.900), then v7
          "b6": [p for p in PAIRS if p["id"].startswith("b6-")],
          # batch 7: written blind the same way, in other domains; scored once (0.759), then v8
          "b7": [p for p in PAIRS if p["id"].startswith("b7-")]}


def ms_per_pair(pairs: list[dict], repeats: int = 5, warm: bool = False) -> float:
    """Wall time per pair (best of ``repeats``); cold: the per-text analysis cache is emptied before
    each pass; warm: every text was seen before."""
    best = float("inf")
    if warm:
        for p in pairs:
            semantic_match(p["gold"], p["candidate"])
    for _ in range(repeats):
        if not warm:
            analyze.cache_clear()
        start = time.perf_counter()
        for p in pairs:
            semantic_match(p["gold"], p["candidate"])
        best = min(best, time.perf_counter() - start)
    return best / len(pairs) * 1000


# ------------------------------------------------------------------------------------------------
# The labelled set
# ------------------------------------------------------------------------------------------------

def test_the_set_is_large_varied_and_balanced():
    assert len(PAIRS) >= 200
    assert len({p["id"] for p in PAIRS}) == len(PAIRS)
    for p in PAIRS:
        assert set(p) == {"id", "gold", "candidate", "label", "kind"}, p
        assert isinstance(p["label"], bool) and p["kind"] in KINDS, p
        assert 3 <= len(p["gold"].split()) <= 25 and 3 <= len(p["candidate"].split()) <= 25, p
    counts = Counter(p["kind"] for p in PAIRS)
    assert all(counts[k] >= 25 for k in KINDS), counts
    share_true = sum(p["label"] for p in PAIRS) / len(PAIRS)
    assert 0.4 <= share_true <= 0.6, share_true
    # the kinds' labels follow the annotation rules (docs/semantic.md)
    for p in PAIRS:
        if p["kind"] in ("identical_or_trivial", "paraphrase"):
            assert p["label"] is True, p
        elif p["kind"] != "elaboration_or_omission":
            assert p["label"] is False, p


def test_the_split_is_deterministic_and_both_halves_are_used():
    assert split_of("neg-01") == split_of("neg-01")
    assert len(SPLITS["dev"]) + len(SPLITS["test"]) == len(PAIRS)
    assert min(len(SPLITS["dev"]), len(SPLITS["test"])) >= 0.4 * len(PAIRS)


# ------------------------------------------------------------------------------------------------
# Accuracy
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("split", ["dev", "test", "all", "b3", "b4", "b5", "b6", "b7"])
def test_accuracy_stays_above_the_measured_floor(split):
    assert accuracy(SPLITS[split]) >= FLOOR[split]


@pytest.mark.xfail(strict=True, reason="held-out paraphrases with words or idioms outside the lexicon "
                                       "are rejected: test 0.872, all 0.890 (docs/semantic.md)")
@pytest.mark.parametrize("split", ["test", "all"])
def test_accuracy_reaches_the_target(split):
    assert accuracy(SPLITS[split]) >= TARGET_ACCURACY


# Found by batch 5 (docs/semantic.md): "every two weeks" / "twice a week": both sides say "two" of a week,
# one as a period, one as a count.
# Batch 7: "one bag every two weeks" / "two bags every week" (both say two; "one" is soft).
KNOWN_FALSE_ACCEPTS = {"changed_quantity": ["b5-qty-16", "b7-qty-12"]}


@pytest.mark.parametrize("kind", ["negation", "changed_quantity"])
def test_negations_and_changed_quantities_are_rejected_but_for_the_known_miss(kind):
    """Exactly the listed pairs get through: a new false accept fails this, and so does fixing a
    listed one (then take it off the list)."""
    accepted = [p["id"] for p in PAIRS if p["kind"] == kind and semantic_match(p["gold"], p["candidate"])]
    assert accepted == KNOWN_FALSE_ACCEPTS.get(kind, [])


def test_the_lexicon_never_makes_a_word_its_own_antonym():
    # a synonym group that holds both sides of an antonym pair would make every member of the group
    # contradict the others
    assert lexicon_conflicts() == []


# ------------------------------------------------------------------------------------------------
# Named examples
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gold, candidate", [
    ("priority customer", "not a priority customer"),
    ("Priority customer", "Not a priority customer."),
    ("Appointment on 2025-11-06T09:00", "Appointment on 2025-11-06T10:00"),
    ("Call back at 2025-11-06T09:00:00Z", "Call back at 2025-11-06T09:30:00Z"),
    ("Take one tablet twice daily", "Take one tablet three times daily"),
    ("Refund for the Sony headphones", "Refund for the Bose headphones"),
    ("Pain in the left knee", "Pain in the right knee"),
    ("Customer wants a refund", "Customer wants a refund and a replacement voucher for the next order"),
    ("The package arrived", "The package never arrived"),
    ("The staff were friendly", "The staff were unfriendly"),
    ("Buyer sent payment to the seller", "Seller sent payment to the buyer"),
    # particle verbs (v4)
    ("Please turn on the lights", "Please turn off the lights"),
    ("Turn the heating on", "Turn the heating off"),
    ("I can't log in", "I can't log out"),
    ("Customer wants to opt in", "Customer wants to opt out"),
    ("Pick up the package at the depot", "Drop off the package at the depot"),
    # co-hyponyms and units (v4)
    ("Take 5 mg daily", "Take 5 ml daily"),
    ("Delivery takes two days", "Delivery takes two weeks"),
    ("The fridge is warm", "The freezer is warm"),
    # a subject/object swap two words apart (v4)
    ("The landlord owes the tenant the deposit", "The tenant owes the landlord the deposit"),
    # polysemous words kept out of the groups
    ("I can't access my account", "Please close my account"),
    ("The phone case is cracked", "The phone is cracked"),
    ("The guest is not unhappy", "The guest is unhappy"),
    ("The courier failed to deliver the parcel", "The courier delivered the parcel"),
    # a further item or detail joined on one side only (v6)
    ("Replace the kitchen tap", "Replace the kitchen tap and the shower head"),
    ("Leak and mould under the sink", "Leak under the sink"),
    ("Dog is limping", "Dog is limping or dragging a paw"),
    # a direction reversed: the same place as where it comes from on one side, where it goes on the other (v7)
    ("Transfer the funds from savings to checking", "Transfer the funds from checking to savings"),
    ("The parcel was sent from the depot to the shop", "The parcel was sent to the depot from the shop"),
    ("Guest moved out of room 12", "Guest moved into room 12"),
    # the same words, but what something went to is another of them (v7)
    ("Coach was polite to the parents", "The parents were polite to the coach"),
    ("Moved the boxes into the garage instead of the shed", "Moved the boxes into the shed instead of the garage"),
    # a duration written in words is still a number (v8)
    ("Arrive half an hour early", "Arrive an hour early"),
    ("Arrive half an hour early", "Arrive 20 minutes early"),
    ("The member was double-billed", "The member was charged three times"),
])
def test_these_do_not_match(gold, candidate):
    assert semantic_match(gold, candidate) is False
    assert explain(gold, candidate)["reasons"]


@pytest.mark.parametrize("gold, candidate", [
    ("The heater is broken", "The heater is not working"),
    ("Customer is unhappy with the repair", "Customer is not satisfied with the repair"),
    ("The package never arrived.", "Package was not delivered."),
    ("Your refund has been processed.", "We have processed your refund."),
    ("Call back at 2025-11-06T09:00:00Z", "Call back at 2025-11-06T09:00:00+00:00"),
    ("Paid 2 dollars", "paid 2.0 dollars"),
    ("Take 1 tablet each morning", "Take one pill every morning"),
    ("Please cancel my order, thank you.", "Cancel my order"),
    ("The hotel was not clean", "The hotel was dirty"),
    # the v4 lexicon and rules
    ("The printer won't turn on", "The printer will not power on"),
    ("Please switch off the alarm", "Please turn the alarm off"),
    ("I can't sign in to the portal", "Unable to log into the portal"),
    ("The washing machine is leaking", "The washer is leaking"),
    ("Customer was overcharged", "Customer was charged too much"),
    ("The lift is out of service", "The elevator is broken"),
    ("Fever, cough and sore throat", "Sore throat, cough and fever"),
    ("Room has no hot water", "Hot water is missing in the room"),
    ("The courier failed to deliver the parcel", "The courier did not deliver the parcel"),
    ("Don't forget to take the pill", "Remember to take the pill"),
    ("Stay was quiet and relaxing", "Relaxing, quiet stay"),
    # the same items joined in another order, or politeness after "and" (v6)
    ("Fever and cough", "Cough and fever"),
    ("Please reset my password", "Please reset my password and thanks"),
    # the same directions in another order (v7)
    ("Transfer the funds from savings to checking", "Transfer the funds to checking from savings"),
    ("Send the invoice to the client from the office", "From the office, send the invoice to the client"),
    ("Customer wants to speak to a manager", "Customer asked to talk to a manager"),  # an infinitive is no goal
    # British -ence nouns, durations and double billing written out (v8)
    ("Renew my driving licence", "Renew my driving license"),
    ("Arrive 30 minutes early", "Arrive half an hour early"),
    ("Call back in a quarter of an hour", "Call back in 15 minutes"),
    ("The member was double-billed for October", "The member was charged twice for October"),
])
def test_these_match(gold, candidate):
    assert semantic_match(gold, candidate) is True
    assert explain(gold, candidate)["reasons"] == []


def test_none_and_empty():
    assert semantic_match(None, None) is True
    assert semantic_match(None, "x") is False and semantic_match("x", None) is False
    assert semantic_match("", "") is True
    assert semantic_match("", "Refund issued") is False


def test_explain_names_its_reasons():
    why = explain("Flagged as a priority customer", "Flagged as not a priority customer")
    assert why["match"] is False and any("negation" in r for r in why["reasons"])
    assert any("numbers" in r for r in explain("Room 214", "Room 241")["reasons"])
    assert any("names" in r for r in explain("Ship to Austin, Texas", "Ship to Houston, Texas")["reasons"])


# ------------------------------------------------------------------------------------------------
# The report (docs/semantic.md)
# ------------------------------------------------------------------------------------------------

def _baseline(gold: str, candidate: str) -> bool:
    """The matcher this replaces: rapidfuzz token_set_ratio >= 0.8 on lowercased, depunctuated text."""
    import re

    from rapidfuzz import fuzz

    def norm(t: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", t.lower()).split())

    a, b = norm(gold), norm(candidate)
    return a == b or fuzz.token_set_ratio(a, b) / 100 >= 0.8


def _table() -> list[str]:
    cols = ("dev", "test", "all", "b3", "b4", "b5", "b6", "b7")
    lines = [f"{'kind':26} " + " ".join(f"{c:>13}" for c in cols) + f" {'baseline all':>13}"]
    decided = {p["id"]: semantic_match(p["gold"], p["candidate"]) for p in PAIRS}
    for kind in (*KINDS, None):
        cells = []
        for split in cols:
            sub = [p for p in SPLITS[split] if kind is None or p["kind"] == kind]
            ok = sum(decided[p["id"]] == p["label"] for p in sub)
            cells.append(f"{ok:>4}/{len(sub):<4}{ok / len(sub):5.3f}" if sub else f"{'-':>13}")
        sub = [p for p in PAIRS if kind is None or p["kind"] == kind]
        base = sum(_baseline(p["gold"], p["candidate"]) == p["label"] for p in sub)
        cells.append(f"{base:>4}/{len(sub):<4}{base / len(sub):5.3f}")
        lines.append(f"{kind or 'ALL KINDS':26} " + " ".join(f"{c:>13}" for c in cells))
    fp = sum(1 for p in PAIRS if not p["label"] and decided[p["id"]])
    fn = sum(1 for p in PAIRS if p["label"] and not decided[p["id"]])
    lines += [(f"false accepts: {fp} of {sum(not p['label'] for p in PAIRS)} false pairs; "
               f"false rejects: {fn} of {sum(p['label'] for p in PAIRS)} true pairs"), ""]
    return lines


def report() -> str:
    lines = [(f"pairs: {len(PAIRS)} (true {sum(p['label'] for p in PAIRS)}, "
              f"false {sum(not p['label'] for p in PAIRS)}); dev {len(SPLITS['dev'])}, test {len(SPLITS['test'])}"),
             ""]
    lines += _table()
    lines.append(f"time: {ms_per_pair(PAIRS):.3f} ms per pair cold, "
                 f"{ms_per_pair(PAIRS, warm=True):.3f} ms warm (wall, best of 5)")
    lines += ["", "errors (split, id, label | gold | candidate -> reasons):"]
    by_split: dict[str, list[str]] = defaultdict(list)
    for p in PAIRS:
        why = explain(p["gold"], p["candidate"])
        if why["match"] != p["label"]:
            split = split_of(p["id"])
            batch = p["id"][:2] if p["id"][:3] in ("b3-", "b4-", "b5-", "b6-", "b7-") else ""
            group = f"{batch}-{split}" if batch else split
            by_split[group].append(f"  {split:4} {p['id']:13} {p['label']!s:5} | {p['gold']} | {p['candidate']}"
                                   f" -> {'; '.join(why['reasons']) or 'no rule fired'}")
    for group in ("dev", "test", "b3-dev", "b3-test", "b4-dev", "b4-test", "b5-dev", "b5-test", "b6-dev", "b6-test",
                  "b7-dev", "b7-test"):
        lines += by_split[group]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
