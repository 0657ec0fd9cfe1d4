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
                            mentions_time, refuses)

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
DONE_CUES = ("done", "has been", "have been", "is now", "are now", "successfully", "all set", "went through",
             "i've", "i have", "is confirmed", "completed", "processed", "recorded", "is booked", "are booked",
             "you're booked", "is cancelled",
             "is canceled", "is paid", "is updated", "is filed", "is open", "reopened", "took care")
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
                         r"[^.!?]*?\bto\s*\?|\bnew\b|\binstead\b", re.IGNORECASE)


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


class ScriptedUser:
    def __init__(self, script: Script, max_turns: int = MAX_USER_TURNS) -> None:
        self.script = script
        self.max_turns = max_turns
        self.turns = 0
        self.given = {f.key for f in script.facts if f.opening}
        self.confirmed: set[int] = set()
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
        forward = bool(DESTINATION.search(text))  # asks what something should become, not what it is

        def score(fact: Fact) -> tuple[bool, bool, int, int, int] | None:
            """How well the message asks for this fact: whether it names the fact's topic ("e-mail",
            "move it to"), then whether it asks for a new value or a current one as the fact is, then
            how many of its cues it holds and the longest. None when it does not ask for it."""
            held = [w for w in fact.asked_by if contains_word(text, w)]
            topical = [w for w in held if w not in WEAK_CUES]
            agrees = fact.key.startswith("new") == forward
            if not topical and not (held and agrees):  # "What should the body be?" is not a new phone number
                return None
            return bool(topical), agrees, len(topical), len(held), max(len(w) for w in held)

        scored = [(score(f), f) for f in self.script.facts]
        matching = [(sc, f) for sc, f in scored if sc is not None]
        fresh = [(sc, f) for sc, f in matching if f.key not in self.given]
        fact = max(fresh or matching, key=lambda pair: pair[0])[1] if matching else None
        if fact is not None:
            self.given.add(fact.key)
            return fact.say
        for unknown in self.script.unknowns:
            if any(contains_word(text, w) for w in unknown.asked_by):
                return unknown.say
        return None

    def _proposal(self, text: str) -> str | None:
        """A reply to a proposed change, or None when the message proposes none."""
        wanted = [v for goal in self.script.writes for v in goal.verbs]
        if not (asks_confirmation(text) and (contains_any(text, ACTION_WORDS) or contains_any(text, wanted))):
            return None
        wishes = self.script.writes
        # One message may propose several changes (cancel the old booking, book the new one): yes
        # only when every change it names is a wanted one, none of them on a near miss.
        named = [goal.step for goal in wishes if self._names_goal(text, goal)]
        near_miss = any(g.step not in named and contains_any(text, g.verbs) and any(_detail_said(text, d) for d in g.wrong)
                        for g in wishes)
        if named and not near_miss:
            self.confirmed.update(named)
            return self._pick(YES)
        if near_miss:
            return f"{self._pick(WRONG_ONE)} {self.script.goal}"
        if any(contains_any(text, g.verbs) for g in wishes):
            return f"{self._pick(WHICH)} {self.script.goal}"
        return f"{self._pick(WRONG_ACTION)} {self.script.goal}"

    @staticmethod
    def _names_goal(text: str, goal: WriteGoal) -> bool:
        return contains_any(text, goal.verbs) and all(_detail_said(text, d) for d in goal.details)

    def _says_done(self, text: str) -> bool:
        """The agent reports one of the wanted changes as made: "is/are/has been" + a goal verb's
        past participle ("your review is posted", "the application has been submitted")."""
        done = {_participle(v) for goal in self.script.writes for v in goal.verbs if " " not in v}
        return any(contains_word(text, f"{aux} {now}{word}") for word in done
                   for aux in ("is", "are", "was", "were", "been") for now in ("", "now "))

    def _answered(self, text: str) -> bool:
        return bool(self.script.answers) and all(mentions(text, a.kind, a.value) for a in self.script.answers)

    # -- the reply --------------------------------------------------------------------------

    def respond(self, agent_text: str) -> str:
        self.turns += 1
        if self.stopped:
            return STOP
        if self.turns > self.max_turns:
            return self._stop(LEAVE)
        text = agent_text or ""
        reply = self._proposal(text)
        if reply is not None:
            return reply
        if self.script.answers and self._answered(text) and (
                self.script.kind == "question" or self.confirmed >= {w.step for w in self.script.writes}):
            return self._stop(self.script.closing)  # asked and answered (and every change it wanted agreed)
        reply = self._asked_fact(text)
        if reply is not None:
            return reply
        if refuses(text):
            if not self.insisted and self.script.insist_once:
                self.insisted = True
                return self._pick(INSIST)
            return self._stop(self._pick(ACCEPT) if self.script.kind == "refusal" else self._pick(GIVE_UP))
        if self.script.kind != "question" and "?" not in text and (contains_any(text, DONE_CUES)
                                                                   or self._says_done(text)):
            return self._stop(self.script.closing)
        if "?" in text:
            return f"{self._pick(UNSURE)} {self.script.goal}"
        return f"{self._pick(OKAY)} {self.script.goal}"
