"""Held-out cosines of the learned requirement identifier on one intervention collection,
for two held-out splits × the two losses (a gain per card, the paper's a = 1) × two sets
of card texts: the world's cards as shipped, and the eight cap_* cards with descriptions
of their items instead of "The <capability> capability alone." (the composites' texts are
never changed). Nothing is saved; `read-distill requirement train` is the command.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/requirement_variants.py runs/requirement-micro [--all]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from read_distill.requirement.encoder import DEFAULT_ENCODER
from read_distill.requirement.model import TrainSettings, train
from read_distill.tasks import load_card

#: The cap_* cards described by what their items are (description, input, output format).
DESCRIBED = {
    "cap_general_knowledge": ("Answer a question about a fact of the world's knowledge base: a person's pet, colour, city or friend, "
                              "possibly through a chain of friends.",
                              "A question about a person of the knowledge base.", "The look-up steps, then the fact after '####'."),
    "cap_steerability": ("Rewrite a few words under output constraints: reverse order, upper case, joined with commas or dashes, "
                         "in brackets or as JSON with a given key.",
                         "Words and the formatting instructions.", "Each step, then the formatted words after '####'."),
    "cap_reasoning": ("Answer a multi-hop question from given facts: family relations, orderings of people, or chains of 'all A are B'.",
                      "Facts and a question.", "The chain of facts, then the answer after '####'."),
    "cap_math": ("Compute the result of a few additions and subtractions.", "A starting number and arithmetic steps.",
                 "Each step, then the number after '####'."),
    "cap_code": ("Tell what a short Python program prints.", "A few lines of Python code and a question.",
                 "The trace, then the printed value after '####'."),
    "cap_tool_use": ("Turn a request into a call of one of the listed tools.", "A tool schema line and a request.",
                     "The chosen tool, then one Python-style call with keyword arguments, after '####'."),
    "cap_long_context": ("Find who is related to a person in a document that lists relations between people.",
                         "A document of relations between people and a question about one of them.",
                         "The matching record, then the name after '####'."),
    "cap_multilingual": ("Translate a short sentence between English and Vel, the world's other language.", "A sentence in English or in Vel.",
                         "Word-by-word glosses, then the translation after '####'."),
}
SPLITS = (("long_tool", "lc_vel"), ("kb_tool", "lc_vel"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("collection", type=Path)
    p.add_argument("--all", action="store_true", help="every card's line, not only the held-out ones")
    args = p.parse_args()
    described = {n: load_card(n).model_copy(update=dict(zip(("description", "input_format", "output_format"), t, strict=True)))
                 for n, t in DESCRIBED.items()}
    for holdout in SPLITS:
        for gain in ("card", "none"):
            for texts, cards in (("shipped", None), ("described", described)):
                result = train([args.collection], None, list(holdout), DEFAULT_ENCODER, TrainSettings(gain=gain), cards=cards)
                report = result["report"]
                train_cos = [e["cosine_learned"] for e in report.values() if e["split"] == "train"]
                print(f"holdout {'+'.join(holdout)}, gain {gain}, {texts} texts: "
                      + ", ".join(f"{n} {report[n]['cosine_learned']:.3f} (rows alone {report[n]['cosine_best_simplex']:.3f})" for n in holdout)
                      + f"; training cards mean {np.mean(train_cos):.3f}")
                for n, e in report.items():
                    if args.all or n in holdout:
                        learned = " ".join(f"{c[:4]}={x:.2f}" for c, x in e["learned"].items() if x >= 0.05)
                        print(f"    {n:<22} {e['split']:<9} cos {e.get('cosine_learned', float('nan')):.3f}  "
                              f"rows alone {e.get('cosine_best_simplex', float('nan')):.3f}  {learned}")


if __name__ == "__main__":
    main()
