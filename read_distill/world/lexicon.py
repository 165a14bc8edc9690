"""The micro-world's fixed vocabulary: entities, the knowledge base, the second language.

Everything here is a pure function of fixed constants (``KB_SEED``), so every build of the
world, whatever its seed, shares the same facts and the same language; the world seed only
decides model initialisation and data order. Word pools are small on purpose: every word
becomes one BPE token, so the skills are lookups, copies and short algorithms a small
transformer can learn, and different capabilities share words, formats and sub-skills
(that sharing is what makes distilling one capability move the others).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from read_distill.graders import ANSWER_MARKER

KB_SEED = 1729

#: Fictional entities of the knowledge base (also the people of documents and puzzles).
NAMES: tuple[str, ...] = (
    "Bori", "Kela", "Tamo", "Vesa", "Lumi", "Dara", "Niko", "Pela",
    "Rilo", "Suna", "Taki", "Mira", "Zeno", "Fara", "Hoku", "Jalo",
)
CITIES: tuple[str, ...] = ("Ostra", "Velm", "Karth", "Lune", "Brisa", "Dorn", "Emmer", "Fjel")
COLORS: tuple[str, ...] = ("red", "blue", "green", "gold", "grey", "pink", "black", "white")
PETS: tuple[str, ...] = ("cat", "dog", "owl", "fox", "frog", "crab", "goat", "hen")
SIZES: tuple[str, ...] = ("big", "small", "old", "young")
VERBS: tuple[str, ...] = ("sees", "likes", "helps", "finds", "chases")
OBJECTS: tuple[str, ...] = ("apples", "coins", "books", "stones", "cups", "keys")

#: Knowledge-base attributes of every entity (``friend`` is another entity).
ATTRIBUTES: tuple[str, ...] = ("city", "color", "pet", "friend")


@dataclass(frozen=True)
class Entity:
    name: str
    city: str
    color: str
    pet: str
    friend: str

    def get(self, attr: str) -> str:
        return getattr(self, attr)


@lru_cache(maxsize=1)
def knowledge_base() -> dict[str, Entity]:
    """The fixed seeded knowledge base: name -> Entity (friend is a single 16-cycle)."""
    rng = random.Random(KB_SEED)
    order = list(NAMES)
    rng.shuffle(order)
    friend = {order[i]: order[(i + 1) % len(order)] for i in range(len(order))}
    kb = {}
    for n in NAMES:
        kb[n] = Entity(n, rng.choice(CITIES), rng.choice(COLORS), rng.choice(PETS), friend[n])
    return kb


# -- the second language ("Vel") ----------------------------------------------------------

_ONSETS = ("b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z")
_VOWELS = ("a", "e", "i", "o", "u")


@lru_cache(maxsize=1)
def vel_lexicon() -> dict[str, str]:
    """English word -> Vel word (two-syllable, distinct, lowercase, fixed by ``KB_SEED``)."""
    rng = random.Random(KB_SEED + 1)
    # long_context's relations come last: words are drawn in order, so appending keeps every
    # earlier word's Vel word (and the multilingual items built on them) unchanged
    english = [*COLORS, *PETS, *SIZES, *VERBS, "pet", "color", "city", "friend", "what", "of", "is",
               "neighbour", "guest", "partner", "coach"]
    used: set[str] = set()
    lex: dict[str, str] = {}
    taken = {w.lower() for w in (*NAMES, *CITIES, *english, *OBJECTS)}
    for w in english:
        while True:
            cand = rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_ONSETS) + rng.choice(_VOWELS)
            if cand not in used and cand not in taken:
                used.add(cand)
                lex[w] = cand
                break
    return lex


def vel_sentence(subj: list[str], verb: str, obj: list[str]) -> str:
    """Vel word order: subject, object, verb (SOV); adjectives follow their noun.

    ``subj`` and ``obj`` are English noun phrases ``[adj..., noun]``.
    """
    lex = vel_lexicon()

    def np(phrase: list[str]) -> list[str]:
        return [lex[phrase[-1]], *[lex[a] for a in phrase[:-1]]]

    return " ".join([*np(subj), *np(obj), lex[verb]])


def english_sentence(subj: list[str], verb: str, obj: list[str]) -> str:
    return " ".join([*subj, verb, *obj])


# -- helpers shared by generators ----------------------------------------------------------

DIFFICULTY_INDEX = {"easy": 0, "medium": 1, "hard": 2}


def check_difficulty(difficulty: str) -> int:
    try:
        return DIFFICULTY_INDEX[difficulty]
    except KeyError:
        raise ValueError(f"difficulty must be one of easy/medium/hard, got {difficulty!r}") from None


def rng_for(capability: str, seed: int) -> random.Random:
    """A private RNG per (capability, seed): items never depend on global state."""
    return random.Random(f"{capability}:{int(seed)}")


def pick_template(rng: random.Random, templates: tuple[str, ...], template: str | None) -> str:
    if template is None:
        return rng.choice(templates)
    if template not in templates:
        raise ValueError(f"unknown template {template!r}; expected one of {templates}")
    return template


def completion_text(rationale: str, answer: str, signal: str = "cot") -> str:
    """The world's completion format: ``" <rationale> #### <answer>"`` (``resp``: no rationale)."""
    if signal == "cot" and rationale:
        return f" {rationale} {ANSWER_MARKER} {answer}"
    return f" {ANSWER_MARKER} {answer}"
