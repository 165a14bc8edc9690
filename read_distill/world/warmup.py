"""The teacher's look-up warm-up: recall every record of a document, in a shuffled order.

``long_context`` and ``reasoning`` (and the composites built on them) need one skill: find
a name earlier in the prompt and copy the token after it (an induction head). Trained only
on their own items, a small transformer gets one look-up per example and sits on a
plateau ("copy *a* value of the right type") for millions of tokens. A recall item asks
for every record of a document or fact list, each a look-up, so the training signal per
example is the number of records. With it (and the teacher's init std 0.1) the shipped
teacher learned both look-ups (reasoning 86 %, long_context 100 %; docs/world.md). These
items are teacher training data only: no capability, task card or probe uses them.
"""

from __future__ import annotations

import random

from read_distill.world import long_context as lc
from read_distill.world import reasoning as rsn


def recall_pair(seed: int) -> tuple[str, str]:
    """(prompt, completion): a long_context document or a reasoning fact list, and every
    record of it, asked and answered in a shuffled order."""
    rng = random.Random(f"recall:{seed}")
    if rng.random() < 0.5:
        template = rng.choice(lc.TEMPLATES)
        people, values = lc.document(rng, rng.randint(3, 12))
        text = lc.document_text(template, people, values)
        records = {p: lc.record(p, values[p]) for p in people}
    else:
        template = rng.choice(rsn.TEMPLATES)
        hops = rng.randint(1, 3)
        text = rsn.build(rng, template, hops, rng.randint(1, 3))[0].split("\nQ:")[0]
        pairs = [f.strip() for f in text.split(":", 1)[1].split(".") if f.strip()]
        records = {p.split()[0]: f"{p}." for p in pairs}
    asked = rng.sample(list(records), len(records))
    prompt = f"{text}\nQ: Records of {', '.join(asked)}?\nA:"
    return prompt, " " + " ".join(records[a] for a in asked)
