"""reasoning: multi-hop relational questions over facts stated in the prompt.

Four relations (parent up, parent down, sequence order, syllogism); the answer needs
``hops`` chained inferences, with distractor facts from an unrelated chain. The rationale
walks the chain. Difficulty: hops and distractors.
"""

from __future__ import annotations

from read_distill.types import Item
from read_distill.world.lexicon import NAMES, check_difficulty, pick_template, rng_for

CAPABILITY = "reasoning"
TEMPLATES = ("kin_up", "kin_down", "order", "syllogism")
FACTOR_RANGES = {"hops": (1, 3), "distractors": (1, 3)}
KINDS = ("blims", "vorks", "tazes", "dups", "quells", "frins", "gorps", "snarks", "wimps", "yarns")
_UP = {1: "parent", 2: "grandparent", 3: "great-grandparent"}
_DOWN = {1: "child", 2: "grandchild", 3: "great-grandchild"}
_AFTER = {1: "one", 2: "two", 3: "three"}


#: template -> the document header that says what a fact ``A B.`` means
HEADERS = {
    "kin_up": "Facts (child, then parent):",
    "kin_down": "Facts (parent, then child):",
    "order": "Facts (one, then the one right after it):",
    "syllogism": "Facts (all A are B):",
}


def build(rng, template: str, hops: int, distractors: int) -> tuple[str, str, str]:
    """(question text with facts, answer, rationale).

    Every fact is written ``A B.`` under a header that says what the pair means, and the
    rationale is the chain walked from the question's name (``Kela Dorn Bel.``): each step
    copies the name that follows the current one in some fact, one induction step, and the
    walk ends where no fact continues it. (Prose facts such as ``Dorn is the parent of
    Kela.`` put the answer *before* the name it is looked up by, which the shipped
    teacher never learned; see docs/world.md.)
    """
    pool = KINDS if template == "syllogism" else NAMES
    chain = rng.sample(pool, hops + 1 + distractors + 1)
    main, other = chain[: hops + 1], chain[hops + 1 :]
    pairs = [(main[i], main[i + 1]) for i in range(hops)]
    dpairs = [(other[i], other[i + 1]) for i in range(distractors)]
    facts = [f"{a} {b}." for a, b in pairs + dpairs]
    if template == "kin_up":
        q = f"Who is the {_UP[hops]} of {main[0]}?"
        ans = main[-1]
    elif template == "kin_down":
        q = f"Who is the {_DOWN[hops]} of {main[0]}?"
        ans = main[-1]
    elif template == "order":
        q = f"Who comes {_AFTER[hops]} after {main[0]}?"
        ans = main[-1]
    else:
        yes = rng.random() < 0.5
        target = main[-1] if yes else other[-1]
        q = f"Are all {main[0]} {target}?"
        ans = "yes" if yes else "no"
    rng.shuffle(facts)
    return HEADERS[template] + " " + " ".join(facts) + "\nQ: " + q, ans, " ".join(main) + "."


def generate(seed: int, difficulty: str = "medium", template: str | None = None) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for(CAPABILITY, seed)
    template = pick_template(rng, TEMPLATES, template)
    hops, distractors = d + 1, d + 1
    text, answer, rationale = build(rng, template, hops, distractors)
    factors = {"hops": float(hops), "distractors": float(distractors)}
    return Item(text + "\nA:", answer, rationale, factors, CAPABILITY, template, "exact")
