"""Generated names of things: a noun of their kind with the qualifier that kind uses, and near
misses that differ only in that qualifier (what a search by the shared word finds both by)."""

import random

import pytest

from environments.synthesis.values import TITLE_NOUNS, TITLE_QUALIFIERS, make_title, title_twin


@pytest.mark.parametrize("kind", sorted(TITLE_NOUNS))
def test_a_title_is_a_noun_of_its_kind_and_its_twin_differs_only_in_the_qualifier(kind):
    rng = random.Random(kind)
    for _ in range(20):
        name = make_title(kind, rng)
        noun = next(n for n in sorted(TITLE_NOUNS[kind], key=len, reverse=True) if n in name)
        twinned = title_twin(name, rng)
        if kind in TITLE_QUALIFIERS and not TITLE_QUALIFIERS[kind].words:
            assert name == noun and twinned is None  # a pet is just called "Biscuit"
            continue
        assert twinned is not None, name
        twin, shared = twinned
        assert twin != name and noun in twin
        assert shared.lower() in name.lower() and shared.lower() in twin.lower()


def test_the_qualifier_is_the_one_its_kind_uses():
    rng = random.Random(3)
    assert make_title("drug", rng).endswith(" mg")
    assert make_title("channel", rng).split("-")[0] in TITLE_QUALIFIERS["channel"].words
    job = make_title("job", rng)
    assert job.split()[0] in TITLE_QUALIFIERS["job"].words and job.split(" ", 1)[1] in TITLE_NOUNS["job"]
    assert title_twin("Harbor Works", rng)[1] == "Works" and title_twin("Biscuit", rng) is None
    twin, shared = title_twin("Lakeside Spa Retreat", rng)  # a name from elsewhere: its longest word stays
    assert shared == "Lakeside" and twin.startswith("Lakeside ") and twin != "Lakeside Spa Retreat"
