"""long_context: retrieve (and, in composites, combine) values from a generated document.

The document is a table: a header naming the attribute, then one ``Name value.`` record per
person; the question asks one person's value. The rationale quotes the record, then the
answer copies its value. Difficulty: records (document length).

Why the value sits directly after the name: copying it is then one induction step (find
the earlier occurrence of the current token, copy the token after it), which a small
transformer learns. With prose records (``Kela has 1 coins.``) the token before the value
is the same in every record, so a look-up needs a two-token match; the shipped teacher
never learned that and copied a neighbouring record's value (see docs/world.md).
"""

from __future__ import annotations

from read_distill.types import Item
from read_distill.world.lexicon import CITIES, COLORS, NAMES, PETS, check_difficulty, pick_template, rng_for

CAPABILITY = "long_context"
TEMPLATES = ("lives", "has", "likes", "wears")
FACTOR_RANGES = {"records": (3, 12)}
_RECORDS = ((3, 4), (6, 8), (10, 12))

#: template -> (value pool or None for numbers, document header, question format)
KINDS = {
    "lives": (CITIES, "city of each person", "Where does {n} live?"),
    "has": (None, "coins of each person", "How many coins does {n} have?"),
    "likes": (PETS, "pet each person likes", "What does {n} like?"),
    "wears": (COLORS, "colour each person wears", "What does {n} wear?"),
}


def document(rng, template: str, n_records: int) -> tuple[list[str], dict[str, str]]:
    pool = KINDS[template][0]
    people = rng.sample(NAMES, n_records)
    values = {p: (str(rng.randint(1, 9)) if pool is None else rng.choice(pool)) for p in people}
    return people, values


def record(name: str, value: str) -> str:
    return f"{name} {value}."


def document_text(template: str, people: list[str], values: dict[str, str]) -> str:
    """``Document (<header>): Name value. Name value. ...``"""
    return f"Document ({KINDS[template][1]}): " + " ".join(record(p, values[p]) for p in people)


def generate(seed: int, difficulty: str = "medium", template: str | None = None) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for(CAPABILITY, seed)
    template = pick_template(rng, TEMPLATES, template)
    n_records = rng.randint(*_RECORDS[d])
    people, values = document(rng, template, n_records)
    target = rng.choice(people)
    prompt = f"{document_text(template, people, values)}\nQ: {KINDS[template][2].format(n=target)}\nA:"
    grader = "numeric" if template == "has" else "exact"
    rationale = record(target, values[target])
    return Item(prompt, values[target], rationale, {"records": float(n_records)}, CAPABILITY, template, grader)
