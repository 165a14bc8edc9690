"""multilingual: the world's second language, Vel (seeded lexicon, SOV, adjectives after nouns).

Translation both ways, of sentences and of word lists. The rationale glosses each word
(``cat=mira``) in output order. Difficulty: number of words.
"""

from __future__ import annotations

from read_distill.types import Item
from read_distill.world.lexicon import (
    COLORS,
    PETS,
    SIZES,
    VERBS,
    check_difficulty,
    english_sentence,
    pick_template,
    rng_for,
    vel_lexicon,
    vel_sentence,
)

CAPABILITY = "multilingual"
TEMPLATES = ("to_vel", "from_vel", "words_to_vel", "words_from_vel")
FACTOR_RANGES = {"words": (2, 5)}
_ADJ = (*COLORS, *SIZES)


def _np(rng, n_adj: int) -> list[str]:
    return [*rng.sample(_ADJ, n_adj), rng.choice(PETS)]


def generate(seed: int, difficulty: str = "medium", template: str | None = None) -> Item:
    d = check_difficulty(difficulty)
    rng = rng_for(CAPABILITY, seed)
    template = pick_template(rng, TEMPLATES, template)
    lex = vel_lexicon()
    inv = {v: k for k, v in lex.items()}
    if template in ("to_vel", "from_vel"):
        # easy: noun verb noun; medium: one adjective; hard: two adjectives
        adj_s = 1 if d >= 1 else 0
        adj_o = 1 if d >= 2 else 0
        subj, obj, verb = _np(rng, adj_s), _np(rng, adj_o), rng.choice(VERBS)
        en, vel = english_sentence(subj, verb, obj), vel_sentence(subj, verb, obj)
        n_words = len(en.split())
    else:
        n_words = d + 2
        words = rng.sample((*_ADJ, *PETS), n_words)
        en, vel = " ".join(words), " ".join(lex[w] for w in words)
    if template in ("to_vel", "words_to_vel"):
        src, answer = en, vel
        gloss = [f"{inv[v]}={v}" for v in vel.split()]
        prompt = f"Translate to Vel: {src}\nA:" if template == "to_vel" else f"Vel words for: {src}\nA:"
    else:
        src, answer = vel, en
        gloss = [f"{lex[e]}={e}" for e in en.split()]
        prompt = f"Translate from Vel: {src}\nA:" if template == "from_vel" else f"English words for: {src}\nA:"
    return Item(prompt, answer, " ".join(gloss), {"words": float(n_words)}, CAPABILITY, template, "exact")
