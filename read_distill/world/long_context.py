"""long_context: retrieve (and, in composites, use) a value from a generated document.

The document is a table of one relation between people: a header naming the relation,
then one ``Name value.`` record per person, where the value is another person; the
question asks one person's value. The rationale quotes the record, then the answer
copies its value. Difficulty: records (document length).

Why the value sits directly after the name: copying it is then one induction step (find
the earlier occurrence of the current token, copy the token after it), which a small
transformer learns. Why the values are people: in from-scratch probes of the teacher's
architecture (``docs/lookup_probe.py``, docs/world.md) that look-up appeared within
300-400 k label tokens when values were drawn from the same pool as the keys, and not
within 600 k when they never occur as keys (cities, digits, or a disjoint half of the
names) -- which is why an earlier teacher answered city/colour/digit tables with a
*random* record's value while it walked ``reasoning``'s name-to-name facts.
"""

from __future__ import annotations

from read_distill.types import Item
from read_distill.world.lexicon import NAMES, check_difficulty, pick_template, rng_for

CAPABILITY = "long_context"
TEMPLATES = ("neighbour", "guest", "partner", "coach")
FACTOR_RANGES = {"records": (3, 12)}
_RECORDS = ((3, 4), (6, 8), (10, 12))

#: template (the relation) -> (document header, question format)
KINDS = {
    "neighbour": ("neighbour of each person", "Who lives next to {n}?"),
    "guest": ("guest of each person", "Who visits {n}?"),
    "partner": ("partner of each person", "Who is the partner of {n}?"),
    "coach": ("coach of each person", "Who coaches {n}?"),
}


def document(rng, n_records: int) -> tuple[list[str], dict[str, str]]:
    """``n_records`` distinct people and each one's value (another person)."""
    people = rng.sample(NAMES, n_records)
    values = {p: rng.choice([n for n in NAMES if n != p]) for p in people}
    return people, values


def table(rng, difficulty: int) -> tuple[list[str], dict[str, str], str]:
    """A document's people and values for a difficulty index, and the person asked about
    (shared by this capability and the composites built on it)."""
    people, values = document(rng, rng.randint(*_RECORDS[difficulty]))
    return people, values, rng.choice(people)


def record(name: str, value: str) -> str:
    return f"{name} {value}."


def document_text(template: str, people: list[str], values: dict[str, str]) -> str:
    """``Document (<header>): Name value. Name value. ...``"""
    return f"Document ({KINDS[template][0]}): " + " ".join(record(p, values[p]) for p in people)


def generate(seed: int, difficulty: str = "medium", template: str | None = None) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for(CAPABILITY, seed)
    template = pick_template(rng, TEMPLATES, template)
    people, values, target = table(rng, d)
    prompt = f"{document_text(template, people, values)}\nQ: {KINDS[template][1].format(n=target)}\nA:"
    return Item(prompt, values[target], record(target, values[target]), {"records": float(len(people))},
                CAPABILITY, template, "exact")
