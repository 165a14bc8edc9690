"""What the shipped template pools compute: reference answers, derived prompt text,
difficulty factors, and the draws that depend on earlier values (docs/method.md §4).

A pool row names one of :data:`FUNCTIONS` in its ``compute`` field. The function gets ``s``,
the row's slot values by name, and ``rng``, the template's seeded ``random.Random`` after the
slots were drawn; it returns named values that the row's text, answer and factors read like
slots. A computed difficulty factor is returned under the factor's own name. Functions are
grouped by capability in pool order, after the helpers they share.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from functools import partial
from typing import Any

Values = dict[str, Any]


def lettered(options: list[Any]) -> str:
    """``A. x`` / ``B. y`` lines of a multiple-choice question."""
    return "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(options))


def multiple_choice(correct: Any, candidates: list[Any], pos: int, n_options: int) -> Values:
    """``n_options`` lettered options: ``correct`` at ``pos``, the others the first candidates
    that differ from it. Draw ``n_options`` candidates, so ``n_options - 1`` of them remain."""
    wrong = [c for c in candidates if c != correct][: n_options - 1]
    return {"options": lettered(wrong[:pos] + [correct] + wrong[pos:]), "answer": "ABCDE"[pos]}


def call(tool: str, **args: Any) -> str:
    """A tool call in Python syntax with literal arguments: ``tool(a=1, b='x')``."""
    return f"{tool}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def as_json(value: Any) -> str:
    """One-line JSON, non-ASCII kept as is."""
    return json.dumps(value, ensure_ascii=False)


def requirements(s: Values, rng: random.Random, base: int = 0) -> Values:
    """`` Requirements: a; b.`` after an instruction (nothing when ``reqs`` is empty), and the
    constraint count: the drawn requirements plus the ``base`` ones the instruction states."""
    reqs = s["reqs"]
    return {"req_text": " Requirements: " + "; ".join(reqs) + "." if reqs else "", "constraints": base + len(reqs)}


# == code ====================================================================================


def sum_list(s: Values, rng: random.Random) -> Values:
    return {"answer": sum(s["xs"])}


def len_times(s: Values, rng: random.Random) -> Values:
    return {"elements": len(s["w"]), "answer": len(s["w"]) * s["k"]}


def sorted_index(s: Values, rng: random.Random) -> Values:
    return {"answer": sorted(s["xs"])[s["i"]]}


def reverse_upper(s: Values, rng: random.Random) -> Values:
    return {"elements": len(s["w"]), "answer": s["w"][::-1].upper()}


def loop_filter_sum(s: Values, rng: random.Random) -> Values:
    a, b, m = s["a"], s["a"] + s["span"], s["m"]
    return {"b": b, "answer": sum(i for i in range(a, b) if i % m == 0)}


def div_mod(s: Values, rng: random.Random) -> Values:
    """What ``print(a // b, a % b)`` (or C's ``printf`` of ``/`` and ``%``) shows for positive numbers."""
    return {"answer": f"{s['a'] // s['b']} {s['a'] % s['b']}"}


def listcomp(s: Values, rng: random.Random) -> Values:
    return {"answer": str([x * s["k"] for x in range(s["n"]) if x % 2 == 0])}


def dict_update(s: Values, rng: random.Random) -> Values:
    return {"answer": (s["x"] + s["z"]) * 3 + s["y"]}


def count_char(s: Values, rng: random.Random) -> Values:
    return {"elements": len(s["phrase"].split()), "answer": s["phrase"].lower().count(s["ch"])}


def factorial(s: Values, rng: random.Random) -> Values:
    return {"answer": math.factorial(s["n"])}


def fibonacci(s: Values, rng: random.Random) -> Values:
    a, b = 0, 1
    for _ in range(s["n"]):
        a, b = b, a + b
    return {"answer": a}


def sets(s: Values, rng: random.Random) -> Values:
    a, b = set(s["xs"]), set(s["ys"])
    return {"answer": f"{len(a & b)} {len(a | b)}"}


def slicing(s: Values, rng: random.Random) -> Values:
    """Slice bounds inside ``range(n)``: a start in its first half, a stop after the start."""
    n = s["n"]
    start = rng.randint(0, n // 2)
    stop = rng.randint(start + 1, n)
    step = rng.randint(1, 3)
    return {"start": start, "stop": stop, "step": step, "answer": str(list(range(n))[start:stop:step])}


def sort_by_len(s: Values, rng: random.Random) -> Values:
    words = s["ws"]
    return {"words": ", ".join(repr(w) for w in words), "answer": "-".join(sorted(words, key=len))}


def collatz(s: Values, rng: random.Random) -> Values:
    n, steps = s["n"], 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return {"elements": 5 * len(str(steps)), "answer": steps}


def shifts(s: Values, rng: random.Random) -> Values:
    return {"answer": f"{s['a'] << s['b']} {s['a'] >> 1}"}


def vowels(s: Values, rng: random.Random) -> Values:
    return {"elements": len(s["w"]), "answer": sum(ch in "aeiou" for ch in s["w"])}


def js_output(s: Values, rng: random.Random) -> Values:
    return {"answer": sum(x * s["k"] > s["th"] for x in s["xs"])}


def expr_sum_squares(s: Values, rng: random.Random) -> Values:
    n = s["n"]
    return {"elements": 4 * len(str(n)), "answer": n * (n + 1) * (2 * n + 1) // 6}


def expr_digit_product(s: Values, rng: random.Random) -> Values:
    return {"answer": math.prod(int(ch) for ch in str(s["num"]))}


def expr_count_multiples(s: Values, rng: random.Random) -> Values:
    a, b, m = s["a"], s["a"] + s["span"], s["m"]
    return {"b": b, "elements": 4 * len(str(s["span"])), "answer": b // m - (a - 1) // m}


def complexity_mc(s: Values, rng: random.Random) -> Values:
    return multiple_choice(s["rec"]["a"], s["opts"], s["pos"], 4)


# == general_knowledge =======================================================================


def capital_mc(s: Values, rng: random.Random) -> Values:
    return multiple_choice(s["rec"]["capital"], s["raw"], s["pos"], s["m"])


def author_mc(s: Values, rng: random.Random) -> Values:
    return multiple_choice(s["work"]["author"], s["raw"], s["pos"], s["m"])


def painter_mc(s: Values, rng: random.Random) -> Values:
    return multiple_choice(s["work"]["painter"], s["raw"], s["pos"], s["m"])


def event_gap(s: Values, rng: random.Random) -> Values:
    a, b = s["events"]
    return {"obscurity": max(a["rank"], b["rank"]), "answer": abs(a["year"] - b["year"])}


def event_order(s: Values, rng: random.Random) -> Values:
    a, b = s["events"]
    return {"obscurity": max(a["rank"], b["rank"]), "answer": a["event"] if a["year"] < b["year"] else b["event"]}


def continent_mc(s: Values, rng: random.Random) -> Values:
    return multiple_choice(s["place"]["continent"], s["raw"], s["pos"], s["m"])


def two_capitals(s: Values, rng: random.Random) -> Values:
    return {"obscurity": max(s["a"]["rank"], s["b"]["rank"])}


def true_false(s: Values, rng: random.Random) -> Values:
    return {"obscurity": len(s["rec"]["s"]) / 10}


def geo_feature(s: Values, rng: random.Random) -> Values:
    return {"obscurity": len(s["rec"]["a"])}


def largest(s: Values, rng: random.Random) -> Values:
    return {"obscurity": len(s["rec"]["w"]) / 5}


def language_of(s: Values, rng: random.Random) -> Values:
    return {"obscurity": len(s["rec"]["c"]) / 3}


def odd_one_out(s: Values, rng: random.Random) -> Values:
    members, pos = s["rec"]["in"], s["pos"]
    return {"items": ", ".join(members[:pos] + [s["rec"]["out"]] + members[pos:])}


# == long_context ============================================================================

#: Filler sentences are "<subject> <predicate> <tail>.", drawn with repeats.
FILLER_SUBJECTS = (
    "The committee",
    "Our regional office",
    "The maintenance crew",
    "A visiting researcher",
    "The finance team",
    "The night shift",
    "The museum staff",
    "A local reporter",
    "The project lead",
    "The logistics partner",
    "The city council",
    "The support desk",
)
FILLER_PREDICATES = (
    "reviewed the quarterly figures",
    "discussed the new parking rules",
    "repainted the east corridor",
    "tested the backup generators",
    "updated the visitor guidelines",
    "reorganised the archive shelves",
    "postponed the annual picnic",
    "ordered replacement chairs",
    "met with the suppliers",
    "photographed the renovated lobby",
    "checked the fire exits",
    "drafted a note about recycling",
)
FILLER_TAILS = (
    "on Monday morning",
    "after a long delay",
    "without any issues",
    "during the storm",
    "before the holiday",
    "as planned",
    "late in the afternoon",
    "for the second time this year",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def document(facts: list[str], n: int, rng: random.Random) -> str:
    """``facts``, in order, at random places among ``n`` filler sentences."""
    subjects, predicates, tails = (
        rng.choices(words, k=n) for words in (FILLER_SUBJECTS, FILLER_PREDICATES, FILLER_TAILS)
    )
    filler = [f"{a} {b} {c}." for a, b, c in zip(subjects, predicates, tails, strict=True)]
    # Each fact goes in front of filler sentence number ``cut``, one of 64 evenly spread places.
    cuts = sorted(k * (n + 1) // 64 for k in rng.sample(range(64), len(facts)))
    sentences, start = [], 0
    for cut, fact in zip(cuts, facts, strict=True):
        sentences += filler[start:cut] + [fact]
        start = cut
    return " ".join(sentences + filler[start:])


def _document(facts: list[str], s: Values, rng: random.Random, **values: Any) -> Values:
    """The document of ``facts`` with the factor counting them, plus ``values``."""
    return {"doc": document(facts, s["n"], rng), "facts": len(facts), **values}


# The numbers of one document's facts step through their range from a drawn start, by a
# stride that keeps them apart, so no two facts give the same answer.


def vault_code(s: Values, rng: random.Random) -> Values:
    vaults = s["vs"]
    codes = [1000 + (s["c0"] + 4127 * j) % 9000 for j in range(len(vaults))]
    facts = [f"The access code for the {v} vault is {c}." for v, c in zip(vaults, codes, strict=True)]
    return _document(facts, s, rng, target=vaults[s["q"]], answer=str(codes[s["q"]]))


def room(s: Values, rng: random.Random) -> Values:
    people = s["ps"]
    rooms = [100 + (s["r0"] + 211 * j) % 899 for j in range(len(people))]
    facts = [f"{p} has moved to room {r}." for p, r in zip(people, rooms, strict=True)]
    return _document(facts, s, rng, who=people[s["q"]], answer=str(rooms[s["q"]]))


def event_date(s: Values, rng: random.Random) -> Values:
    events, days, months = s["evs"], s["days"], s["mon"]
    facts = [f"{e[0].upper()}{e[1:]} is scheduled for {m} {d}." for e, d, m in zip(events, days, months, strict=True)]
    q = s["q"]
    return _document(facts, s, rng, ev=events[q], answer=f"{months[q]} {days[q]}")


def sum_two(s: Values, rng: random.Random) -> Values:
    stores = s["ws"]
    crates = [10 + (s["q0"] + 389 * j) % 989 for j in range(len(stores))]
    facts = [f"The {w} warehouse holds {c} crates." for w, c in zip(stores, crates, strict=True)]
    return _document(facts, s, rng, answer=str(crates[0] + crates[1]))


def compare_scores(s: Values, rng: random.Random) -> Values:
    people, scores = s["ps"], s["sc"]
    facts = [f"{p} scored {sc} points in the final round." for p, sc in zip(people, scores, strict=True)]
    return _document(facts, s, rng, answer=people[0] if scores[0] > scores[1] else people[1])


def count_kites(s: Values, rng: random.Random) -> Values:
    return _document(["A bright red kite was seen above the car park."] * s["m"], s, rng, answer=str(s["m"]))


def last_city(s: Values, rng: random.Random) -> Values:
    return _document([f"A shipment was sent to {c}." for c in s["cs"]], s, rng, answer=s["cs"][-1])


def first_city(s: Values, rng: random.Random) -> Values:
    return _document([f"A delegation arrived from {c}." for c in s["cs"]], s, rng, answer=s["cs"][0])


def distinct_cities(s: Values, rng: random.Random) -> Values:
    """Each city once, then ``rep`` (positions taken modulo the cities) repeated."""
    cities = s["cs"]
    mentions = cities + [cities[i % len(cities)] for i in s["rep"]]
    facts = [f"The newsletter featured {c}." for c in mentions]
    return _document(facts, s, rng, hops=len(mentions), answer=str(len(cities)))


def password(s: Values, rng: random.Random) -> Values:
    pw = s["pw"]
    facts = [f"The wifi password was set to {pw[0]}."]
    facts += [
        f"Later, the wifi password was changed from {old} to {new}." for old, new in zip(pw, pw[1:], strict=False)
    ]
    return _document(facts, s, rng, hops=len(pw) - 1, answer=pw[-1])


def inventory(s: Values, rng: random.Random) -> Values:
    facts = [f"The store began the month with {s['start']} umbrellas."]
    facts += [f"It received {x} more umbrellas." if x > 0 else f"It sold {-x} umbrellas." for x in s["ch"]]
    return _document(facts, s, rng, answer=str(s["start"] + sum(s["ch"])))


def key_chain(s: Values, rng: random.Random) -> Values:
    people = s["ps"]
    facts = [f"{people[0]} had the storeroom key."]
    facts += [f"{a} handed the storeroom key to {b}." for a, b in zip(people, people[1:], strict=False)]
    return _document(facts, s, rng, hops=len(people) - 1, answer=people[-1])


def max_temp(s: Values, rng: random.Random) -> Values:
    readings = s["tv"]
    facts = [
        f"On {WEEKDAYS[j % 7]} of week {1 + j // 7} the thermometer read {t} degrees." for j, t in enumerate(readings)
    ]
    return _document(facts, s, rng, answer=str(max(readings)))


def deposits(s: Values, rng: random.Random) -> Values:
    """``who`` makes the first deposit and those ``own`` marks; others alternate among two people."""
    who, others = s["who"], [o for o in s["others"] if o != s["who"]]
    amounts = [5 * (1 + (s["a0"] + 37 * j) % 99) for j in range(s["k"])]
    payers = [who if s["own"][j] or j == 0 else others[j % 2] for j in range(s["k"])]
    facts = [f"{p} deposited ${a} into the shared account." for p, a in zip(payers, amounts, strict=True)]
    return _document(facts, s, rng, answer=str(sum(a for p, a in zip(payers, amounts, strict=True) if p == who)))


def extension(s: Values, rng: random.Random) -> Values:
    people = s["ps"]
    extensions = [2000 + (s["e0"] + 157 * j) % 999 for j in range(len(people))]
    facts = [f"You can reach {p} on extension {e}." for p, e in zip(people, extensions, strict=True)]
    return _document(facts, s, rng, who=people[s["q"]], answer=str(extensions[s["q"]]))


def population(s: Values, rng: random.Random) -> Values:
    cities = s["cs"]
    counts = [12000 + (s["p0"] + 104729 * j) % 978000 for j in range(len(cities))]
    facts = [
        f"The survey estimated that the district of {c} has {p} residents." for c, p in zip(cities, counts, strict=True)
    ]
    return _document(facts, s, rng, city=cities[s["q"]], answer=str(counts[s["q"]]))


def proposal(s: Values, rng: random.Random) -> Values:
    people, ideas = s["ps"], s["ideas"]
    facts = [f"{p} proposed {i}." for p, i in zip(people, ideas, strict=True)]
    return _document(facts, s, rng, who=people[s["q"]], answer=ideas[s["q"]])


def nth_fact(s: Values, rng: random.Random) -> Values:
    facts = [f"Item number {j} on the loan list is the {item}." for j, item in enumerate(s["items"], 1)]
    return _document(facts, s, rng, answer=s["items"][s["q"] - 1])


def log_first_error(s: Values, rng: random.Random) -> Values:
    """Timestamped lines; ERROR from line ``e`` on, every other line."""
    times = [f"{h:02d}:{h * 7 % 60:02d}" for h in sorted(s["hh"])]
    e = s["e"]
    facts = [
        f"[{t}] " + ("ERROR disk quota exceeded" if j >= e and (j - e) % 2 == 0 else "INFO heartbeat ok")
        for j, t in enumerate(times)
    ]
    return _document(facts, s, rng, answer=times[e])


def count_errors(s: Values, rng: random.Random) -> Values:
    return _document(
        [f"[service] {level} request handled" for level in s["lv"]], s, rng, answer=str(s["lv"].count("ERROR"))
    )


def quote(s: Values, rng: random.Random) -> Values:
    people, quotes = s["ps"], s["qs"]
    facts = [f'{p} said: "{q}"' for p, q in zip(people, quotes, strict=True)]
    return _document(facts, s, rng, quote=quotes[s["q"]], answer=people[s["q"]])


def price_diff(s: Values, rng: random.Random) -> Values:
    products = s["prods"]
    prices = [20 + (s["pr0"] + 613 * j) % 1980 for j in range(len(products))]
    facts = [f"The {p} costs ${c}." for p, c in zip(products, prices, strict=True)]
    return _document(facts, s, rng, answer=str(prices[0] - prices[1]))


def allergy(s: Values, rng: random.Random) -> Values:
    people, allergens = s["ps"], s["al"]
    facts = [f"{p} is allergic to {a}." for p, a in zip(people, allergens, strict=True)]
    return _document(facts, s, rng, who=people[s["q"]], answer=allergens[s["q"]])


def two_hop(s: Values, rng: random.Random) -> Values:
    people, teams, floors = s["ps"], s["teams"], s["fl"]
    facts = [f"{p} joined team {t}." for p, t in zip(people, teams, strict=True)]
    facts += [f"Team {t} sits on floor {f}." for t, f in zip(teams, floors, strict=True)]
    return _document(facts, s, rng, who=people[s["q"]], answer=str(floors[s["q"]]))


def vote_count(s: Values, rng: random.Random) -> Values:
    park, library = s["votes"].count("the park"), s["votes"].count("the library")
    answer = "tie" if park == library else "the park" if park > library else "the library"
    return _document([f"One resident voted for {v}." for v in s["votes"]], s, rng, answer=answer)


def deadline_owner(s: Values, rng: random.Random) -> Values:
    people, tasks = s["ps"], s["tasks"]
    facts = [f"{p} is responsible for {t}." for p, t in zip(people, tasks, strict=True)]
    return _document(facts, s, rng, task=tasks[s["q"]], answer=people[s["q"]])


def summarise(s: Values, rng: random.Random) -> Values:
    return _document([f"Revenue for unit {j + 1} rose to {100 + 37 * j} thousand." for j in range(s["k"])], s, rng)


def action_items(s: Values, rng: random.Random) -> Values:
    return _document([f"ACTION: {p} will follow up on item {j}." for j, p in enumerate(s["ps"], 1)], s, rng)


def abstract(s: Values, rng: random.Random) -> Values:
    findings = [f"Key finding {j + 1}: costs fell by {3 + 2 * j} percent." for j in range(s["k"])]
    return _document([*findings, "End of findings."], s, rng)


def timeline(s: Values, rng: random.Random) -> Values:
    return _document([f"In {y} the company opened a new site." for y in s["yrs"]], s, rng)


# == math ====================================================================================


def add_stock(s: Values, rng: random.Random) -> Values:
    return {"answer": s["a"] + s["b"]}


def savings_left(s: Values, rng: random.Random) -> Values:
    """Spend less than the balance."""
    spent = rng.randint(1, s["a"] - 1)
    return {"b": spent, "answer": s["a"] - spent}


def bakery_trays(s: Values, rng: random.Random) -> Values:
    return {"answer": s["a"] * s["b"] * s["days"]}


def share_equally(s: Values, rng: random.Random) -> Values:
    return {"total": s["q"] * s["k"]}


def change_due(s: Values, rng: random.Random) -> Values:
    """Paid with the smallest multiple of $50 above the cost."""
    cost = s["n1"] * s["p1"] + s["n2"] * s["p2"]
    bill = (int(cost // 50) + 1) * 50
    return {"bill": bill, "answer": round(bill - cost, 2)}


def sale_price(s: Values, rng: random.Random) -> Values:
    return {"answer": round(s["p"] * (100 - s["pct"]) / 100, 2)}


def train_distance(s: Values, rng: random.Random) -> Values:
    return {"answer": round(s["v"] * (s["h"] + s["m"] / 60), 1)}


def mean_score(s: Values, rng: random.Random) -> Values:
    return {"answer": round(sum(s["scores"]) / len(s["scores"]), 2)}


def garden_area(s: Values, rng: random.Random) -> Values:
    l, w, p = s["l"], s["w"], s["p"]  # noqa: E741 - the prompt's names
    return {"answer": (l + 2 * p) * (w + 2 * p) - l * w}


def fence_perimeter(s: Values, rng: random.Random) -> Values:
    return {"answer": 2 * (s["l"] + s["w"]) * s["cost"]}


def population_growth(s: Values, rng: random.Random) -> Values:
    return {"answer": round(s["p0"] * (1 + s["r"] / 100) ** s["y"])}


def simple_interest(s: Values, rng: random.Random) -> Values:
    return {"answer": round(s["P"] * s["r"] * s["t"] / 100, 2)}


def seconds_in(s: Values, rng: random.Random) -> Values:
    return {"answer": s["d"] * 86400 + s["h"] * 3600 + s["m"] * 60}


def linear_eq(s: Values, rng: random.Random) -> Values:
    return {"c": s["a"] * s["x"] + s["b"]}


def two_unknowns(s: Values, rng: random.Random) -> Values:
    x, y = s["x"], s["y"]
    return {"sum": x + y, "difference": x - y, "answer": x * y}


def series_sum(s: Values, rng: random.Random) -> Values:
    a, b = s["a"], s["a"] + s["span"]
    return {"b": b, "answer": (a + b) * (b - a + 1) // 2}


def gcd(s: Values, rng: random.Random) -> Values:
    a, b = s["g"] * s["m"], s["g"] * s["n"]
    return {"a": a, "b": b, "answer": math.gcd(a, b)}


def bus_lcm(s: Values, rng: random.Random) -> Values:
    return {"answer": math.lcm(s["a"], s["b"])}


def pages_left(s: Values, rng: random.Random) -> Values:
    """A proper fraction num/den read of a book whose length den divides."""
    den = s["den"]
    num = rng.randint(1, den - 1)
    pages = den * rng.randint(10, 80)
    return {"num": num, "pages": pages, "answer": pages - pages * num // den}


def ages(s: Values, rng: random.Random) -> Values:
    return {"S": (s["k"] + 1) * s["age"] + 2 * s["y"]}


def recipe_scale(s: Values, rng: random.Random) -> Values:
    return {"answer": round(s["g"] * s["s2"] / s["s1"], 1)}


def workers_days(s: Values, rng: random.Random) -> Values:
    """A second crew size that divides the work evenly (and differs from the first)."""
    work = s["w"] * s["d"]
    w2 = rng.choice([v for v in range(2, work + 1) if work % v == 0 and v != s["w"]])
    return {"work": work, "w2": w2, "answer": work // w2}


def marble_prob(s: Values, rng: random.Random) -> Values:
    counts = {"red": s["r"], "blue": s["b"], "green": s["g"]}
    return {"answer": round(1 - counts[s["color"]] / sum(counts.values()), 3)}


def committee(s: Values, rng: random.Random) -> Values:
    return {"answer": math.comb(s["n"], s["k"])}


def percent_change(s: Values, rng: random.Random) -> Values:
    """A new price within half the old one either way, in cents."""
    a = s["a"]
    b = float(f"{rng.uniform(a * 0.5, a * 1.5):.2f}")
    return {"b": f"{b:.2f}", "answer": round((b - a) / a * 100, 1)}


def c_to_f(s: Values, rng: random.Random) -> Values:
    return {"answer": round(s["cdeg"] * 9 / 5 + 32, 1)}


def ladder(s: Values, rng: random.Random) -> Values:
    tri, k = s["tri"], s["k"]
    return {"length": tri["c"] * k, "base": tri["a"] * k, "answer": tri["b"] * k}


def power(s: Values, rng: random.Random) -> Values:
    return {"answer": s["a"] ** s["b"]}


def clock_add(s: Values, rng: random.Random) -> Values:
    return {"answer": (s["h"] + s["k"]) % 24}


def order_ops(s: Values, rng: random.Random) -> Values:
    """``d ÷ e`` divides evenly: ``d`` is ``q`` times ``e``."""
    return {"d": s["q"] * s["e"], "answer": s["a"] + s["b"] * s["c"] - s["q"]}


def trip_time(s: Values, rng: random.Random) -> Values:
    return {"answer": round(s["d1"] / s["v1"] + s["d2"] / s["v2"], 2)}


def split_bill(s: Values, rng: random.Random) -> Values:
    return {"answer": round(s["bill"] * (1 + s["tip"] / 100) / s["k"], 2)}


def fuel_cost(s: Values, rng: random.Random) -> Values:
    return {"answer": round(s["km"] / 100 * s["l"] * s["p"], 2)}


# == multilingual ============================================================================

#: Target languages of open translation tasks, roughly from easy to hard for an English model.
TARGET_LANGUAGES = (
    "Spanish",
    "French",
    "German",
    "Italian",
    "Portuguese",
    "Dutch",
    "Swedish",
    "Polish",
    "Turkish",
    "Russian",
    "Greek",
    "Hindi",
    "Arabic",
    "Swahili",
    "Indonesian",
    "Vietnamese",
    "Chinese (Simplified)",
    "Japanese",
    "Korean",
)
NUMBER_WORDS = {
    "es": ("uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez"),
    "fr": ("un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix"),
    "de": ("eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn"),
    "it": ("uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove", "dieci"),
    "pt": ("um", "dois", "três", "quatro", "cinco", "seis", "sete", "oito", "nove", "dez"),
}
WEEKDAY_WORDS = {
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
    "pt": ("segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"),
}


def word_to(s: Values, rng: random.Random) -> Values:
    return {"answer": s["w"][s["lang"]["code"]]}


def word_from(s: Values, rng: random.Random) -> Values:
    return {"word": s["w"][s["lang"]["code"]]}


def number_to(s: Values, rng: random.Random) -> Values:
    return {"length": s["n"] / 5, "answer": NUMBER_WORDS[s["lang"]["code"]][s["n"] - 1]}


def number_from(s: Values, rng: random.Random) -> Values:
    return {"length": s["n"] / 5, "word": NUMBER_WORDS[s["lang"]["code"]][s["n"] - 1]}


def day_to(s: Values, rng: random.Random) -> Values:
    return {"d": WEEKDAYS[s["i"]], "answer": WEEKDAY_WORDS[s["lang"]["code"]][s["i"]]}


def day_from(s: Values, rng: random.Random) -> Values:
    return {"word": WEEKDAY_WORDS[s["lang"]["code"]][s["i"]], "answer": WEEKDAYS[s["i"]]}


def day_after(s: Values, rng: random.Random) -> Values:
    days = WEEKDAY_WORDS[s["lang"]["code"]]
    return {"word": days[s["i"]], "answer": days[(s["i"] + s["k"]) % 7]}


def sum_words(s: Values, rng: random.Random) -> Values:
    words = NUMBER_WORDS[s["lang"]["code"]]
    return {"wa": words[s["a"] - 1], "wb": words[s["b"] - 1], "answer": words[s["a"] + s["b"] - 1]}


def two_words(s: Values, rng: random.Random) -> Values:
    code = s["lang"]["code"]
    return {"answer": f"{s['ws'][0][code]}, {s['ws'][1][code]}"}


def word_mc(s: Values, rng: random.Random) -> Values:
    code = s["lang"]["code"]
    return multiple_choice(s["w"][code], [x[code] for x in s["raw"]], s["pos"], s["m"])


def detect(s: Values, rng: random.Random) -> Values:
    return {"language": s["sentence"]["rank"] / 3}


def same_language(s: Values, rng: random.Random) -> Values:
    first, other = s["pair"]
    second = first if s["same"] else other
    return {
        "s2": second["text"],
        "language": max(first["rank"], other["rank"]) / 3,
        "answer": "yes" if s["same"] else "no",
    }


def target_language(s: Values, rng: random.Random) -> Values:
    """``L``, the ``li``-th target language, and its difficulty (a third of its place in the list)."""
    return {"L": TARGET_LANGUAGES[s["li"]], "language": s["li"] / 3}


def translate_sentence(s: Values, rng: random.Random) -> Values:
    return {**target_language(s, rng), "length": len(s["s"].split()) / 4}


def translate_multi(s: Values, rng: random.Random) -> Values:
    numbered = "\n".join(f"{j}. {sentence}" for j, sentence in enumerate(s["ss"], 1))
    return {**target_language(s, rng), "lst": numbered, "length": 3 * len(s["ss"])}


def word_json(s: Values, rng: random.Random) -> Values:
    langs = s["ls"]
    return {
        "names": ", ".join(x["name"] for x in langs),
        "language": max(x["rank"] for x in langs),
        "answer": as_json({x["name"]: s["w"][x["code"]] for x in langs}),
    }


def vocab_list(s: Values, rng: random.Random) -> Values:
    return {"length": s["n"] / 3}


def transliterate(s: Values, rng: random.Random) -> Values:
    return {"language": 2 + len(s["rec"]["g"]) / 5}


def cross_qa(s: Values, rng: random.Random) -> Values:
    return {"txt": WEEKDAY_WORDS[s["lang"]["code"]][s["i"]] + "!", "answer": WEEKDAYS[s["i"]]}


def explain_word(s: Values, rng: random.Random) -> Values:
    return {"word": s["w"][s["lang"]["code"]]}


def count_to(s: Values, rng: random.Random) -> Values:
    return {"answer": " ".join(NUMBER_WORDS[s["lang"]["code"]][: s["n"]])}


# == reasoning ===============================================================================


def _shuffled_chain(s: Values, relation: Callable[[str, str], str]) -> Values:
    """The n - 1 links between neighbours of ``ps``, stated in the order ``order`` shuffles."""
    people, n = s["ps"], len(s["ps"])
    links = [relation(people[i], people[i + 1]) for i in s["order"] if i < n - 1]
    return {"facts": " ".join(links), "hops": n - 1}


def tallest_chain(s: Values, rng: random.Random) -> Values:
    return {**_shuffled_chain(s, lambda a, b: f"{a} is taller than {b}."), "answer": s["ps"][-1]}


def oldest_chain(s: Values, rng: random.Random) -> Values:
    return {**_shuffled_chain(s, lambda a, b: f"{b} is younger than {a}."), "answer": s["ps"][0]}


def day_offset(s: Values, rng: random.Random) -> Values:
    """The day ``k`` days after day ``i`` (also: today, if ``k`` days ago it was day ``i``)."""
    return {"d": WEEKDAYS[s["i"]], "hops": len(str(s["k"])), "answer": WEEKDAYS[(s["i"] + s["k"]) % 7]}


def seq_arith(s: Values, rng: random.Random) -> Values:
    a, d, n = s["a"], s["d"], s["n"]
    return {"seq": ", ".join(str(a + d * j) for j in range(n)), "answer": a + d * n}


def seq_geom(s: Values, rng: random.Random) -> Values:
    a, r, n = s["a"], s["r"], s["n"]
    return {"seq": ", ".join(str(a * r**j) for j in range(n)), "answer": a * r**n}


def seq_square(s: Values, rng: random.Random) -> Values:
    start, n = s["s"], s["n"]
    return {"seq": ", ".join(str((start + j) ** 2) for j in range(n)), "answer": (start + n) ** 2}


def handshakes(s: Values, rng: random.Random) -> Values:
    n = s["n"]
    return {"entities": n / 6, "answer": n * (n - 1) // 2}


def legs(s: Values, rng: random.Random) -> Values:
    return {"entities": len(str(s["ch"] * s["cw"])), "answer": 2 * s["ch"] + 4 * s["cw"]}


def heads_legs(s: Values, rng: random.Random) -> Values:
    heads = s["ch"] + s["cw"]
    return {"h": heads, "l": 2 * s["ch"] + 4 * s["cw"], "entities": len(str(heads))}


def socks(s: Values, rng: random.Random) -> Values:
    return {"answer": s["k"] * (s["m"] - 1) + 1}


def clock_angle(s: Values, rng: random.Random) -> Values:
    h, m = s["h"], s["m"]
    angle = abs(30 * (h % 12) - 5.5 * m)
    return {"mm": f"{m:02d}", "hops": 1 + (m % 15 != 0), "answer": min(angle, 360 - angle)}


def inclusion_exclusion(s: Values, rng: random.Random) -> Values:
    both = s["both"]
    football, chess = both + s["football_only"], both + s["chess_only"]
    n = football + chess - both + s["neither"]
    return {"a": football, "b": chess, "n": n, "hops": len(str(n))}


def robot_walk(s: Values, rng: random.Random) -> Values:
    moves = s["mv"]
    return {"answer": abs(moves.count("north") - moves.count("south")) + abs(moves.count("east") - moves.count("west"))}


def balanced(s: Values, rng: random.Random) -> Values:
    depth = 0
    for ch in s["b"]:
        depth += 1 if ch == "(" else -1
        if depth < 0:
            break
    return {"answer": "yes" if depth == 0 else "no"}


def sort_by_length(s: Values, rng: random.Random) -> Values:
    return {"answer": " ".join(sorted(s["ws"], key=lambda w: (len(w), w)))}


def binary(s: Values, rng: random.Random) -> Values:
    return {"b": format(s["v"], "b")}


def kth_letter(s: Values, rng: random.Random) -> Values:
    return {"answer": s["w"]["word"][s["k"] - 1]}


def count_letter(s: Values, rng: random.Random) -> Values:
    return {"entities": len(s["w"]), "answer": s["w"].count(s["ch"])}


def digit_sum(s: Values, rng: random.Random) -> Values:
    return {"answer": sum(int(ch) for ch in str(s["num"]))}


def meeting_end(s: Values, rng: random.Random) -> Values:
    end = s["h"] * 60 + s["m"] + s["d"]
    return {
        "mm": f"{s['m']:02d}",
        "hops": 1 + (s["m"] + s["d"] >= 60),
        "answer": f"{end // 60 % 24:02d}:{end % 60:02d}",
    }


def water_tank(s: Values, rng: random.Random) -> Values:
    return {"f": s["l"] + s["net"], "cap": s["net"] * s["k"]}


def plan(s: Values, rng: random.Random) -> Values:
    return {"entities": len(s["cs"]) + 2}


# == steerability ============================================================================


def repeat(s: Values, rng: random.Random) -> Values:
    return {"answer": " ".join([s["w"]] * s["k"])}


def alpha_sort(s: Values, rng: random.Random) -> Values:
    return {"answer": ", ".join(sorted(s["ws"]))}


def _sentence(s: Values, answer: str) -> Values:
    """An answer about sentence ``s``, with its length in words as the factor."""
    return {"length": len(s["s"].split()), "answer": answer}


def reverse_words(s: Values, rng: random.Random) -> Values:
    return _sentence(s, " ".join(reversed(s["s"].split())))


def uppercase(s: Values, rng: random.Random) -> Values:
    return _sentence(s, s["s"].upper())


def title_case(s: Values, rng: random.Random) -> Values:
    return _sentence(s, s["s"].title())


def count_words(s: Values, rng: random.Random) -> Values:
    return _sentence(s, str(len(s["s"].split())))


def number_range(s: Values, rng: random.Random) -> Values:
    b = s["a"] + s["k"]
    return {"b": b, "answer": ",".join(str(x) for x in range(s["a"], b + 1))}


def every_other(s: Values, rng: random.Random) -> Values:
    return {"answer": " | ".join(s["ws"][::2])}


def yes_no(s: Values, rng: random.Random) -> Values:
    return {"answer": "yes" if s["a"] > s["b"] else "no"}


def json_person(s: Values, rng: random.Random) -> Values:
    return {"answer": as_json({"name": s["name"], "age": s["age"], "city": s["city"]})}


def json_list(s: Values, rng: random.Random) -> Values:
    things = ("birds", "boats", "cars", "trees")
    return {"text": ", then ".join(f"we counted {x} {things[x % 4]}" for x in s["nums"]), "answer": as_json(s["nums"])}


def json_keys_sorted(s: Values, rng: random.Random) -> Values:
    return {"answer": as_json({w: len(w) for w in s["ws"]})}


def initials(s: Values, rng: random.Random) -> Values:
    return _sentence(s, "".join(w[0].upper() for w in s["s"].split()))


def longest_word(s: Values, rng: random.Random) -> Values:
    return {"answer": max(s["ws"], key=len)}


def snake_case(s: Values, rng: random.Random) -> Values:
    return _sentence(s, "_".join(s["s"].split()))


def acrostic_check(s: Values, rng: random.Random) -> Values:
    return {"answer": "".join(w[-1] for w in s["ws"])}


def word_limit(s: Values, rng: random.Random) -> Values:
    return {**requirements(s, rng, base=1), "length": s["n"] / 10}


def quote_wrap(s: Values, rng: random.Random) -> Values:
    return {"answer": f"[{s['w'][::-1]}]"}


# == tool_use ================================================================================

#: The tools prompts offer, by name: what a JSON schema line says besides the name.
TOOLS: dict[str, dict[str, Any]] = {
    "convert_currency": {
        "description": "Convert an amount between currencies.",
        "parameters": {
            "amount": {"type": "number"},
            "from_currency": {"type": "string", "description": "ISO code"},
            "to_currency": {"type": "string", "description": "ISO code"},
        },
    },
    "book_flight": {
        "description": "Book a flight.",
        "parameters": {
            "origin": {"type": "string", "description": "city"},
            "destination": {"type": "string", "description": "city"},
            "date": {"type": "string", "description": "YYYY-MM-DD"},
            "passengers": {"type": "integer"},
        },
    },
    "set_alarm": {
        "description": "Set an alarm.",
        "parameters": {"time": {"type": "string", "description": "HH:MM, 24-hour"}, "label": {"type": "string"}},
    },
    "send_email": {
        "description": "Send an email.",
        "parameters": {"to": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}},
    },
    "search_restaurants": {
        "description": "Find restaurants.",
        "parameters": {
            "city": {"type": "string"},
            "cuisine": {"type": "string"},
            "max_price": {"type": "integer", "description": "1-4"},
        },
    },
    "create_event": {
        "description": "Create a calendar event.",
        "parameters": {
            "title": {"type": "string"},
            "date": {"type": "string", "description": "YYYY-MM-DD"},
            "start": {"type": "string", "description": "HH:MM"},
            "duration_minutes": {"type": "integer"},
        },
    },
    "get_weather": {
        "description": "Current weather for a city.",
        "parameters": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    },
    "get_stock_price": {
        "description": "Latest price of a stock.",
        "parameters": {"symbol": {"type": "string", "description": "ticker"}},
    },
    "translate_text": {
        "description": "Translate text.",
        "parameters": {"text": {"type": "string"}, "target_language": {"type": "string"}},
    },
    "add_todo": {
        "description": "Add a to-do item.",
        "parameters": {"task": {"type": "string"}, "priority": {"type": "string", "enum": ["low", "medium", "high"]}},
    },
    "get_directions": {
        "description": "Route between two places.",
        "parameters": {
            "origin": {"type": "string"},
            "destination": {"type": "string"},
            "mode": {"type": "string", "enum": ["driving", "walking", "transit", "cycling"]},
        },
    },
    "set_thermostat": {
        "description": "Set a room's target temperature.",
        "parameters": {"room": {"type": "string"}, "temperature": {"type": "number", "description": "degrees Celsius"}},
    },
    "order_food": {
        "description": "Order food for delivery.",
        "parameters": {"restaurant": {"type": "string"}, "item": {"type": "string"}, "quantity": {"type": "integer"}},
    },
    "track_package": {
        "description": "Track a parcel.",
        "parameters": {
            "tracking_number": {"type": "string"},
            "carrier": {"type": "string", "enum": ["ups", "fedex", "dhl", "usps"]},
        },
    },
    "reserve_hotel": {
        "description": "Reserve a hotel room.",
        "parameters": {
            "city": {"type": "string"},
            "check_in": {"type": "string", "description": "YYYY-MM-DD"},
            "nights": {"type": "integer"},
            "guests": {"type": "integer"},
        },
    },
    "play_music": {
        "description": "Play music.",
        "parameters": {"artist": {"type": "string"}, "shuffle": {"type": "boolean"}},
    },
    "calculate_tip": {
        "description": "Tip for a bill.",
        "parameters": {"bill": {"type": "number"}, "percent": {"type": "number"}},
    },
    "transfer_money": {
        "description": "Transfer money between accounts.",
        "parameters": {
            "from_account": {"type": "string"},
            "to_account": {"type": "string"},
            "amount": {"type": "number"},
        },
    },
    "search_files": {
        "description": "Search files by name.",
        "parameters": {
            "query": {"type": "string"},
            "extension": {"type": "string"},
            "max_results": {"type": "integer"},
        },
    },
    "create_ticket": {
        "description": "Open a support ticket.",
        "parameters": {
            "title": {"type": "string"},
            "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
            "component": {"type": "string"},
        },
    },
    "get_exchange_rate": {
        "description": "Exchange rate between two currencies.",
        "parameters": {"base": {"type": "string"}, "quote": {"type": "string"}},
    },
    "schedule_meeting": {
        "description": "Schedule a meeting.",
        "parameters": {
            "attendees": {"type": "array", "items": {"type": "string"}},
            "date": {"type": "string", "description": "YYYY-MM-DD"},
            "duration_minutes": {"type": "integer"},
        },
    },
    "lookup_word": {
        "description": "Dictionary definition of a word.",
        "parameters": {"word": {"type": "string"}, "language": {"type": "string"}},
    },
    "resize_image": {
        "description": "Resize an image.",
        "parameters": {"path": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"}},
    },
}


def schemas(names: list[str]) -> str:
    """One JSON schema line per tool name."""
    return "\n".join(json.dumps({"name": n, **TOOLS[n]}) for n in names)


def tool_prompt(s: Values, tool: str, **args: Any) -> Values:
    """The schemas of the ``distract`` tools with ``tool``'s at ``pos``, their count, and the
    reference call of ``tool`` with ``args``."""
    names = s["distract"][: s["pos"]] + [tool] + s["distract"][s["pos"] :]
    return {"tools": schemas(names), "tools_listed": len(names), "answer": call(tool, **args)}


def weather(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "get_weather", city=s["city"], unit=s["unit"])


def convert(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "convert_currency", amount=s["amt"], from_currency=s["cur"][0], to_currency=s["cur"][1])


def convert_sum(s: Values, rng: random.Random) -> Values:
    return tool_prompt(
        s, "convert_currency", amount=s["x"] + s["y"], from_currency=s["cur"][0], to_currency=s["cur"][1]
    )


def flight(s: Values, rng: random.Random) -> Values:
    return tool_prompt(
        s, "book_flight", origin=s["cs"][0], destination=s["cs"][1], date=s["date"]["iso"], passengers=s["p"]
    )


def flight_family(s: Values, rng: random.Random) -> Values:
    """The traveller, a partner and ``k`` children."""
    return tool_prompt(
        s, "book_flight", origin=s["cs"][0], destination=s["cs"][1], date=s["date"]["iso"], passengers=s["k"] + 2
    )


def alarm(s: Values, rng: random.Random) -> Values:
    hour = s["h"] % 12 + (12 if s["ampm"] == "pm" else 0)
    return {"mm": f"{s['m']:02d}", **tool_prompt(s, "set_alarm", time=f"{hour:02d}:{s['m']:02d}", label=s["label"])}


def email(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "send_email", to=s["to"], subject=s["subj"], body=s["body"])


def restaurants(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "search_restaurants", city=s["city"], cuisine=s["cuisine"], max_price=s["p"])


def event(s: Values, rng: random.Random) -> Values:
    """``dur`` quarter-hours from ``h``:00."""
    minutes = s["dur"] * 15
    end = {"h2": s["h"] + minutes // 60, "m2": f"{minutes % 60:02d}"}
    return {
        **end,
        **tool_prompt(
            s,
            "create_event",
            title=s["title"],
            date=s["date"]["iso"],
            start=f"{s['h']:02d}:00",
            duration_minutes=minutes,
        ),
    }


def stock(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "get_stock_price", symbol=s["rec"]["s"])


def translate(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "translate_text", text=s["text"], target_language=s["lang"])


def todo(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "add_todo", task=s["task"], priority=s["rec"]["p"])


def directions(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "get_directions", origin=s["a"], destination=s["b"], mode=s["rec"]["m"])


def thermostat_f(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "set_thermostat", room=s["room"], temperature=round((s["f"] - 32) * 5 / 9, 1))


def order(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "order_food", restaurant=s["rest"], item=s["item"], quantity=s["q"])


def track(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "track_package", tracking_number=f"1Z{s['n']}", carrier=s["rec"]["c"])


def hotel(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "reserve_hotel", city=s["city"], check_in=s["d1"]["iso"], nights=s["n"], guests=s["g"])


def music(s: Values, rng: random.Random) -> Values:
    sequence = ", shuffled" if s["s"] else ", in album order"
    return {"sh": sequence, **tool_prompt(s, "play_music", artist=s["artist"], shuffle=s["s"])}


def tip(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "calculate_tip", bill=s["bill"], percent=s["p"])


def transfer(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "transfer_money", from_account=s["acc"][0], to_account=s["acc"][1], amount=s["amt"])


def transfer_half(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "transfer_money", from_account=s["acc"][0], to_account=s["acc"][1], amount=s["bal"] / 2)


def files(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "search_files", query=s["q"], extension=s["ext"], max_results=s["k"])


def ticket(s: Values, rng: random.Random) -> Values:
    title = s["comp"].capitalize() + " issue"
    return {"title": title, **tool_prompt(s, "create_ticket", title=title, severity=s["rec"]["s"], component=s["comp"])}


def rate(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "get_exchange_rate", base=s["cur"][0], quote=s["cur"][1])


def meeting(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "schedule_meeting", attendees=s["ppl"], date=s["d"]["iso"], duration_minutes=s["h"] * 60)


def lookup(s: Values, rng: random.Random) -> Values:
    return tool_prompt(s, "lookup_word", word=s["rec"]["w"], language=s["rec"]["l"])


def resize(s: Values, rng: random.Random) -> Values:
    pct = s["pct"]
    return tool_prompt(s, "resize_image", path=s["path"], width=s["w"] * pct // 100, height=s["h"] * pct // 100)


def json_args(s: Values, rng: random.Random) -> Values:
    args = {"title": s["title"], "date": s["d"]["iso"], "start": f"{s['h']:02d}:00", "duration_minutes": s["m"]}
    return {"answer": as_json(args)}


def json_extract(s: Values, rng: random.Random) -> Values:
    return {"answer": as_json({"customer": s["name"], "item": s["item"], "quantity": s["q"], "unit_price": s["p"]})}


def pick_tool(s: Values, rng: random.Random) -> Values:
    """The drawn tool names, with the right one appended when it was not drawn."""
    names, right = s["names"], s["rec"]["t"]
    return {"tools": ", ".join(names if right in names else [*names, right]), "tools_listed": len(names) + 1}


def design_schema(s: Values, rng: random.Random) -> Values:
    return {"schema_fields": s["k"] + 2}


def plan_calls(s: Values, rng: random.Random) -> Values:
    return {"tools": schemas(s["ts"])}


#: What a row's ``compute`` may name (grouped by capability, several a line: one a line would
#: triple the length of this table without making a name easier to find).
# fmt: off
FUNCTIONS: dict[str, Callable[[Values, random.Random], Values]] = {
    "requirements": requirements,
    "requirements_plus_1": partial(requirements, base=1),
    "requirements_plus_2": partial(requirements, base=2),
    # code
    "sum_list": sum_list, "len_times": len_times, "sorted_index": sorted_index, "reverse_upper": reverse_upper,
    "loop_filter_sum": loop_filter_sum, "div_mod": div_mod, "listcomp": listcomp, "dict_update": dict_update,
    "count_char": count_char, "factorial": factorial, "fibonacci": fibonacci, "sets": sets, "slicing": slicing,
    "sort_by_len": sort_by_len, "collatz": collatz, "shifts": shifts, "vowels": vowels, "js_output": js_output,
    "expr_sum_squares": expr_sum_squares, "expr_digit_product": expr_digit_product,
    "expr_count_multiples": expr_count_multiples, "complexity_mc": complexity_mc,
    # general_knowledge
    "capital_mc": capital_mc, "author_mc": author_mc, "painter_mc": painter_mc, "event_gap": event_gap,
    "event_order": event_order, "continent_mc": continent_mc, "two_capitals": two_capitals, "true_false": true_false,
    "geo_feature": geo_feature, "largest": largest, "language_of": language_of, "odd_one_out": odd_one_out,
    # long_context
    "vault_code": vault_code, "room": room, "event_date": event_date, "sum_two": sum_two,
    "compare_scores": compare_scores, "count_kites": count_kites, "last_city": last_city, "first_city": first_city,
    "distinct_cities": distinct_cities, "password": password, "inventory": inventory, "key_chain": key_chain,
    "max_temp": max_temp, "deposits": deposits, "extension": extension, "population": population,
    "proposal": proposal, "nth_fact": nth_fact, "log_first_error": log_first_error, "count_errors": count_errors,
    "quote": quote, "price_diff": price_diff, "allergy": allergy, "two_hop": two_hop, "vote_count": vote_count,
    "deadline_owner": deadline_owner, "summarise": summarise, "action_items": action_items, "abstract": abstract,
    "timeline": timeline,
    # math
    "add_stock": add_stock, "savings_left": savings_left, "bakery_trays": bakery_trays,
    "share_equally": share_equally, "change_due": change_due, "sale_price": sale_price,
    "train_distance": train_distance, "mean_score": mean_score, "garden_area": garden_area,
    "fence_perimeter": fence_perimeter, "population_growth": population_growth, "simple_interest": simple_interest,
    "seconds_in": seconds_in, "linear_eq": linear_eq, "two_unknowns": two_unknowns, "series_sum": series_sum,
    "gcd": gcd, "bus_lcm": bus_lcm, "pages_left": pages_left, "ages": ages, "recipe_scale": recipe_scale,
    "workers_days": workers_days, "marble_prob": marble_prob, "committee": committee,
    "percent_change": percent_change, "c_to_f": c_to_f, "ladder": ladder, "power": power, "clock_add": clock_add,
    "order_ops": order_ops, "trip_time": trip_time, "split_bill": split_bill, "fuel_cost": fuel_cost,
    # multilingual
    "word_to": word_to, "word_from": word_from, "number_to": number_to, "number_from": number_from,
    "day_to": day_to, "day_from": day_from, "day_after": day_after, "sum_words": sum_words, "two_words": two_words,
    "word_mc": word_mc, "detect": detect, "same_language": same_language, "target_language": target_language,
    "translate_sentence": translate_sentence, "translate_multi": translate_multi, "word_json": word_json,
    "vocab_list": vocab_list, "transliterate": transliterate, "cross_qa": cross_qa, "explain_word": explain_word,
    "count_to": count_to,
    # reasoning
    "tallest_chain": tallest_chain, "oldest_chain": oldest_chain, "day_offset": day_offset, "seq_arith": seq_arith,
    "seq_geom": seq_geom, "seq_square": seq_square, "handshakes": handshakes, "legs": legs,
    "heads_legs": heads_legs, "socks": socks, "clock_angle": clock_angle, "inclusion_exclusion": inclusion_exclusion,
    "robot_walk": robot_walk, "balanced": balanced, "sort_by_length": sort_by_length, "binary": binary,
    "kth_letter": kth_letter, "count_letter": count_letter, "digit_sum": digit_sum, "meeting_end": meeting_end,
    "water_tank": water_tank, "plan": plan,
    # steerability
    "repeat": repeat, "alpha_sort": alpha_sort, "reverse_words": reverse_words, "uppercase": uppercase,
    "title_case": title_case, "count_words": count_words, "number_range": number_range, "every_other": every_other,
    "yes_no": yes_no, "json_person": json_person, "json_list": json_list, "json_keys_sorted": json_keys_sorted,
    "initials": initials, "longest_word": longest_word, "snake_case": snake_case, "acrostic_check": acrostic_check,
    "word_limit": word_limit, "quote_wrap": quote_wrap,
    # tool_use
    "weather": weather, "convert": convert, "convert_sum": convert_sum, "flight": flight,
    "flight_family": flight_family, "alarm": alarm, "email": email, "restaurants": restaurants, "event": event,
    "stock": stock, "translate": translate, "todo": todo, "directions": directions, "thermostat_f": thermostat_f,
    "order": order, "track": track, "hotel": hotel, "music": music, "tip": tip, "transfer": transfer,
    "transfer_half": transfer_half, "files": files, "ticket": ticket, "rate": rate, "meeting": meeting,
    "lookup": lookup, "resize": resize, "json_args": json_args, "json_extract": json_extract,
    "pick_tool": pick_tool, "design_schema": design_schema, "plan_calls": plan_calls,
}
# fmt: on
