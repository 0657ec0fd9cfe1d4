"""The scripted user: one fact at a time, only what it knows, accepts only what it asked for, insists
once on a refusal, never stops because the agent asks something, and replays deterministically."""

from tasks.instantiation.plan import Answer, Detail, Fact, Refusal, Script, Unknown, WriteGoal
from tasks.rollout.user import INSIST, STOP, ScriptedUser


def script(kind: str = "write") -> Script:
    facts = [Fact("email", "It's wen.bianchi42@example.com.", ["email", "e-mail"], "", "", ["wen.bianchi42@example.com"]),
             Fact("when", "The one on Tuesday 10 March at 09:00.", ["which", "when", "date"], "", "",
                  ["2026-03-10T09:00:00Z"])]
    unknowns = [Unknown("ids", ["patient number", "id"], "I don't have any reference number, sorry.", "")]
    writes = [WriteGoal(2, ["cancel"], [Detail("date", "2026-03-10"), Detail("time", "2026-03-10T09:00:00Z")],
                        [Detail("date", "2026-03-12")], "cancel your visit on Tuesday 10 March at 09:00", "Cancelled.")]
    answers = [Answer("money", 120.5, "what is left", {})] if kind == "question" else []
    refusal = Refusal("it already took place", ["completed", "took place"], {}, "tool", "") if kind == "refusal" else None
    return Script(kind=kind, opening="Hi, I need to cancel one of my visits.", goal="I want to cancel my visit on 10 March.",
                  facts=facts, unknowns=unknowns, writes=writes if kind != "question" else [], answers=answers,
                  refusal=refusal, seed=7)


def test_it_opens_with_the_reason_and_gives_one_fact_when_asked():
    user = ScriptedUser(script())
    assert user.first_message() == "Hi, I need to cancel one of my visits."
    assert user.respond("Could you give me your e-mail and the date of the visit?") == "It's wen.bianchi42@example.com."
    assert user.respond("Thanks. And which visit is it?") == "The one on Tuesday 10 March at 09:00."


def test_it_says_what_it_does_not_know_and_never_invents_it():
    user = ScriptedUser(script())
    reply = user.respond("What is your patient number?")
    assert "don't have any reference number" in reply and STOP not in reply


def test_it_accepts_the_change_it_asked_for_and_declines_the_near_miss():
    user = ScriptedUser(script())
    wrong = user.respond("I found your visit on Thursday 12 March at 09:00. Shall I cancel it?")
    assert wrong.startswith("No") and STOP not in wrong
    vague = user.respond("Shall I cancel your visit?")
    assert "which one" in vague.lower() and STOP not in vague
    assert user.respond("I can cancel your visit on Tuesday 10 March at 9am. Shall I go ahead?").startswith("Yes")
    assert STOP in user.respond("Done: your visit on 10 March is cancelled.")


def test_it_declines_another_action():
    user = ScriptedUser(script())
    assert "not what I asked" in user.respond("Would you like me to book a new visit on Tuesday 10 March at 09:00?")


def test_a_question_from_the_agent_is_never_a_reason_to_stop():
    user = ScriptedUser(script())
    for question in ("Is there anything else?", "Do you prefer mornings?", "Could you hold on a second?",
                     "What colour is the sky?"):
        assert STOP not in user.respond(question)


def test_it_insists_once_on_a_refusal_then_accepts():
    user = ScriptedUser(script("refusal"))
    first = user.respond("I'm sorry, I can't cancel it: it already took place.")
    assert STOP not in first and "?" in first
    assert STOP in user.respond("I understand, but I'm afraid I cannot: it is completed.")


def test_a_question_task_ends_when_the_answer_is_said():
    user = ScriptedUser(script("question"))
    assert STOP not in user.respond("Let me look that up for you.")
    assert STOP in user.respond("You still owe 120.50 on that bill.")


def test_it_gives_up_after_the_turn_limit():
    user = ScriptedUser(script(), max_turns=3)
    replies = [user.respond("Hmm.") for _ in range(4)]
    assert STOP not in replies[0] and STOP in replies[3]


def test_replaying_a_conversation_rebuilds_the_same_user():
    agent = ["What is your e-mail?", "Which visit?", "Shall I cancel your visit on 10 March at 09:00?"]
    live = ScriptedUser(script())
    replies = [live.respond(text) for text in agent]
    rebuilt = ScriptedUser.replay(script(), agent[:2])
    assert rebuilt.respond(agent[2]) == replies[2]
    assert rebuilt.given == live.given and rebuilt.confirmed == live.confirmed


def test_it_ends_when_the_agent_reports_the_change_made_in_the_goals_own_words():
    def review_script() -> Script:
        writes = [WriteGoal(2, ["create", "file", "submit", "leave", "post"], [Detail("words", "Evergreen Garden Inn")], [],
                            "leave a stay review about the property Evergreen Garden Inn", "Your stay review is posted.")]
        return Script(kind="write", opening="I'd like to leave a review.", goal="I want to leave a stay review.",
                      facts=[], unknowns=[], writes=writes, answers=[], refusal=None, seed=3)

    for report in ("Your stay review is posted.", "The review has been submitted.", "Your review is now left on the page."):
        user = ScriptedUser(review_script())
        user.respond("I can leave a stay review about the property Evergreen Garden Inn. Shall I go ahead?")
        assert STOP in user.respond(report), report
    user = ScriptedUser(review_script())
    assert STOP not in user.respond("The property Evergreen Garden Inn is popular.")  # no change reported


def test_a_proposal_in_the_goals_own_verb_is_a_proposal():
    writes = [WriteGoal(2, ["create", "send"], [Detail("words", "Urban random")], [],
                        "send a message in your group Urban random", "Your message is sent.")]
    facts = [Fact("group", "It's about my group Urban random.", ["group"], "", "", ["Urban random"])]
    user = ScriptedUser(Script(kind="write", opening="I'd like to send a message.", goal="I want to send a message.",
                               facts=facts, unknowns=[], writes=writes, answers=[], refusal=None, seed=5))
    assert user.respond("I can send a message in your group Urban random. Shall I go ahead?").startswith("Yes")
    assert STOP in user.respond("Your message is sent.")


def _moving_script() -> Script:
    facts = [Fact("email", "It's wen.bianchi42@example.com.", ["email", "e-mail"], "", "", ["wen.bianchi42@example.com"]),
             Fact("when", "The one on Tuesday 10 March at 09:00.", ["which", "when", "date"], "", "",
                  ["2026-03-10T09:00:00Z"]),
             Fact("new_when", "To Friday 13 March at 14:00.", ["move it to", "new time", "instead", "when", "date", "day"],
                  "", "",
                  ["2026-03-13T14:00:00Z"])]
    writes = [WriteGoal(4, ["cancel", "move", "reschedule"], [Detail("date", "2026-03-10"),
                                                              Detail("time", "2026-03-10T09:00:00Z")],
                        [Detail("date", "2026-03-12")], "cancel your visit on Tuesday 10 March at 09:00", ""),
              WriteGoal(5, ["book", "move", "reschedule"], [Detail("date", "2026-03-13"),
                                                            Detail("time", "2026-03-13T14:00:00Z")],
                        [Detail("time", "2026-03-13T16:00:00Z")], "book the visit slot on Friday 13 March at 14:00", "")]
    return Script(kind="write", opening="Hi, I need to move one of my visits to another time.",
                  goal="I want to move my visit on 10 March to 13 March at 14:00.", facts=facts, unknowns=[],
                  writes=writes, seed=7)


def test_it_answers_the_question_its_most_specific_words_ask():
    user = ScriptedUser(_moving_script())
    # "which" also asks for the visit it has; "move it to" asks for the new time only
    assert user.respond("Which slot would you like to move it to?") == "To Friday 13 March at 14:00."
    assert user.respond("And which visit is it, and when is it?") == "The one on Tuesday 10 March at 09:00."


def test_one_message_proposing_both_wanted_changes_is_agreed_for_both_and_a_near_miss_in_it_declined():
    user = ScriptedUser(_moving_script())
    near = user.respond("I can cancel your visit on Tuesday 10 March at 09:00 and book the visit slot on Friday "
                        "13 March at 16:00 instead. Shall I go ahead?")
    assert near.startswith("No") and not user.confirmed, "the booking it would make is the one at 16:00"
    both = user.respond("I can cancel your visit on Tuesday 10 March at 09:00 and book the visit slot on Friday "
                        "13 March at 14:00 in its place. Shall I go ahead?")
    assert both.startswith("Yes") and user.confirmed == {4, 5}


def test_a_new_time_is_asked_for_in_many_words_and_the_current_one_in_others():
    # questions the oracle does not ask, worded as another agent would
    for ask in ("What date and time would you like to move your visit to?", "Which day would you like instead?",
                "Sure, when should I move it to?"):
        assert ScriptedUser(_moving_script()).respond(ask) == "To Friday 13 March at 14:00.", ask
    for ask in ("What is the date and time of your current visit?", "Which visit do you want to move?"):
        assert ScriptedUser(_moving_script()).respond(ask) == "The one on Tuesday 10 March at 09:00.", ask


def _profile_script() -> Script:
    facts = [Fact("email", "It's wen.bianchi42@example.com.", ["email", "e-mail", "mail", "address on", "account"],
                  "", "", ["wen.bianchi42@example.com"]),
             Fact("new_value", "My new e-mail is wen.b@example.org.",
                  ["new", "what should", "change it to", "what is the", "email", "e-mail"], "", "",
                  ["wen.b@example.org"])]
    writes = [WriteGoal(1, ["update", "change"], [Detail("words", "wen.b@example.org")], [],
                        "update your email to wen.b@example.org", "Updated.")]
    return Script(kind="write", opening="Hi, I need to update my e-mail.", goal="I want my e-mail updated.",
                  facts=facts, unknowns=[], writes=writes, seed=7)


def test_a_question_that_says_should_i_asks_for_a_fact_and_is_not_a_proposal():
    user = ScriptedUser(_profile_script())
    assert user.respond("Sure, what e-mail should I change it to?") == "My new e-mail is wen.b@example.org."
    assert user.respond("Could you give me the e-mail address on your account?") == "It's wen.bianchi42@example.com."
    # a question about something the user never mentioned gets no unrelated fact
    assert user.respond("What should the body be?").startswith(("Sorry, I'm not sure", "I'm not sure"))
    assert user.respond("I can update your email to wen.b@example.org. Shall I go ahead?").startswith("Yes")


# -- the user as agents other than the oracle talk to it -------------------------------------------


def test_it_does_not_hang_up_after_the_first_of_two_changes_and_asks_for_the_one_left():
    user = ScriptedUser(_moving_script())
    assert user.respond("I'll cancel your visit on Tuesday 10 March at 09:00 first. Shall I proceed?").startswith("Yes")
    after_one = user.respond("Your visit has been cancelled.")
    assert STOP not in after_one and "book the visit slot on Friday 13 March at 14:00" in after_one
    assert user.respond("Shall I book the visit slot on Friday 13 March at 14:00 for you?").startswith("Yes")
    assert STOP in user.respond("All done! You're booked on Friday 13 March at 14:00.")


def test_a_done_report_that_ends_with_an_offer_ends_the_call_and_ordinary_wordings_count():
    for report in ("Your visit on 10 March has been cancelled successfully! Is there anything else I can help you with?",
                   "Cancellation confirmed. Anything else?", "That's taken care of.", "It's all done.",
                   "I've cancelled it for you."):
        user = ScriptedUser(script())
        user.respond("I can cancel your visit on Tuesday 10 March at 9am. Shall I go ahead?")
        assert STOP in user.respond(report), report


def test_a_proposal_worded_in_many_ways_is_recognized():
    for proposal in ("Just to confirm, you'd like me to cancel your visit on Tuesday 10 March at 09:00?",
                     "I'll cancel the visit on Tuesday, March 10 at 9:00 AM. Is that okay?",
                     "Cancelling your visit on 10 March at 09:00 - confirm?",
                     "Are you sure you want to cancel your visit on 10 March at 09:00? This can't be undone."):
        assert ScriptedUser(script()).respond(proposal).startswith("Yes"), proposal
    # both changes of a move, said as a move
    move = ScriptedUser(_moving_script())
    assert move.respond("I'll move your visit from Tuesday 10 March at 09:00 to Friday 13 March at 14:00. "
                        "Shall I proceed?").startswith("Yes")
    assert move.confirmed == {4, 5}
    assert STOP in move.respond("Your visit has been moved to Friday 13 March at 14:00.")


def test_a_proposal_with_the_near_miss_beside_the_right_one_or_another_way_to_pay_is_declined():
    user = ScriptedUser(script())
    both = user.respond("I'll cancel both visits, on Tuesday 10 March at 09:00 and on Thursday 12 March. OK?")
    assert both.startswith("No") and not user.confirmed
    pay = Script(kind="write", opening="I'd like to pay my bill.", goal="I want to pay my bill from 3 March.",
                 facts=[], unknowns=[], seed=1,
                 writes=[WriteGoal(3, ["pay", "payment", "settle"], [Detail("money", 120.5), Detail("date", "2026-03-03")],
                                   [Detail("words", "card"), Detail("words", "transfer")],
                                   "pay 120.50 by cash on your bill from 3 March", "")])
    assert ScriptedUser(pay).respond("I'll pay 120.50 on your bill from 3 March by card. Shall I?").startswith("No")
    assert ScriptedUser(pay).respond("I'll pay 120.50 on your bill from 3 March in cash. Shall I?").startswith("Yes")


def test_a_refusal_with_an_offer_after_it_is_a_refusal_and_the_question_it_asks_is_in_its_last_words():
    user = ScriptedUser(script("refusal"))
    first = user.respond("That visit already took place, so it can no longer be cancelled. Would you like me to "
                         "check your other visits?")
    assert first in ("Are you sure? It's really important to me.", "Is there really no way? I'd like to get this sorted today.",
                     "Could you check again? I really need this.")
    assert STOP in user.respond("I'm sorry, but it is completed: nothing I can do.")
    # "I found your account" is not a question; the question after it asks for the visit
    assert ScriptedUser(script()).respond("Thanks! I found your account. Which visit is this about?") == \
        "The one on Tuesday 10 March at 09:00."
    assert ScriptedUser(script()).respond("I'll need to verify who I'm speaking with. What's your e-mail?") == \
        "It's wen.bianchi42@example.com."


def _bill_and_visit_script() -> Script:
    """A visit to cancel and a question about a bill, in one call."""
    base = script()
    base.answers = [Answer("money", 120.5, "how much is left on your bill from 3 March", {})]
    base.facts.append(Fact("reason", "Persistent cough.", ["reason", "why", "what for"], "", "", ["Persistent cough"]))
    return base


def test_reports_questions_and_offers_in_one_message_are_each_taken_for_what_they_are():
    move = ScriptedUser(_moving_script())
    assert move.respond("Your visit on Tuesday 10 March at 09:00 is cancelled. Shall I book the visit slot on Friday "
                        "13 March at 14:00?").startswith("Yes")  # the report is noted and the proposal answered
    assert STOP in move.respond("Booked.")
    bullets = ScriptedUser(_moving_script())
    bullets.respond("I'll move your visit from Tuesday 10 March at 09:00 to Friday 13 March at 14:00. Shall I proceed?")
    assert STOP in bullets.respond("All done!\n- Cancelled: visit on Tuesday 10 March at 09:00\n- Booked: Friday 13 March "
                                   "at 14:00\nIs there anything else I can help you with?")
    mixed = ScriptedUser(_bill_and_visit_script())
    mixed.respond("Shall I cancel your visit on Tuesday 10 March at 09:00?")
    assert mixed.respond("Updated: your visit is cancelled.") == "Thanks. Could you also tell me how much is left on my bill from 3 March?"
    assert STOP in mixed.respond("You still owe 120.50. Would you like me to pay it now?")


def test_what_was_found_is_not_a_proposal_and_a_report_on_the_near_miss_is_not_taken():
    user = ScriptedUser(script())
    assert user.respond("I found two visits: Tuesday 10 March and Thursday 12 March. Just to confirm, you'd like me "
                        "to cancel the visit on Tuesday 10 March at 09:00?").startswith("Yes")
    assert user.respond("Your visit on Thursday 12 March is now cancelled.").startswith("No")
    assert ScriptedUser(script()).respond("Cancel your visit on Tuesday 10 March at 09:00?").startswith("Yes")


def test_a_reason_stated_flatly_is_a_refusal_and_the_question_word_points_at_what_is_asked():
    refusal = ScriptedUser(script("refusal"))
    assert refusal.respond("Your visit on Tuesday 10 March already took place.") in INSIST
    # a question is never the refusal, whatever words it shares with the reason
    assert ScriptedUser(script("refusal")).respond("Which visit was it, the one that took place?") not in INSIST
    assert ScriptedUser(_bill_and_visit_script()).respond("What's the reason for the visit?") == "Persistent cough."
    assert ScriptedUser(_profile_script()).respond("What would you like it changed to?") == \
        "My new e-mail is wen.b@example.org."


def test_in_a_two_goal_call_a_plain_done_covers_what_was_agreed_and_a_report_on_the_near_miss_is_refused():
    both = ScriptedUser(_moving_script())
    both.respond("I can cancel your visit on Tuesday 10 March at 09:00 and book the visit slot on Friday 13 March at "
                 "14:00. Shall I go ahead?")
    assert STOP in both.respond("Done, both changes are made.")
    wrong = ScriptedUser(_moving_script())
    wrong.respond("I can cancel your visit on Tuesday 10 March at 09:00 and book the visit slot on Friday 13 March at "
                  "14:00. Shall I go ahead?")
    assert wrong.respond("Your visit on Thursday 12 March is now cancelled.").startswith("No")


def test_a_flat_reason_before_an_offer_is_a_refusal_and_a_found_list_with_an_action_word_is_not_the_proposal():
    refusal = ScriptedUser(script("refusal"))
    assert refusal.respond("I checked: your visit on Tuesday 10 March took place already. Would you like me to help "
                           "with something else?") in INSIST
    user = ScriptedUser(script())
    assert user.respond("I can see two open visits on file: Tuesday 10 March and Thursday 12 March. Shall I cancel the "
                        "visit on Tuesday 10 March at 09:00?").startswith("Yes")


def test_a_reference_it_never_had_is_said_so_and_a_phone_number_is_not_a_reference():
    labelled = script()
    labelled.facts[1].asked_by.append("visit")  # the record's label, as the intents give it
    assert "don't have any reference number" in ScriptedUser(labelled).respond(
        "Do you have your visit reference or customer ID?")
    phone = _profile_script()
    phone.facts[1] = Fact("new_value", "My new number is +1-555-204-4646.", ["new", "phone", "contact number"], "", "",
                          ["+1-555-204-4646"])
    assert ScriptedUser(phone).respond("What is your new contact number?") == "My new number is +1-555-204-4646."
