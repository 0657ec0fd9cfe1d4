"""The scripted user simulator: a customer with a goal, talking one message at a time (Django-free).

It follows τ²-bench's conventions for user simulators (tasks-that-teach.md §2): it opens with the
reason for the call; it gives one piece of what it knows when it is asked for it, and says so
when asked for something it does not know; it accepts a proposed change only when it is the one it
wants (the right action on the right record) and declines any other; when the agent refuses, it
insists once and then accepts; it ends with ``###STOP###`` when its goal is met or properly refused,
or after a turn limit. An agent asking a question is never a reason to stop.

Deterministic: the same script and the same agent messages give the same replies, so a session
served by any web process can rebuild the user from the conversation (:meth:`ScriptedUser.replay`).
"""

from __future__ import annotations

import random
import re

from tasks.instantiation.plan import Detail, Fact, Script, WriteGoal
from tasks.phrasing import (asks_confirmation, contains_any, contains_word, mentions, mentions_date, mentions_instant,
                            mentions_time, normalize, refuses)

STOP = "###STOP###"
MAX_USER_TURNS = 14

YES = ("Yes, please go ahead.", "Yes, that's right, go ahead.", "Yes please.", "Yes, do it.")
INSIST = ("Are you sure? It's really important to me.", "Is there really no way? I'd like to get this sorted today.",
          "Could you check again? I really need this.")
ACCEPT = ("I see. Thanks for explaining.", "Okay, I understand. Thanks anyway.", "Fair enough, thank you.")
GIVE_UP = ("Alright, I'll sort it out another way.", "Never mind then, thanks.")
WRONG_ONE = ("No, that's not the one.", "No, I don't mean that one.")
WRONG_ACTION = ("No, that's not what I asked for.", "No, please don't do that.")
WHICH = ("Which one do you mean exactly?", "Sorry, which one is that?")
UNSURE = ("Sorry, I'm not sure what you mean.", "I'm not sure I follow.")
OKAY = ("Okay.", "Alright.")
LEAVE = "Sorry, I have to go now."
DONE_CUES = ("done", "has been", "have been", "is now", "are now", "successfully", "successful", "all set",
             "went through", "is confirmed", "completed", "processed", "recorded", "is booked", "are booked",
             "you're booked", "you are booked", "all booked", "is cancelled", "is canceled", "is paid", "is updated",
             "is filed", "is open", "reopened", "took care", "taken care of", "is closed", "closed now", "rescheduled",
             "booking confirmed", "cancellation confirmed", "payment confirmed", "reservation confirmed",
             "change confirmed", "update confirmed", "already", "complete")
# A done report often ends with an offer; that question is not about the task.
OFFERS = re.compile(r"\b(?:anything else|something else|else i can|else can i|further assistance|help you with|"
                    r"assist you with|anything more|something more|more i can do|else you need|"
                    r"a confirmation sent|a copy sent|change or cancel|anything further|another option|other options|"
                    r"an alternative|look for another|something different)\b", re.IGNORECASE)
ASK_CUES = ("?", "please provide", "please share", "please give", "could you", "can you", "may i have",
            "what is", "what's", "tell me", "let me know")
# Words that make a proposal an action (a confirmation of a change, not a question about a fact).
ACTION_WORDS = ("cancel", "book", "reserve", "pay", "update", "change", "create", "file", "open", "reopen", "submit",
                "leave", "add", "register", "delete", "remove", "record", "log", "settle", "move", "set", "send",
                "post", "make")


# Question words that many facts share: they pick a fact only when the message's direction agrees
# (what it is now, or what it should become) or when nothing more specific was asked.
WEAK_CUES = frozenset({"which", "which one", "when", "date", "time", "what day", "day", "new", "what should",
                       "what is the", "about", "name", "name of", "describe"})
# "What would you like to move it to?", "What is the new e-mail?": the message asks for a new value.
DESTINATION = re.compile(r"\b(?:move|moving|moved|change|changing|changed|switch|reschedule|update|updating|set)\b"
                         r"[^.!?]*?\bto\s*\?|\bnew\b|\binstead\b|\bgoing forward\b|\bfrom now on\b|"
                         r"\bshould (?:we|i) use\b", re.IGNORECASE)


def _sentences(text: str) -> list[str]:
    """Sentences, split at an end mark followed by a space (not at the dots of an e-mail address)
    and at line breaks (a bullet list)."""
    return [s.strip(" -*•\t") for line in text.splitlines()
            for s in re.findall(r".+?(?:[.!?]+(?=\s|$)|$)", line) if s.strip(" -*•\t")]


def _without_offers(text: str) -> str:
    """The message less its closing offers ("Is there anything else I can help you with?")."""
    return " ".join(s for s in _sentences(text) if not (s.endswith("?") and OFFERS.search(s)))


MOVE_PARTICIPLES = {"moved", "rescheduled"}
REFERENCE_CUES = ("id", "reference", "account number", "customer number")  # what no customer knows by heart
WH = re.compile(r"\b(?:what(?:'s)?|which|when|where|who|whose|how)\b", re.IGNORECASE)


def _verb_forms(verb: str) -> list[str]:
    """cancel -> cancels, cancelled, canceled, cancelling, canceling; move -> moved, moving."""
    if " " in verb or "'" in verb or not verb.isalpha():
        return [verb]
    stem = verb[:-1] if verb.endswith("e") else verb
    forms = {verb, f"{verb}s", _participle(verb), f"{stem}ing", f"{verb}ed"}
    if verb in DOUBLED_FINAL or verb.endswith("l"):
        forms |= {f"{verb}{verb[-1]}ing", f"{verb}{verb[-1]}ed"}
    return sorted(forms)


def fixed_lines(script: Script) -> list[str]:
    """Every line the user can say that does not come from the scenario's facts (leak audit)."""
    return [*YES, *INSIST, *ACCEPT, *GIVE_UP, *WRONG_ONE, *WRONG_ACTION, *WHICH, *UNSURE, *OKAY, LEAVE]


IRREGULAR_PARTICIPLES = {"send": "sent", "leave": "left", "pay": "paid", "set": "set", "make": "made", "put": "put",
                         "get": "got", "buy": "bought", "hold": "held", "give": "given", "take": "taken",
                         "cancel": "cancelled"}
DOUBLED_FINAL = ("submit", "log", "plan", "stop", "drop", "ship", "tag", "flag", "admit", "commit", "refer")


def _participle(verb: str) -> str:
    """submit -> submitted, post -> posted, file -> filed, log -> logged, send -> sent."""
    if verb in IRREGULAR_PARTICIPLES:
        return IRREGULAR_PARTICIPLES[verb]
    if verb.endswith("e"):
        return f"{verb}d"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return f"{verb[:-1]}ied"
    if verb in DOUBLED_FINAL:
        return f"{verb}{verb[-1]}ed"
    return f"{verb}ed"


def _detail_said(text: str, detail: Detail) -> bool:
    if detail.kind == "date":
        return mentions_date(text, detail.value)
    if detail.kind == "time":
        return mentions_time(text, detail.value)
    if detail.kind == "datetime":
        return mentions_instant(text, detail.value)
    return mentions(text, detail.kind, detail.value)


def _detail_key(detail: Detail) -> tuple[str, str]:
    """What a detail is recognized by: a time by its clock time ("10:00", whatever the day)."""
    value = str(detail.value)
    if detail.kind == "time":
        return "time", value[11:16]
    if detail.kind == "date":
        return "date", value[:10]
    return detail.kind, value.lower()


class ScriptedUser:
    def __init__(self, script: Script, max_turns: int = MAX_USER_TURNS) -> None:
        self.script = script
        self.max_turns = max_turns
        self.turns = 0
        self.given = {f.key for f in script.facts if f.opening}
        self.confirmed: set[int] = set()
        self.reported: set[int] = set()  # wanted changes the agent has said are made
        self.answered = False  # every answer the user asked for has been said
        self.wrong_report = False  # the last message reported a change made on the near miss
        self.insisted = False
        self.stopped = False

    @classmethod
    def replay(cls, script: Script, agent_texts: list[str]) -> "ScriptedUser":
        """The user as it is after answering ``agent_texts`` (its replies are deterministic)."""
        user = cls(script)
        for text in agent_texts:
            user.respond(text)
        return user

    def first_message(self) -> str:
        return self.script.opening

    def _pick(self, options: tuple[str, ...]) -> str:
        return random.Random(f"{self.script.seed}:{self.turns}").choice(options)

    def _stop(self, text: str) -> str:
        self.stopped = True
        return f"{text} {STOP}"

    # -- what the agent's message is ---------------------------------------------------------

    def _asked_fact(self, text: str) -> str | None:
        if not contains_any(text, ASK_CUES):
            return None
        # What is asked is in the questions: "I found your account. Which stay is it?" asks for the stay.
        asked = " ".join(s for s in _sentences(text) if s.endswith("?")) or text
        forward = bool(DESTINATION.search(asked))  # asks what something should become, not what it is
        low = normalize(asked)
        wh = [m.end() for m in WH.finditer(low)]
        after = wh[-1] if wh else 0  # the object of a question follows its last question word

        def score(fact: Fact) -> tuple[bool, bool, int, int, bool, int] | None:
            """How well the message asks for this fact: whether it asks for a new value or a current
            one as the fact is, whether it names the fact's topic ("e-mail", "move it to"), how soon
            after the question word ("what's the reason for the visit?" asks for the reason), how many
            topic words, whether it was not said yet, how many cues. None when it does not ask for it."""
            held = [w for w in fact.asked_by if contains_word(asked, w)]
            topical = [w for w in held if w not in WEAK_CUES]
            agrees = fact.key.startswith("new") == forward
            if not topical and not (held and agrees):  # "What should the body be?" is not a new phone number
                return None
            spots = [low.find(normalize(w).replace("_", " "), after) for w in held]
            first = min((p for p in spots if p >= 0), default=len(low) + 1)
            return agrees, bool(topical), -first, len(topical), fact.key not in self.given, len(held)

        for unknown in self.script.unknowns:  # "your booking reference or customer ID?": not something it has
            if not forward and any(contains_word(asked, w) for w in unknown.asked_by if w in REFERENCE_CUES):
                return unknown.say
        scored = [(score(f), f) for f in self.script.facts]
        matching = [(sc, f) for sc, f in scored if sc is not None]
        fact = max(matching, key=lambda pair: pair[0])[1] if matching else None
        if fact is None and forward:  # "What would you like it changed to?": the one new value it has
            fact = next((f for f in self.script.facts if f.key.startswith("new")), None)
        if fact is not None:
            self.given.add(fact.key)
            return fact.say
        for unknown in self.script.unknowns:
            if any(contains_word(asked, w) for w in unknown.asked_by):
                return unknown.say
        return None

    def _proposal(self, text: str) -> str | None:
        """A reply to a proposed change, or None when the message proposes none."""
        wanted = [form for goal in self.script.writes for v in goal.verbs for form in _verb_forms(v)]
        if not (asks_confirmation(text) and (contains_any(text, ACTION_WORDS) or contains_any(text, wanted))):
            return None
        wishes = self.script.writes
        original = text
        # What is proposed is in the sentences that ask or name an action, not in what the agent
        # found ("I found two stays: 7 and 13 March. Shall I cancel the one on 7 March?").
        proposed = " ".join(s for s in _sentences(text) if s.endswith("?") or contains_any(s, wanted))
        every_detail = [d for g in wishes for d in (*g.details, *g.wrong)]
        if proposed and any(_detail_said(proposed, d) for d in every_detail):
            text = proposed  # else "Shall I cancel it?" points back at what the message found
        # One message may propose several changes (cancel the old booking, book the new one): yes
        # only when every change it names is a wanted one and none is on a near miss (another
        # booking, another slot, another way to pay), even beside the right one.
        named = [goal.step for goal in wishes if self._names_goal(text, goal)]
        wanted_details = {_detail_key(d) for g in wishes for d in g.details}  # the other change's time is no miss
        # a near miss is proposed for that action: in a sentence with its verb (not "two open flags")
        units = _sentences(text) if text is not original else [text]
        near_miss = any(self._says_verb(unit, g) and any(_detail_said(unit, d) for d in g.wrong
                                                         if _detail_key(d) not in wanted_details)
                        for g in wishes for unit in units)
        if named and not near_miss:
            self.confirmed.update(named)
            return self._pick(YES)
        if near_miss:
            return f"{self._pick(WRONG_ONE)} {self.script.goal}"
        if any(self._says_verb(text, g) for g in wishes):
            return f"{self._pick(WHICH)} {self.script.goal}"
        return f"{self._pick(WRONG_ACTION)} {self.script.goal}"

    @staticmethod
    def _says_verb(text: str, goal: WriteGoal) -> bool:
        return contains_any(text, [form for v in goal.verbs for form in _verb_forms(v)])

    @classmethod
    def _names_goal(cls, text: str, goal: WriteGoal) -> bool:
        return cls._says_verb(text, goal) and all(_detail_said(text, d) for d in goal.details)

    def _participles(self, goal: WriteGoal) -> list[str]:
        # "made" says nothing about which change ("both changes are made")
        return [_participle(v) for v in goal.verbs if " " not in v and v.isalpha() and v != "make"]

    def _says_done(self, text: str, goals: list[WriteGoal] | None = None) -> bool:
        """The agent reports one of the wanted changes as made: a goal verb's past participle that
        is not negated or still to come ("your review is posted", "I've cancelled it", "Updated.",
        "Phone updated to …"; not "it will be cancelled", "I haven't cancelled it")."""
        low = normalize(text)
        for word in {w for goal in (goals if goals is not None else self.script.writes) for w in self._participles(goal)}:
            for match in re.finditer(rf"(?<![\w-]){re.escape(word)}(?![\w-])", low):
                before = low[max(0, match.start() - 12):match.start()]
                if not re.search(r"(?:\bnot|n't|\bbe|\bto|\bget|\bnever)\s+(?:\w+\s+)?$", before):
                    return True
        return False

    def _reported_goals(self, text: str) -> set[int]:
        """The wanted changes a done report is about: each it names by its details, or by a verb
        only it has ("cancelled" when one change is a cancellation); the only one, unless the
        report names its near miss ("your stay on 13 March is cancelled" for the one on the 7th)."""
        writes = self.script.writes
        if len(writes) == 1:
            goal = writes[0]
            wrong = any(_detail_said(text, d) for d in goal.wrong) and not all(_detail_said(text, d) for d in goal.details)
            return set() if wrong else {goal.step}
        found = {g.step for g in writes if all(_detail_said(text, d) for d in g.details)}
        wanted = {_detail_key(d) for g in writes for d in g.details}
        for g in writes:
            # a verb the other changes share does not tell which one is done ("booked"), except a
            # move, which is said of its cancellation and its new booking together
            shared = {p for other in writes if other is not g for p in self._participles(other)} - MOVE_PARTICIPLES
            own = [v for v in g.verbs if " " not in v and v.isalpha() and _participle(v) not in shared]
            if g.step in found or not own or not self._says_done(text, [WriteGoal(g.step, own, [], [], "", "")]):
                continue
            if any(_detail_said(text, d) for d in g.wrong if _detail_key(d) not in wanted):
                self.wrong_report = True  # "your booking on 23 March is cancelled" for the one on the 18th
            else:
                found.add(g.step)
        named_any = any(_detail_said(text, d) for g in writes for d in (*g.details, *g.wrong)) or any(
            self._says_done(text, [g]) for g in writes)
        if not found and not named_any:  # "Done, both changes are made.": what was agreed
            found = set(self.confirmed)
        return found

    def _answered(self, text: str) -> bool:
        return bool(self.script.answers) and all(mentions(text, a.kind, a.value) for a in self.script.answers)

    def _names_refusal(self, text: str) -> bool:
        """A refusal that says why, in a statement (a question is not a refusal): with a refusal
        phrase, or flatly, naming the record ("The live room on 20 March at 08:30 is full, with no
        places left."), in a message that proposes nothing beyond its closing offer."""
        refusal = self.script.refusal
        if refusal is None:
            return False
        reasons = [s for s in _sentences(_without_offers(text)) if not s.endswith("?")
                   and contains_any(s, refusal.keywords)]
        if not reasons:
            return False
        if any(refuses(s) for s in reasons):
            return True
        named = [d for g in self.script.writes for d in g.details]
        return (not asks_confirmation(_without_offers(text))
                and any(_detail_said(s, d) for s in reasons for d in named))

    def _note_reports(self, text: str) -> bool:
        """Record the changes a message reports as done (in its statements, not its questions)."""
        if self.script.kind == "question":
            return False
        statements = " ".join(s for s in _sentences(_without_offers(text)) if not s.endswith("?"))
        if not statements or not (contains_any(statements, DONE_CUES) or self._says_done(statements)):
            return False
        reported = self._reported_goals(statements)
        if len(self.script.writes) == 1 and not reported:
            self.wrong_report = True
        self.reported |= reported
        return True

    def _all_met(self) -> bool:
        return ({g.step for g in self.script.writes} <= self.reported
                and (not self.script.answers or self.answered))

    def _still_wanted(self) -> str:
        """What the user asks for when the agent has reported only part of it done."""
        remaining = [g for g in self.script.writes if g.step not in self.reported]
        if remaining:
            return f"Thanks. I also still want to {remaining[0].summary.replace('your ', 'my ')}."
        labels = [a.label.replace("your ", "my ") for a in self.script.answers]
        return f"Thanks. Could you also tell me {labels[0]}?" if labels else f"Thanks. {self.script.goal}"

    def _on_refusal(self) -> str:
        if not self.insisted and self.script.insist_once:
            self.insisted = True
            return self._pick(INSIST)
        return self._stop(self._pick(ACCEPT) if self.script.kind == "refusal" else self._pick(GIVE_UP))

    # -- the reply --------------------------------------------------------------------------

    def respond(self, agent_text: str) -> str:
        self.turns += 1
        if self.stopped:
            return STOP
        if self.turns > self.max_turns:
            return self._stop(LEAVE)
        text = agent_text or ""
        self.wrong_report = False
        answered_now = self._answered(text)
        self.answered = self.answered or answered_now
        if self.script.kind == "refusal" and self._names_refusal(text):
            return self._on_refusal()  # the reason said, whatever offer follows it
        reported_now = self._note_reports(text)
        if self.wrong_report:
            return f"{self._pick(WRONG_ONE)} {self.script.goal}"
        if (reported_now or answered_now) and self._all_met():
            return self._stop(self.script.closing)  # everything asked for is done and said, whatever it offers next
        reply = self._proposal(text)
        if reply is not None:
            return reply
        reply = self._asked_fact(text)
        if reply is not None:
            return reply
        if reported_now or answered_now:
            return self._still_wanted()
        if refuses(text):
            return self._on_refusal()
        if "?" in text:
            return f"{self._pick(UNSURE)} {self.script.goal}"
        return f"{self._pick(OKAY)} {self.script.goal}"
