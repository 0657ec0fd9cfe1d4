"""Deterministic, offline meaning comparison of two short free texts (the ``semantic`` column policy).

Django-free, no network, no model: the matcher is rules only. A caller may pass a ``judge`` (the
configured LLM's, tasks/judge.py) that decides the pairs only the overlap rule rejects.
``semantic_match(expected, got)`` says whether an agent's text means the same as the gold text;
``explain(expected, got)`` lists every rule that objects. A pair matches when none does
(docs/semantic.md measures them on tests/tasks/data/semantic_pairs.jsonl):

1. **Numbers** (digits, number words, once/twice, ordinals, amounts, ISO dates and datetimes with
   their offsets, 12- and 24-hour times, codes such as ``12B``) must be equal as sets. The number
   one is soft: ``one`` / ``1`` / ``once`` on one side is met by ``a`` / ``an`` / ``single``.
2. **Names**: capitalized words that do not start a sentence, acronyms, ``iPhone``-style words and
   quoted titles must be present on the other side, literally (never through synonyms).
3. **Negation**: contractions are expanded (``isn't`` -> ``is not``), words of an explicit list
   become a negated base (``unhappy`` -> ``not happy``, ``careless`` -> ``not careful``), "failed to"
   and "no longer" are negators, and two negators in a row cancel ("not unhappy", "don't forget
   to"). Each negator (not, no, never, without, none, nothing, nor, instead of) negates the next
   content word of its clause and marks the whole clause; so does a privative word ("missing",
   "absent"). A word right after a negator must lie in a negated clause on the other side.
4. **Antonyms**: a word on one side whose antonym is on the other side (and not the word itself)
   rejects the pair (left/right, early/late, upgrade/downgrade, working/broken, turn on/turn off,
   log in/log out...). ``not clean`` and ``dirty`` agree. Co-hyponyms (mg/ml, day/week,
   kitchen/bathroom, fridge/freezer) left without a counterpart reject the pair too, and never agree.
5. **Roles**: the same words with two of them swapped ("buyer paid the seller" / "seller paid the
   buyer", "the landlord owes the tenant" / "the tenant owes the landlord") are rejected, unless a
   passive ``by`` explains the order, whole clauses were reordered, or a preposition shows a noun
   compound turned around ("smelled of smoke" / "a smoke smell").
6. **Overlap**: content words (stopwords dropped, reporting and politeness words down-weighted)
   are stemmed, phrasal verbs and multiword synonyms are joined ("turn the lights off" ->
   ``turnoff``, "washing machine" -> the washer group), and words are aligned (same stem, a shared
   synonym group, one stem a prefix of the other, or a near spelling). The share of the gold's
   weight found in the candidate (recall) must reach ``RECALL_MIN`` (a dropped symptom, item or
   request fails) and the share of the candidate's weight found in the gold (precision) must reach
   ``PRECISION_MIN`` (a long addition fails).

The general English lexicon (synonym groups, idioms, antonyms, phrasal verbs, irregular verbs) is in
tasks/semantic_lexicon.py; the tables below extend it and win on conflicts.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from functools import lru_cache
from itertools import pairwise
from typing import Any, Protocol

from rapidfuzz import fuzz

from tasks import semantic_lexicon as _lexicon

RECALL_MIN = 0.78
PRECISION_MIN = 0.65
LOW_WEIGHT = 0.25
FUZZY_MIN = 85.0  # rapidfuzz ratio between stems of 5+ letters: spelling variants (colour/color)

# ---------------------------------------------------------------------------------------------
# Word lists
# ---------------------------------------------------------------------------------------------

STOPWORDS = frozenset(["a", "an", "the", "is", "am", "are", "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "will", "would", "shall", "should", "can", "could", "may", "might", "must", "able", "i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "you", "your", "yours", "he", "him", "his", "she", "her", "it", "its", "they", "them", "their", "theirs", "this", "that", "these", "those", "there", "here", "of", "to", "for", "from", "in", "on", "at", "by", "with", "about", "into", "onto", "as", "than", "per", "via", "and", "or", "but", "so", "because", "since", "while", "when", "whenever", "if", "then", "also", "too", "just", "really", "very", "extremely", "quite", "rather", "pretty", "such", "still", "even", "already", "yet", "again", "ever", "own", "same", "please", "kindly", "thank", "thanks", "hi", "hello", "hey", "dear", "unfortunately", "honestly", "definitely", "overall", "actually", "basically", "simply", "currently", "what", "which", "who", "whom", "whose", "where", "why", "how", "whether", "any", "some", "all", "every", "each", "other", "another", "more", "most", "much", "many", "anything", "something", "someone", "anyone", "up"])

# Words that carry little of a record's meaning: who is speaking, that something is reported.
LOW_WEIGHT_WORDS = frozenset(["customer", "patient", "guest", "user", "client", "caller", "candidate", "person", "people", "tenant", "resident", "member", "report", "say", "state", "mention", "note", "tell", "ask", "request", "want", "like", "need", "wish", "prefer", "come", "feel", "find", "seem", "look", "issue", "problem", "regard", "concern", "inform", "advise", "write", "hope", "let", "know", "try", "keep", "make", "get", "go", "see", "before", "after"])

NEGATORS = frozenset({"not", "no", "never", "without", "none", "nothing", "nor", "neither", "nobody"})

# Clause boundaries end a negation's scope.
BOUNDARY_WORDS = frozenset({"but", "and", "because", "so", "while", "when", "although", "though",
                            "however", "or", "then", "after", "before", "since", "if", "until"})

# Content words that also close a clause.
CONTENT_BOUNDARIES = frozenset({"after", "before", "until"})

CONTRACTIONS = [
    (r"\bcan['’]t\b", "can not"), (r"\bcannot\b", "can not"), (r"\bwon['’]t\b", "will not"),
    (r"\bshan['’]t\b", "shall not"), (r"\bain['’]t\b", "is not"), (r"n['’]t\b", " not"),
    (r"\b(it|that|there|what|he|she|who|here)['’]s\b", r"\1 is"), (r"['’]re\b", " are"),
    (r"['’]ve\b", " have"), (r"['’]ll\b", " will"), (r"['’]d\b", " would"), (r"\bi['’]m\b", "i am"),
    (r"['’]s\b", ""), (r"s['’](?=\s|$)", "s"),
]

# word -> its negated base ("un-", "in-", "dis-", "-less"... only through this list)
NEGATED_WORDS = {
    "unhappy": "happy", "unsatisfied": "satisfied", "dissatisfied": "satisfied", "unfriendly": "friendly",
    "inaccurate": "accurate", "unsuitable": "suitable", "unavailable": "available", "unable": "able",
    "unused": "used", "uncomfortable": "comfortable", "unclear": "clear", "disagree": "agree",
    "disagreed": "agree", "disagrees": "agree", "careless": "careful", "unsafe": "safe", "unpaid": "paid",
    "unresolved": "resolved", "unsuccessful": "successful", "unsuccessfully": "successfully",
    "unauthorized": "permitted", "unauthorised": "permitted", "unknown": "known", "unopened": "opened",
    "unreliable": "reliable", "unresponsive": "responsive", "unwell": "well", "inactive": "active",
    "invalid": "valid", "illegible": "legible", "impossible": "possible", "dislike": "like",
    "disliked": "like", "insufficient": "sufficient", "incomplete": "complete", "inconvenient": "convenient",
    "unacceptable": "acceptable", "unprofessional": "professional", "unhelpful": "helpful",
    "useless": "useful", "unreadable": "readable", "unaware": "aware", "unlikely": "likely",
    "unnecessary": "necessary", "unsigned": "signed", "unverified": "verified", "unconfirmed": "confirmed",
    "undelivered": "delivered", "unreturned": "returned", "uninsured": "insured", "inadequate": "adequate",
    "incompatible": "compatible", "unfair": "fair", "unclean": "clean", "unpleasant": "pleasant",
    "unqualified": "qualified", "unapproved": "approved", "disapproved": "approved", "disallowed": "allowed",
    "disconnected": "connected", "unchanged": "changed", "unanswered": "answered", "unnoticed": "noticed",
    "unaffected": "affected", "unharmed": "harmed", "uninjured": "injured", "unrelated": "related",
    "abnormal": "normal", "atypical": "typical", "nonrefundable": "refundable", "irregular": "regular",
    "unfinished": "finished", "unpacked": "packed", "unsure": "sure", "uncertain": "certain",
    "unsold": "sold", "unattended": "attended", "unsupervised": "supervised", "unlabeled": "labeled",
    "unlabelled": "labeled", "untreated": "treated", "unvaccinated": "vaccinated", "unemployed": "employed",
    "inaccessible": "accessible", "inexperienced": "experienced", "ineligible": "eligible",
    "insecure": "secure", "unstable": "stable", "unwilling": "willing", "unreachable": "reachable",
}

# Synonym groups. A word or phrase may sit in several groups; two words agree when they share one.
# Phrases are matched on stems, so one form of each word is enough.
SYNONYMS = [
    # state of things
    ["broken", "not working", "not work", "stop working", "faulty", "defective", "malfunctioning",
     "out of order", "broke", "break", "inoperative", "dead"],
    ["damaged", "damage", "broken", "smashed", "shattered"],
    ["crash", "go down", "went down", "is down", "was down", "are down", "not loading", "not load",
     "fail to load", "offline", "outage", "downtime", "unresponsive"],
    ["crash", "freeze", "hang"],
    ["error", "mistake", "inaccuracy", "bug", "glitch"],
    ["leak", "leaking", "drip", "dripping"],
    ["clog", "block", "stop up", "obstruct"],
    ["cracked", "crack"],
    ["jammed", "stuck", "jam"],
    ["full", "out of space", "run out of space"],
    ["wobbly", "shaky"],
    ["noise", "sound"],
    ["noisy", "noise", "loud"],
    ["smell", "odor", "stink"],
    ["light", "lighting", "lit"],
    ["mold", "mould", "mildew"],
    ["late", "delayed", "overdue", "behind schedule"],
    ["on time", "punctual", "on schedule"],
    ["wrong", "incorrect", "mistaken"],
    ["accurate", "correct"],
    ["lose", "missing", "misplaced"],
    # actions
    ["arrive", "deliver", "delivered", "receive", "get"],
    ["ship", "dispatch", "send", "mail"],
    ["cancel", "call off"],
    ["reschedule", "move", "postpone", "push back"],
    ["repair", "fix", "mend", "sort out"],
    ["resolve", "fix", "solve", "clear", "recover"],
    ["replace", "swap out", "change out", "need a new", "need new"],
    ["change", "update", "modify", "amend", "edit"],
    ["install", "set up", "fit"],
    ["remove", "take out", "uninstall"],
    ["inspect", "examine", "check"],
    ["return", "send back"],
    ["refund", "money back", "reimbursement", "reimburse"],
    ["request", "ask for", "want", "would like", "like"],
    ["need", "require"],
    ["buy", "purchase", "order"],
    ["reply", "respond", "answer", "get back to"],
    ["contact", "reach", "get in touch"],
    ["talk", "speak", "chat"],
    ["process", "handle"],
    ["approve", "accept"],
    ["deny", "reject", "decline", "refuse"],
    ["begin", "start"],
    ["end", "finish", "terminate", "expire"],
    ["renew", "extend"],
    ["waive", "drop", "forgive"],
    ["cause", "due to", "because of", "result from", "lead to"],
    ["always", "every time", "whenever", "constantly", "all the time"],
    ["increase", "raise", "up"],
    ["decrease", "reduce", "lower"],
    ["explain", "explanation"],
    ["describe", "description"],
    ["recommend", "suggest"],
    ["love", "enjoy", "adore"],
    ["login", "log in", "sign in", "log on", "sign on"],
    ["forget", "not remember", "can not remember"],
    ["avoid", "do not take with", "not take with"],
    ["overheat", "too hot", "get too hot", "very hot"],
    ["drain", "run out", "die"],
    ["callback", "call back"],
    # qualities
    ["happy", "satisfied", "pleased", "content"],
    ["angry", "upset", "furious"],
    ["excited", "eager", "keen", "enthusiastic", "thrilled"],
    ["rude", "impolite", "discourteous"],
    ["helpful", "supportive", "accommodating"],
    ["friendly", "kind", "welcoming", "nice"],
    ["clean", "spotless", "tidy"],
    ["dirty", "filthy", "unclean"],
    ["comfortable", "comfy", "cozy"],
    ["quiet", "peaceful", "calm"],
    ["rushed", "hurried"],
    ["near", "close to", "nearby", "next to"],
    ["slow", "sluggish", "laggy"],
    ["fast", "quick", "quickly", "rapid", "rapidly", "prompt", "speedy"],
    ["big", "large", "huge"],
    ["small", "little", "tiny", "tight"],
    ["cheap", "inexpensive", "affordable"],
    ["expensive", "pricey", "costly"],
    ["unclear", "confusing", "not clear", "hard to follow"],
    ["clear", "clearly", "lucid", "understandable"],
    ["dull", "boring", "tedious"],
    ["interesting", "engaging", "fascinating", "compelling"],
    ["great", "excellent", "fantastic", "wonderful", "superb", "amazing", "outstanding", "brilliant"],
    ["good", "nice", "fine", "decent"],
    ["bad", "poor", "awful", "terrible", "horrible", "dreadful"],
    ["poor", "poorly", "badly"],
    ["dizzy", "dizziness", "lightheaded", "light headed"],
    ["swelling", "swollen", "swell"],
    # things
    ["item", "product"],
    ["package", "parcel", "shipment"],
    ["order", "purchase"],
    ["fridge", "refrigerator"],
    ["faucet", "tap"],
    ["elevator", "lift"],
    ["trash", "garbage", "rubbish"],
    ["sofa", "couch"],
    ["apartment", "flat"],
    ["tenant", "resident", "renter"],
    ["luggage", "baggage"],
    ["vacation", "holiday"],
    ["car", "vehicle"],
    ["tire", "tyre"],
    ["bike", "bicycle"],
    ["phone", "cellphone", "mobile"],
    ["website", "site", "web page", "webpage"],
    ["wifi", "wi fi", "internet"],
    ["email", "e mail"],
    ["password", "passcode"],
    ["account", "profile"],
    ["user", "customer", "client"],
    ["staff", "employee", "personnel", "team"],
    ["manager", "supervisor", "boss"],
    ["doctor", "physician"],
    ["medication", "medicine", "drug", "meds", "prescription"],
    ["tablet", "pill"],
    ["dose", "dosage"],
    ["stomach", "abdomen", "abdominal", "belly", "tummy"],
    ["pain", "ache", "hurt", "sore"],
    ["meal", "eating", "food"],
    ["vomit", "throw up"],
    ["position", "role", "job", "post", "opening", "vacancy"],
    ["salary", "pay", "wage", "compensation"],
    ["pay", "payment"],
    ["resume", "cv"],
    ["interest", "interested"],
    ["experience", "experienced"],
    ["contract", "agreement"],
    ["invoice", "bill"],
    ["charge", "bill"],
    ["fee", "charge", "price", "cost"],
    ["charge twice", "double charge", "duplicate charge", "charge double", "double charged"],
    ["coupon", "voucher", "promo code", "discount code"],
    ["discount", "reduction", "markdown"],
    ["payment method", "form of payment", "payment type", "means of payment"],
    ["shipping address", "delivery address", "mailing address"],
    ["address", "location"],
    ["appointment", "visit", "booking", "reservation"],
    ["carrier", "courier"],
    ["warehouse", "depot", "distribution center"],
    ["issue", "problem"],
    ["document", "paperwork"],
    ["movie", "film"],
    ["author", "writer"],
    ["book", "novel"],
    ["server", "host"],
    ["disk", "drive", "storage"],
    ["memory", "ram"],
    ["cpu", "processor"],
    ["deploy", "deployment", "release", "rollout"],
    ["daily", "a day", "per day", "each day", "every day", "day"],
    ["every", "each"],
    ["back", "rear"],
]

# Pairs of words that contradict each other (every synonym of one against every synonym of the other).
ANTONYMS = [
    ("early", "late"), ("on time", "late"), ("hot", "cold"), ("warm", "cold"), ("easy", "difficult"), ("easy", "hard"),
    ("upgrade", "downgrade"), ("increase", "decrease"), ("high", "low"), ("higher", "lower"),
    ("overcharge", "undercharge"), ("left", "right"), ("upstairs", "downstairs"), ("inbound", "outbound"),
    ("incoming", "outgoing"), ("front", "back"), ("add", "remove"), ("morning", "evening"),
    ("morning", "night"), ("morning", "afternoon"), ("strong", "weak"), ("strongest", "weakest"),
    ("big", "small"), ("long", "short"), ("work", "broken"), ("arrive", "missing"),
    ("success", "fail"), ("successful", "fail"), ("complete", "fail"), ("pass", "fail"),
    ("everything", "nothing"), ("approve", "deny"), ("open", "close"), ("open", "closed"),
    ("movein", "moveout"), ("checkin", "checkout"), ("full", "empty"), ("old", "new"),
    ("before", "after"), ("above", "below"), ("inside", "outside"), ("over", "under"), ("buy", "sell"),
    ("import", "export"), ("debit", "credit"), ("deposit", "withdraw"), ("win", "lose"),
    ("first", "last"), ("top", "bottom"), ("north", "south"), ("east", "west"), ("maximum", "minimum"),
    ("positive", "negative"), ("true", "false"), ("yes", "no"), ("enable", "disable"), ("start", "stop"),
    ("arrival", "departure"), ("expensive", "cheap"), ("fast", "slow"), ("quiet", "noisy"),
    ("clean", "dirty"), ("wet", "dry"), ("love", "hate"), ("good", "bad"), ("great", "bad"),
    ("best", "worst"), ("friendly", "rude"), ("polite", "rude"), ("happy", "sad"), ("allow", "forbid"),
    ("include", "exclude"), ("present", "absent"), ("lock", "unlock"), ("connect", "disconnect"),
    ("pause", "resume"), ("male", "female"), ("refund", "exchange"), ("accept", "reject"),
    ("mild", "severe"), ("heavy", "light"), ("more", "less"), ("overpaid", "underpaid"),
    ("overestimate", "underestimate"), ("entry", "exit"), ("entrance", "exit"), ("uphill", "downhill"),
    ("ascend", "descend"), ("raise", "lower"), ("loose", "tight"), ("wide", "narrow"),
    ("thick", "thin"), ("missing", "included"), ("wobbly", "stable"), ("wobbly", "steady"),
    ("clear", "unclear"), ("forget", "remember"), ("sweet", "sour"), ("light", "dark"),
]

# Phrases kept as one unit before stemming ("in stock" vs "out of stock"); "" drops filler.
PHRASES = [
    ("out of stock", "not instock"), ("in stock", "instock"), ("check in", "checkin"),
    ("checked in", "checkin"), ("checking in", "checkin"), ("check out", "checkout"),
    ("checked out", "checkout"), ("checking out", "checkout"), ("move in", "movein"),
    ("moving in", "movein"), ("moved in", "movein"), ("move out", "moveout"), ("moving out", "moveout"),
    ("moved out", "moveout"), ("instead of", "not"), ("rather than", "not"), ("as soon as possible", ""),
    ("asap", ""), ("at your convenience", ""), ("at their convenience", ""), ("as discussed", ""),
    ("thanks for sharing", ""), ("thank you", ""), ("let me know", ""), ("just checking", ""),
    ("would like", "want"), ("according to", ""), ("be advised", ""), ("per the", "per"),
    ("out of date", "outdated"), ("up to date", "current"), ("runs small", "small"),
    ("runs large", "large"), ("runs big", "large"),
]

# The general lexicon (tasks/semantic_lexicon.py) extends every table above; the entries written here
# take precedence.
SYNONYMS = SYNONYMS + _lexicon.SYNONYMS
ANTONYMS = ANTONYMS + _lexicon.ANTONYMS
INCOMPATIBLE = list(_lexicon.INCOMPATIBLE)  # co-hyponyms: they clash, and never agree through a negation
NEGATED_WORDS = {**_lexicon.NEGATED_WORDS, **NEGATED_WORDS}
STOPWORDS = STOPWORDS | frozenset(_lexicon.STOPWORDS)
LOW_WEIGHT_WORDS = LOW_WEIGHT_WORDS | frozenset(_lexicon.LOW_WEIGHT_WORDS)
# longest first, so that "thank you in advance" is dropped before "thank you"
PHRASES = sorted(PHRASES + _lexicon.PHRASES, key=lambda p: -len(p[0].split()))

# Leading labels that frame a record rather than say anything ("Note: ...").
FILLER_PREFIXES = ("note", "chat", "alert", "incident", "dosage", "tracking note", "feedback", "review")

NUMBER_WORDS: dict[str, int | str] = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
    "thousand": 1000, "dozen": 12, "twice": 2, "thrice": 3, "third": 3, "fourth": 4, "fifth": 5,
    "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
    "noon": "12:00", "midnight": "00:00",
}
SOFT_ONE = frozenset({"one", "once", "1"})
ONE_LIKE = frozenset({"one", "once", "1", "a", "an", "single", "each", "every", "per"})
# "once the disk was expanded": a conjunction, not a count
_ONCE_CONJUNCTION_NEXT = frozenset({"the", "it", "we", "they", "i", "you", "he", "she", "my", "your",
                                    "our", "their", "this", "that", "all", "everything", "a", "an"})
UNIT_SUFFIXES = frozenset({"mg", "ml", "g", "kg", "km", "mm", "cm", "m", "lb", "lbs", "oz", "gb", "mb",
                           "tb", "kb", "l", "mcg", "h", "hr", "hrs", "min", "mins", "s", "k", "st", "nd",
                           "rd", "th", "x", "pm", "am"})
TITLES = frozenset({"dr", "mr", "mrs", "ms", "prof", "st", "i"})

IRREGULAR = {
    "bit": "bite", "bitten": "bite", "got": "get", "gotten": "get", "went": "go", "gone": "go",
    "paid": "pay", "sent": "send", "found": "find", "felt": "feel", "made": "make", "took": "take",
    "taken": "take", "gave": "give", "given": "give", "came": "come", "ran": "run", "fell": "fall",
    "fallen": "fall", "said": "say", "told": "tell", "bought": "buy", "brought": "bring",
    "kept": "keep", "held": "hold", "saw": "see", "seen": "see", "ate": "eat", "eaten": "eat",
    "wrote": "write", "written": "write", "spoke": "speak", "spoken": "speak", "forgot": "forget",
    "forgotten": "forget", "drove": "drive", "driven": "drive", "froze": "freeze", "frozen": "freeze",
    "tore": "tear", "torn": "tear", "wore": "wear", "worn": "wear", "smelt": "smell", "lit": "light",
    "swollen": "swell", "stolen": "steal", "stole": "steal", "shook": "shake", "began": "begin",
    "begun": "begin", "chose": "choose", "chosen": "choose", "lost": "lose", "sold": "sell",
    "built": "build", "spent": "spend", "meant": "mean", "met": "meet", "led": "lead", "better": "good",
    "worse": "bad", "children": "child", "men": "man", "women": "woman", "feet": "foot", "teeth": "tooth",
    "mice": "mouse", "people": "person",
}
IRREGULAR = {**_lexicon.IRREGULAR, **IRREGULAR}

# British spellings to American ones, applied to every text first.
_ISE_KEEP = ("wise", "rise", "noise", "promis", "exercis", "advis", "expertis", "otherwis", "surpris",
             "franchis", "merchandis", "premis", "compromis", "enterpris", "televis", "supervis", "revis",
             "devis", "improvis", "despis", "disguis", "raise", "rais", "prais", "poise", "concis", "precis",
             "paradis", "cruis", "bruis", "demis", "excis", "compris", "aris", "chastis")
_SPELLING = [
    (re.compile(r"\b([a-z]{3,})is(e|ed|es|ing|ation|ations|er|ers)\b"),
     lambda m: m.group(0) if m.group(0).startswith(_ISE_KEEP) or m.group(1).endswith(_ISE_KEEP)
     else f"{m.group(1)}iz{m.group(2)}"),
    (re.compile(r"\b([a-z]{2,}[bcdfghlmnprstvz])our(s|ed|ing|ite|ites|able)?\b"), r"\1or\2"),
    (re.compile(r"\b([a-z]{2,}[bt])re(s)?\b"), r"\1er\2"),
    (re.compile(r"\b(licen|defen|offen|preten)ce(s|d)?\b"), r"\1se\2"),  # licence, defence: nouns in -ence
]
_SPELLING_KEEP = frozenset({"four", "hour", "tour", "your", "pour", "sour", "flour", "detour", "contour",
                            "acre", "genre", "ogre", "massacre", "mediocre", "lucre", "timbre", "sabre"})

# Phrases rewritten before numbers are read ("duplicate charge" is "charged twice").
NUMBER_PHRASES = [
    (re.compile(r"\b(duplicate|double)[ -]charg(e|es|ed)\b"), "charged twice"),
    (re.compile(r"\bcharged (double|two times)\b"), "charged twice"),
    (re.compile(r"\b(double|duplicate)[ -]bill(ed|ing)?\b"), "billed twice"),
    (re.compile(r"\bhalf an hour\b"), "30 minutes"),
    (re.compile(r"\b(a )?quarter of an hour\b"), "15 minutes"),
    (re.compile(r"\b12(:00)?\s*(noon|midnight)\b"), r"\2"),
]

# ---------------------------------------------------------------------------------------------
# Stemming (a compact Porter stemmer, irregular forms and -ly adverbs first)
# ---------------------------------------------------------------------------------------------

_V = "aeiou"


def _cons(w: str, i: int) -> bool:
    ch = w[i]
    if ch in _V:
        return False
    if ch == "y":
        return i == 0 or not _cons(w, i - 1)
    return True


def _m(stem: str) -> int:
    n, i, L = 0, 0, len(stem)
    while i < L and _cons(stem, i):
        i += 1
    while i < L:
        while i < L and not _cons(stem, i):
            i += 1
        if i >= L:
            break
        n += 1
        while i < L and _cons(stem, i):
            i += 1
    return n


def _has_vowel(stem: str) -> bool:
    return any(not _cons(stem, i) for i in range(len(stem)))


def _double_cons(w: str) -> bool:
    return len(w) >= 2 and w[-1] == w[-2] and _cons(w, len(w) - 1)


def _cvc(w: str) -> bool:
    return (len(w) >= 3 and _cons(w, len(w) - 3) and not _cons(w, len(w) - 2) and _cons(w, len(w) - 1)
            and w[-1] not in "wxy")


_STEP2 = [("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"),
          ("abli", "able"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"),
          ("ization", "ize"), ("ation", "ate"), ("ator", "ate"), ("alism", "al"), ("iveness", "ive"),
          ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")]
_STEP3 = [("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""),
          ("ness", "")]
_STEP4 = ["al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou",
          "ism", "ate", "iti", "ous", "ive", "ize"]  # "ion" only after s or t (checked below)


def _porter(w: str) -> str:
    if len(w) <= 2:
        return w
    # step 1a
    if w.endswith(("sses", "ies")):
        w = w[:-2]
    elif w.endswith("ss"):
        pass
    elif w.endswith("s"):
        w = w[:-1]
    # step 1b
    flag = False
    if w.endswith("eed"):
        if _m(w[:-3]) > 0:
            w = w[:-1]
    elif w.endswith("ed") and _has_vowel(w[:-2]):
        w, flag = w[:-2], True
    elif w.endswith("ing") and _has_vowel(w[:-3]):
        w, flag = w[:-3], True
    if flag:
        if w.endswith(("at", "bl", "iz")):
            w += "e"
        elif _double_cons(w) and w[-1] not in "lsz":
            w = w[:-1]
        elif _m(w) == 1 and _cvc(w):
            w += "e"
    # step 1c
    if w.endswith("y") and _has_vowel(w[:-1]):
        w = w[:-1] + "i"
    for suf, rep in _STEP2:
        if w.endswith(suf):
            if _m(w[: -len(suf)]) > 0:
                w = w[: -len(suf)] + rep
            break
    for suf, rep in _STEP3:
        if w.endswith(suf):
            if _m(w[: -len(suf)]) > 0:
                w = w[: -len(suf)] + rep
            break
    for suf in _STEP4:
        if w.endswith(suf):
            stem = w[: -len(suf)]
            if _m(stem) > 1 and (suf != "ion" or stem[-1:] in ("s", "t")):
                w = stem
            break
    # step 5
    if w.endswith("e"):
        stem = w[:-1]
        if _m(stem) > 1 or (_m(stem) == 1 and not _cvc(stem)):
            w = stem
    if _m(w) > 1 and _double_cons(w) and w.endswith("l"):
        w = w[:-1]
    return w


_LY_KEEP = frozenset(["daily", "only", "early", "family", "reply", "apply", "supply", "assembly", "july", "lovely", "likely", "weekly", "monthly", "yearly", "hourly", "nightly", "elderly", "belly", "jelly", "bully", "ally", "rely", "holy", "ugly", "silly", "costly", "lonely", "fly", "deadly", "timely", "orderly", "friendly", "italy", "lily", "sly"])


@lru_cache(maxsize=8192)
def stem(word: str) -> str:
    w = IRREGULAR.get(word, word)
    if w.endswith("ly") and len(w) > 5 and w not in _LY_KEEP:
        w = w[:-3] + "y" if w.endswith("ily") else w[:-2]
    return _porter(w)


# ---------------------------------------------------------------------------------------------
# Tables compiled to stems
# ---------------------------------------------------------------------------------------------

def _stems(phrase: str) -> tuple[str, ...]:
    return tuple(stem(t) for t in phrase.split())


_WORD_GROUPS: dict[str, set[int]] = {}
_PHRASE_GROUPS: dict[tuple[str, ...], list[int]] = {}  # a phrase may sit in several groups, as a word may
for _gid, _group in enumerate(SYNONYMS):
    for _member in _group:
        _key = _stems(_member)
        if len(_key) == 1:
            _WORD_GROUPS.setdefault(_key[0], set()).add(_gid)
        elif _gid not in _PHRASE_GROUPS.get(_key, ()):
            _PHRASE_GROUPS.setdefault(_key, []).append(_gid)
_PHRASE_MAXLEN = max(len(k) for k in _PHRASE_GROUPS)


def _group_token(gids: list[int]) -> str:
    """The token that stands for a matched phrase: "=broken:0" or "=close:40.311" (readable in ``explain``)."""
    return f"={SYNONYMS[gids[0]][0].replace(' ', '_')}:{'.'.join(map(str, gids))}"


@lru_cache(maxsize=16384)
def _ids(token: str) -> frozenset:
    """A token's identities: itself and the synonym groups it belongs to."""
    if token.startswith("="):  # a phrase, replaced by its groups
        return frozenset({token, *(int(g) for g in token.rsplit(":", 1)[1].split("."))})
    return frozenset({token, *_WORD_GROUPS.get(token, ())})


def _phrase_token(phrase: str) -> str:
    key = _stems(phrase)
    if len(key) > 1 and key in _PHRASE_GROUPS:
        return _group_token(_PHRASE_GROUPS[key])
    return key[0]


_ANTONYM_IDS: dict[Any, set] = {}
for _a, _b in ANTONYMS:
    _ia, _ib = _ids(_phrase_token(_a)), _ids(_phrase_token(_b))
    for _u in _ia:
        _ANTONYM_IDS.setdefault(_u, set()).update(_ib)
    for _v in _ib:
        _ANTONYM_IDS.setdefault(_v, set()).update(_ia)


_INCOMPATIBLE_IDS: dict[Any, set] = {}
for _a, _b in INCOMPATIBLE:
    _ia, _ib = _ids(_phrase_token(_a)), _ids(_phrase_token(_b))
    for _u in _ia:
        _INCOMPATIBLE_IDS.setdefault(_u, set()).update(_ib)
    for _v in _ib:
        _INCOMPATIBLE_IDS.setdefault(_v, set()).update(_ia)


@lru_cache(maxsize=16384)
def _antonym_ids(token: str) -> frozenset:
    out: set = set()
    for u in _ids(token):
        out |= _ANTONYM_IDS.get(u, set())
    return frozenset(out - _ids(token))  # a word is never its own antonym through a shared group


@lru_cache(maxsize=16384)
def _incompatible_ids(token: str) -> frozenset:
    out: set = set()
    for u in _ids(token):
        out |= _INCOMPATIBLE_IDS.get(u, set())
    return frozenset(out - _ids(token))


def lexicon_conflicts() -> list[tuple[str, str]]:
    """Table entries that are both the same and opposed (a synonym group holding both sides of an
    antonym pair). The tests assert that there are none."""
    out = []
    for a, b in [*ANTONYMS, *INCOMPATIBLE]:
        ta, tb = _phrase_token(a), _phrase_token(b)
        if _ids(ta) & _ids(tb):
            out.append((a, b))
    return out


_LOW_STEMS = frozenset(stem(w) for w in LOW_WEIGHT_WORDS)

# ---------------------------------------------------------------------------------------------
# Analysis of one text
# ---------------------------------------------------------------------------------------------

_CONTRACTIONS = [(re.compile(p), r) for p, r in CONTRACTIONS]
_ISO_DT = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:[t ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?"
                     r"(z|[+-]\d{2}:?\d{2})?)?\b", re.IGNORECASE)
_TIME_12 = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?", re.IGNORECASE)
_TIME_24 = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_MONEY = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL = re.compile(r"\b\d+\.\d+\b")
_NUM_TOKEN = re.compile(r"\b(\d+)([a-z]*)\b", re.IGNORECASE)
_QUOTED = re.compile(r"(?:(?<=\s)|^)[\"“‘']([^\"“”‘’']{2,}?)[\"”’'](?=[\s.,;:!?)]|$)")
_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9]*(?:[-'’][A-Za-z0-9]+)*")
_TOKEN = re.compile(r"[a-z0-9]+|[.,;:!?()\[\]|]")
_APOSTROPHE_TAIL = re.compile(r"['’](s|d|ll|ve|re|m|t)$", re.IGNORECASE)
_SENTENCE_START = frozenset('.!?:;"(-')
_TITLE_BEFORE = ("dr.", "mr.", "mrs.", "ms.", "prof.")


def _num(value: str) -> str:
    v = float(value)
    return str(int(v)) if v == int(v) else repr(v)


def _extract_numbers(text: str) -> tuple[list[str], str]:
    """Number strings found in a lowercase text, and the text with them blanked out."""
    found: list[str] = []

    def iso(m: re.Match) -> str:
        y, mo, d, hh, mm, ss, tz = m.groups()
        if hh is None:
            found.append(f"date:{y}-{mo}-{d}")
            return " "
        try:
            dt = datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss or 0))
        except ValueError:  # not a real instant: compare it as written
            found.append(f"dt:{m.group(0)}")
            return " "
        if tz and tz.upper() != "Z":
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            offset = sign * (int(digits[:2]) * 60 + int(digits[2:]))
            dt = datetime.fromtimestamp(dt.replace(tzinfo=UTC).timestamp() - offset * 60,
                                        tz=UTC).replace(tzinfo=None)
        found.append("dt:" + dt.strftime("%Y-%m-%dT%H:%M" + (":%S" if dt.second else "")))
        return " "

    def t12(m: re.Match) -> str:
        h, mi, ap = int(m.group(1)), int(m.group(2) or 0), m.group(3).lower()
        found.append(f"time:{h % 12 + (12 if ap == 'p' else 0):02d}:{mi:02d}")
        return " "

    def t24(m: re.Match) -> str:
        found.append(f"time:{int(m.group(1)):02d}:{m.group(2)}")
        return " "

    def amount(m: re.Match) -> str:
        found.append(_num(m.group(0).replace(",", "")))
        return " "

    def token(m: re.Match) -> str:
        digits, suffix = m.group(1), m.group(2).lower()
        if suffix and suffix not in UNIT_SUFFIXES:
            found.append(f"id:{int(digits)}{suffix}")  # 12B, 14C
            return " "
        found.append(str(int(digits)))
        return f" {suffix} " if suffix and suffix not in ("st", "nd", "rd", "th") else " "

    text = _ISO_DT.sub(iso, text)
    text = _TIME_12.sub(t12, text)
    text = _TIME_24.sub(t24, text)
    text = _MONEY.sub(amount, text)
    text = _DECIMAL.sub(amount, text)
    text = _NUM_TOKEN.sub(token, text)
    return found, text


def _flat(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _names(original: str) -> set[str]:
    """Capitalized words that do not start a sentence, acronyms and iPhone-style words, lowercased."""
    upper, lower = sum(c.isupper() for c in original), sum(c.islower() for c in original)
    upper_text = upper > 1.5 * lower  # an all-caps text has no telling capitals
    names: set[str] = set()
    for m in _WORD.finditer(original):
        word = _APOSTROPHE_TAIL.sub("", m.group(0))
        j = m.start() - 1
        while j >= 0 and original[j] == " ":
            j -= 1
        initial = j < 0 or original[j] in _SENTENCE_START
        if initial and j >= 0 and original[j] == "." and original[max(0, j - 4):j + 1].lower().endswith(
                _TITLE_BEFORE):
            initial = False
        plain = word.replace("-", "").replace("'", "").replace("’", "")
        if not plain.isalpha() or plain.islower():
            continue
        low = plain.lower()
        if low in TITLES:
            continue
        first_upper = plain[0].isupper()
        if not first_upper or (not initial and not upper_text):  # iPhone anywhere; Bose mid-sentence
            names.add(low)
    return names


class Analysis:
    """What one text says, in the pieces the rules compare."""

    __slots__ = (
        "after_prep",
        "content",
        "coordinated",
        "directions",
        "empty",
        "names",
        "negated",
        "negated_clause",
        "numbers",
        "one_like",
        "order",
        "passive",
        "quoted",
        "soft_one",
        "surface",
    )

    def __init__(self) -> None:
        self.numbers: set[str] = set()
        self.soft_one = False  # says "one" / "1" / "once"
        self.one_like = False  # says one of those or "a", "an", "single"...
        self.names: set[str] = set()
        self.quoted: set[str] = set()
        self.surface: set[str] = set()  # every lowercase word, hyphenated words also joined
        self.content: dict[str, float] = {}  # token -> weight
        self.negated: set[str] = set()  # the word right after a negator
        self.negated_clause: set[str] = set()  # every word of a clause with a negator or "missing"
        self.order: list[str] = []  # content tokens in order, "|" between clauses
        self.passive = False
        self.empty = True
        self.after_prep: set[str] = set()  # content words right after a preposition ("to the seller")
        self.coordinated: set[str] = set()  # content words of a clause opened by "and" / "or" / "plus"
        self.directions: dict[str, str] = {}  # content word -> "source" ("from the clinic") or "goal" ("to ...")


@lru_cache(maxsize=4096)
def analyze(text: str) -> Analysis:
    a = Analysis()
    original = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    a.empty = not _flat(original)
    a.quoted = {_flat(q) for q in _QUOTED.findall(original)}
    a.names = _names(original)
    low = original.lower()
    for pat, rep in _CONTRACTIONS:
        low = pat.sub(rep, low)
    low = low.replace("&", " and ").replace("#", " ").replace("'", " ")
    for pat, rep in _SPELLING:
        low = pat.sub(lambda m, rep=rep: m.group(0) if m.group(0) in _SPELLING_KEEP
                      else (rep(m) if callable(rep) else m.expand(rep)), low)
    for pat, rep in NUMBER_PHRASES:
        low = pat.sub(rep, low)
    a.surface.update(_flat(low).split())
    a.surface.update(w.replace("-", "") for w in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)+", low))
    a.passive = " by " in f" {_flat(low)} "
    numbers, low = _extract_numbers(low)
    for prefix in FILLER_PREFIXES:
        if low.startswith(prefix + ":"):
            low = low[len(prefix) + 1:]
            break
    words = _TOKEN.findall(low)
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w == "once" and nxt in _ONCE_CONJUNCTION_NEXT:
            out.append("when")
        elif w in NUMBER_WORDS:
            v = NUMBER_WORDS[w]
            if isinstance(v, int) and 20 <= v <= 90 and isinstance(NUMBER_WORDS.get(nxt), int) \
                    and NUMBER_WORDS[nxt] < 10:
                v, i = v + NUMBER_WORDS[nxt], i + 1
            numbers.append(f"time:{v}" if isinstance(v, str) else str(v))
        else:
            if w in SOFT_ONE:
                a.soft_one = True
            if w in ONE_LIKE:
                a.one_like = True
            out.append(w)
        i += 1
    a.numbers = set(numbers)
    if "1" in a.numbers:  # a written 1 is as soft as "one"
        a.numbers.discard("1")
        a.soft_one = a.one_like = True
    _content(a, out)
    return a


_PARTICLE_VERBS = _lexicon.PARTICLE_VERBS


def _particles(words: list[str]) -> list[str]:
    """Phrasal verbs with a particle become one token: "turn the lights off" -> "turnoff the lights",
    "logged out" -> "logout", so that on/off, in/out and up/off can contradict each other."""
    out: list[str] = []
    skip: set[int] = set()
    for i, w in enumerate(words):
        if i in skip:
            continue
        verb = stem(w) if w.isalpha() else ""
        table = _PARTICLE_VERBS.get(verb)
        if table and not (w == verb and i > 0 and words[i - 1] in _lexicon.NOUN_BEFORE):
            reach = 4 if verb in _lexicon.GAP_VERBS else 1
            for j in range(i + 1, min(len(words), i + 1 + reach)):
                nxt = words[j]
                if nxt in table and (j == i + 1 or nxt in _lexicon.GAP_PARTICLES):
                    out.append(table[nxt])
                    skip.add(j)
                    break
                if not nxt.isalnum() or nxt in BOUNDARY_WORDS or nxt in NEGATORS or nxt in _lexicon.GAP_STOP:
                    out.append(w)
                    break
            else:
                out.append(w)
            continue
        out.append(w)
    return out


def _apply_phrases(words: list[str]) -> list[str]:
    text = " " + " ".join(words) + " "
    for src, dst in PHRASES:
        if " " + src + " " in text:
            text = text.replace(" " + src + " ", " " + dst + " " if dst else " ")
    return text.split()


def _content(a: Analysis, words: list[str]) -> None:
    words = _apply_phrases(_particles([w for w in words if w not in SOFT_ONE]))
    expanded: list[str] = []
    for w in words:
        if w in NEGATED_WORDS:
            expanded.extend(("not", NEGATED_WORDS[w]))
        else:
            expanded.append(w)
    pairs = [(w, stem(w)) if w.isalnum() else ("|", "|") for w in expanded]  # (surface, stem)
    stems = [s for _, s in pairs]
    merged: list[tuple[str, str, float | None]] = []  # (surface, stem, weight of a phrase)
    i = 0
    while i < len(pairs):  # multiword synonyms, longest first; a phrase is content, never a stopword
        for n in range(min(_PHRASE_MAXLEN, len(pairs) - i), 1, -1):
            key = tuple(stems[i:i + n])
            if key in _PHRASE_GROUPS:
                # a phrase weighs what its content words weigh ("charging cable" 2, "ask for" 0.25)
                weight = sum(_word_weight(w, st) for w, st in pairs[i:i + n])
                merged.append(("", _group_token(_PHRASE_GROUPS[key]), max(weight, LOW_WEIGHT)))
                i += n
                break
        else:
            merged.append((*pairs[i], None))
            i += 1
    pending = False  # a negator waits for the next content word of its clause
    in_scope = False  # the clause has a negator or a privative word ("missing")
    after_prep = False
    direction: str | None = None  # "source" or "goal" when the last preposition gives a direction
    coordinated = False  # in a clause that "and", "or" or "plus" opened: a further item or detail
    clause: list[str] = []
    clause_since_negator = True
    scope_before = False

    def close_clause() -> None:
        if in_scope:
            a.negated_clause.update(clause)
        clause.clear()

    for position, (surface, s, phrase_weight) in enumerate(merged):
        boundary = s == "|" or surface in BOUNDARY_WORDS
        if boundary:
            close_clause()
            pending = in_scope = after_prep = False
            coordinated = surface in COORDINATORS
            a.order.append("|")
            if surface not in CONTENT_BOUNDARIES:
                continue
        if surface in NEGATORS or s == "not":
            if pending and not clause_since_negator:  # "not un-", "don't forget to": they cancel
                pending, in_scope = False, scope_before
                continue
            scope_before = in_scope
            pending = in_scope = True
            clause_since_negator = False
            continue
        if surface in PRIVATIVE:  # "the charger is missing" = "no charger"
            in_scope = True
        if surface in PREPOSITIONS:
            after_prep = True
            direction = DIRECTIONS.get(surface)
            if surface == "to" and (position + 1 >= len(merged) or merged[position + 1][0] not in DETERMINERS):
                direction = None  # "to" before a bare word is most often an infinitive ("unable to access")
        if surface in STOPWORDS:
            continue
        weight = phrase_weight if phrase_weight is not None else _word_weight(surface, s)
        a.content[s] = max(a.content.get(s, 0.0), weight)
        a.order.append(s)
        clause.append(s)
        if coordinated:
            a.coordinated.add(s)
        clause_since_negator = True
        if after_prep:
            a.after_prep.add(s)
            if direction is not None:
                a.directions.setdefault(s, direction)
            after_prep = False
        if pending:
            a.negated.add(s)
            pending = False
    close_clause()


COORDINATORS = frozenset({"and", "or"})

# Words that deny the presence of their clause's subject, as a negator does ("no charger").
PRIVATIVE = frozenset({"missing", "absent", "lacking", "lack", "lacks", "lacked", "gone"})


PREPOSITIONS = frozenset({"of", "to", "for", "from", "in", "on", "at", "by", "with", "about", "into",
                          "onto", "via", "per", "over", "under", "through", "during", "inside"})

# Prepositions that say where something comes from or goes to: the same word as a source on one side
# and a goal on the other is a reversed direction ("from the clinic to the hospital" / "from the
# hospital to the clinic"; "moved out of room 4" is not "moved to room 4").
DIRECTIONS = {"from": "source", "to": "goal", "into": "goal", "onto": "goal", "toward": "goal",
              "towards": "goal"}
DETERMINERS = frozenset({"the", "a", "an", "my", "our", "your", "his", "her", "their", "its", "this", "that",
                         "these", "those"})


def _word_weight(surface: str, s: str) -> float:
    if not surface.isalnum() or surface in STOPWORDS or surface in NEGATORS:
        return 0.0
    return LOW_WEIGHT if (surface in LOW_WEIGHT_WORDS or s in _LOW_STEMS) else 1.0


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=65536)
def _same(x: str, y: str) -> bool:
    """Same word: a shared identity or synonym group, one stem a prefix of the other, a near spelling."""
    if x == y or _ids(x) & _ids(y):
        return True
    if x.startswith("=") or y.startswith("="):
        return False
    short, long_ = (x, y) if len(x) <= len(y) else (y, x)
    if len(short) >= 5 and long_.startswith(short):
        return True
    return len(short) >= 5 and fuzz.ratio(x, y) >= FUZZY_MIN


def _opposed(x: str, y: str) -> bool:
    return bool(_antonym_ids(x) & _ids(y))


def _align(a: dict[str, float], b: dict[str, float], a_neg: set[str], b_neg: set[str]) -> dict[str, str]:
    """Each word of ``a`` to its counterpart in ``b``; "not clean" is the counterpart of "dirty"."""
    out: dict[str, str] = {}
    for x in a:
        if x in b and (x in a_neg) == (x in b_neg):
            out[x] = x
            continue
        first = x if x in b else None
        for y in b:
            same = _same(x, y)
            if same or _opposed(x, y):
                if same == ((x in a_neg) == (y in b_neg)):  # the counterpart that agrees wins
                    first = y
                    break
                if same:  # the same word with the other polarity: kept for the negation rule
                    first = first or y
        if first is not None:
            out[x] = first
    return out


def _merge_compounds(a: Analysis, b: Analysis) -> dict[str, float]:
    """``e mail`` on one side and ``email`` on the other: join this side's adjacent words."""
    content = dict(a.content)
    order = [t for t in a.order if t != "|"]
    for x, y in pairwise(order):
        joined = stem(x + y)
        if joined in b.content and joined not in content:
            content.pop(x, None)
            content.pop(y, None)
            content[joined] = 1.0
    return content


def _clauses(order: list[str], mapping: dict[str, str] | None = None) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for t in order:
        if t == "|":
            out.append([])
        else:
            out[-1].append(mapping.get(t, t) if mapping else t)
    return [c for c in out if c]


def _role_swap(g: Analysis, c: Analysis, c2g: dict[str, str]) -> tuple[str, str] | None:
    """Two content words with another word between them trade places and nothing else changes
    ("the landlord owes the tenant" / "the tenant owes the landlord").

    A passive ``by`` exempts the pair. So does a reordering of whole clauses ("stay was quiet and
    relaxing" / "relaxing, quiet stay"; the items of a list), and a swap of neighbours ("knee pain").
    """
    if g.passive or c.passive:
        return None
    g_clauses, c_clauses = _clauses(g.order), _clauses(c.order, c2g)
    gs = [t for cl in g_clauses for t in cl]
    cs = [t for cl in c_clauses for t in cl]
    if len(gs) != len(cs) or sorted(gs) != sorted(cs):
        return None
    diff = [i for i, (x, y) in enumerate(zip(gs, cs)) if x != y]
    if len(diff) != 2 or gs[diff[0]] != cs[diff[1]] or gs[diff[1]] != cs[diff[0]]:
        return None
    x, y = gs[diff[0]], gs[diff[1]]
    clause_of = [k for k, cl in enumerate(g_clauses) for _ in cl]
    if clause_of[diff[0]] != clause_of[diff[1]]:
        # across clauses: a swap only if the clauses themselves changed ("ordered a blue sweater,
        # received a red one" / "ordered a red sweater, received a blue one")
        same_clauses = sorted(map(sorted, g_clauses)) == sorted(map(sorted, c_clauses))
        return None if same_clauses else (x, y)
    gap = diff[1] - diff[0]
    # In one clause, three words apart: a swap. Two apart: a swap of subject and object ("the
    # landlord owes the tenant"), unless a preposition shows a noun compound turned around
    # ("smelled of smoke" / "a smoke smell in the room").
    cprep = {c2g.get(t, t) for t in c.after_prep}
    if gap >= 3 or (gap == 2 and not ({x, y} & (g.after_prep | cprep))):
        return x, y
    return None


def explain(expected: Any, got: Any) -> dict[str, Any]:
    """Why two texts do or do not mean the same: ``match``, the ``reasons`` against, and the scores."""
    if expected is None or got is None:
        same = expected is None and got is None
        return {"match": same, "reasons": [] if same else ["one side is None"]}
    g, c = analyze(str(expected)), analyze(str(got))
    reasons: list[str] = []
    if g.empty != c.empty:
        reasons.append("one side is empty")
    # 1. numbers
    if g.numbers != c.numbers:
        reasons.append(f"numbers differ: {sorted(g.numbers)} vs {sorted(c.numbers)}")
    if (g.soft_one and not c.one_like) or (c.soft_one and not g.one_like):
        reasons.append("the number one is on one side only")
    # 2. names and quoted titles
    missing_names = sorted(n for n in g.names if n not in c.surface)
    extra_names = sorted(n for n in c.names if n not in g.surface)
    if missing_names or extra_names:
        reasons.append(f"names differ: {missing_names} vs {extra_names}")
    if g.quoted != c.quoted:
        flat_g, flat_c = f" {_flat(str(expected))} ", f" {_flat(str(got))} "
        if any(f" {q} " not in flat_c for q in g.quoted) or any(f" {q} " not in flat_g for q in c.quoted):
            reasons.append(f"quoted names differ: {sorted(g.quoted)} vs {sorted(c.quoted)}")
    gc, cc = _merge_compounds(g, c), _merge_compounds(c, g)
    g2c, c2g = _align(gc, cc, g.negated, c.negated), _align(cc, gc, c.negated, g.negated)
    # 3. negation: the same word, or a word and its antonym, with the wrong polarity. A word right
    # after a negator must be inside a negated clause on the other side ("I didn't receive the
    # email" / "no email was received"), and a word outside any negated clause must not follow one.
    def polarity_differs(x: str, y: str) -> bool:
        if _opposed(x, y):
            return (x in g.negated) == (y in c.negated)
        return (x in g.negated and y not in c.negated_clause) or (y in c.negated and x not in g.negated_clause)

    flipped = sorted(x for x, y in g2c.items() if polarity_differs(x, y))
    if flipped:
        reasons.append(f"negation differs on: {flipped}")
    # 4. antonyms
    clashes = sorted({(x, y) for x in gc if x not in g2c or not _same(x, g2c[x])
                      for y in cc if (y not in c2g or not _same(y, c2g[y])) and _opposed(x, y)
                      and (x in g.negated) == (y in c.negated)})
    if clashes:
        reasons.append(f"antonyms: {clashes}")
    # co-hyponyms (mg/ml, day/week, kitchen/bathroom) left without a counterpart: a substitution
    substituted = sorted({(x, y) for x in gc if x not in g2c for y in cc if y not in c2g
                          and _incompatible_ids(x) & _ids(y)})
    if substituted:
        reasons.append(f"incompatible words: {substituted}")
    # 5. roles swapped, or a direction reversed
    swap = _role_swap(g, c, c2g)
    if swap:
        reasons.append(f"roles swapped: {swap}")
    reversed_ = sorted(x for x, y in g2c.items() if x in g.directions and y in c.directions
                       and g.directions[x] != c.directions[y])
    if reversed_:
        reasons.append(f"direction reversed (from / to): {reversed_}")
    else:  # the same words, but where something went (or came from) is another of them
        for way in ("source", "goal"):
            ends = {x for x, y in g2c.items() if g.directions.get(x) == way}
            other = {c2g[y] for y in c2g if c.directions.get(y) == way}
            if ends and other and not ends & other and ends <= set(c2g.values()) and other <= set(g2c):
                reasons.append(f"another {way}: {sorted(ends)} vs {sorted(other)}")
    # 6. a further item or detail joined by "and"/"or" on one side only ("towels" / "towels and a
    # crib", "bleeding and swelling" / "bleeding"): the overlap rule lets one such word through
    dropped = sorted(x for x in gc if x not in g2c and x in g.coordinated and gc[x] >= 1.0)
    joined = sorted(y for y in cc if y not in c2g and y in c.coordinated and cc[y] >= 1.0)
    if dropped or joined:
        reasons.append(f"a joined detail on one side only: {dropped} vs {joined}")
    # 7. overlap
    g_total, c_total = sum(gc.values()), sum(cc.values())
    recall = sum(w for x, w in gc.items() if x in g2c) / g_total if g_total else 1.0
    precision = sum(w for x, w in cc.items() if x in c2g) / c_total if c_total else 1.0
    missing = sorted(x for x in gc if x not in g2c)
    added = sorted(x for x in cc if x not in c2g)
    if recall < RECALL_MIN:
        reasons.append(f"gold words missing (recall {recall:.2f}): {missing}")
    if precision < PRECISION_MIN:
        reasons.append(f"words added (precision {precision:.2f}): {added}")
    return {"match": not reasons, "reasons": reasons, "overrulable": overrulable(reasons), "recall": round(recall, 3),
            "precision": round(precision, 3), "missing": missing, "added": added,
            "numbers": [sorted(g.numbers), sorted(c.numbers)], "names": [sorted(g.names), sorted(c.names)],
            "negated": [sorted(g.negated), sorted(c.negated)]}


# What a judge may overrule: the overlap rule only. Every other rule is a veto (a number, a name, a
# negation, an opposite, a swap, a joined detail): a model is never asked to wave a changed fact through.
OVERLAP_REASONS = ("gold words missing", "words added")


def overrulable(reasons: list[str]) -> bool:
    """True when every objection is the overlap rule's (so a judge may still accept the pair)."""
    return bool(reasons) and all(reason.startswith(OVERLAP_REASONS) for reason in reasons)


class Judge(Protocol):
    """A second opinion on a pair the rules reject for overlap alone: True (same meaning), False, or
    None (no opinion: the rules' decision stands). tasks/judge.py has the LLM's."""

    def __call__(self, expected: str, got: str) -> bool | None: ...


def semantic_match(expected: str | None, got: str | None, judge: Judge | None = None) -> bool:
    """True when ``got`` means the same as ``expected``; None matches only None. With a ``judge``, a
    pair that only the overlap rule rejects is the judge's to decide."""
    if expected is None or got is None:
        return expected is None and got is None
    if expected == got:
        return True
    return _decided(expected, got, explain(expected, got), judge)


def _decided(expected: str, got: str, verdict: dict[str, Any], judge: Judge | None) -> bool:
    """The rules' ``verdict`` on the pair, or the judge's where only the overlap rule objects."""
    if verdict["match"] or judge is None or not verdict["overrulable"]:
        return verdict["match"]
    second = judge(str(expected), str(got))
    return verdict["match"] if second is None else bool(second)


# ---------------------------------------------------------------------------------------------
# Measuring a method on a labelled set (manage.py semantic_eval; docs/semantic.md)
# ---------------------------------------------------------------------------------------------

def split_of(pair_id: str) -> str:
    """A pair's half of the labelled set: dev when sha1(id) starts with 0-7, else test."""
    import hashlib

    return "dev" if hashlib.sha1(pair_id.encode()).hexdigest()[0] in "01234567" else "test"


def evaluate(pairs: list[dict[str, Any]], judge: Judge | None = None,
             progress: Any = None) -> dict[str, Any]:
    """Accuracy of the matcher (with ``judge``, if given) on labelled pairs ({id, gold, candidate,
    label, kind}): overall, by split (dev/test), by batch (the id's ``bN-`` prefix) and by kind, with
    false accepts, false rejects, and how many pairs went to the judge. ``progress(done, total)`` is
    called after each pair."""
    groups: dict[str, list[int]] = {}
    errors: list[dict[str, Any]] = []
    asked = 0
    for done, pair in enumerate(pairs, 1):
        verdict = explain(pair["gold"], pair["candidate"])  # once per pair: the rules' work is the cost here
        if judge is not None and not verdict["match"] and verdict["overrulable"] and pair["gold"] != pair["candidate"]:
            asked += 1
        decided = pair["gold"] == pair["candidate"] or _decided(pair["gold"], pair["candidate"], verdict, judge)
        right = decided == pair["label"]
        batch = pair["id"].split("-", 1)[0] if re.match(r"b\d+-", pair["id"]) else "b1"  # batch 1 has no prefix
        for key in ("all", split_of(pair["id"]), f"batch {batch}", f"kind {pair['kind']}"):
            counts = groups.setdefault(key, [0, 0])
            counts[0] += right
            counts[1] += 1
        if not right:
            errors.append({"id": pair["id"], "label": pair["label"], "gold": pair["gold"],
                           "candidate": pair["candidate"], "reasons": verdict["reasons"]})
        if progress is not None:
            progress(done, len(pairs))
    accuracy = {key: {"right": r, "total": n, "accuracy": round(r / n, 4)} for key, (r, n) in groups.items()}
    return {"accuracy": accuracy, "false_accepts": sum(1 for e in errors if not e["label"]),
            "false_rejects": sum(1 for e in errors if e["label"]), "judged": asked, "errors": errors}
