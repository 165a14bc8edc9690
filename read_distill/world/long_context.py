"""long_context: retrieve (and, in composites, combine) values from a generated document.

The document lists one record per person; the question asks one person's value. The
rationale quotes the record, then the answer copies its value. Difficulty: records
(document length).
"""

from __future__ import annotations

from read_distill.types import Item
from read_distill.world.lexicon import CITIES, COLORS, NAMES, PETS, check_difficulty, pick_template, rng_for

CAPABILITY = "long_context"
TEMPLATES = ("lives", "has", "likes", "wears")
FACTOR_RANGES = {"records": (3, 12)}
_RECORDS = ((3, 4), (6, 8), (10, 12))

#: template -> (value pool or None for numbers, record format, question format)
KINDS = {
    "lives": (CITIES, "{n} lives in {v}.", "Where does {n} live?"),
    "has": (None, "{n} has {v} coins.", "How many coins does {n} have?"),
    "likes": (PETS, "{n} likes the {v}.", "What does {n} like?"),
    "wears": (COLORS, "{n} wears {v}.", "What does {n} wear?"),
}


def document(rng, template: str, n_records: int) -> tuple[list[str], dict[str, str]]:
    pool, fmt, _ = KINDS[template]
    people = rng.sample(NAMES, n_records)
    values = {p: (str(rng.randint(1, 9)) if pool is None else rng.choice(pool)) for p in people}
    return people, values


def record(template: str, name: str, value: str) -> str:
    return KINDS[template][1].format(n=name, v=value)


def generate(seed: int, difficulty: str = "medium", template: str | None = None) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for(CAPABILITY, seed)
    template = pick_template(rng, TEMPLATES, template)
    n_records = rng.randint(*_RECORDS[d])
    people, values = document(rng, template, n_records)
    target = rng.choice(people)
    doc = " ".join(record(template, p, values[p]) for p in people)
    prompt = f"Document: {doc}\nQ: {KINDS[template][2].format(n=target)}\nA:"
    grader = "numeric" if template == "has" else "exact"
    rationale = record(template, target, values[target])
    return Item(prompt, values[target], rationale, {"records": float(n_records)}, CAPABILITY, template, grader)
