"""Prompt-side rules of capability-targeted generation (SPEC §4) that do not depend on
where prompts come from: difficulty scores, the curriculum, the template share cap and
the leakage hashes."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, deque
from collections.abc import Mapping

#: (fraction of budget spent below which it applies, (easy, medium, hard) probabilities).
CURRICULUM: tuple[tuple[float, tuple[float, float, float]], ...] = (
    (0.30, (0.10, 0.80, 0.10)),
    (0.70, (0.10, 0.50, 0.40)),
    (1.01, (0.05, 0.20, 0.75)),
)


def curriculum(spent_frac: float) -> tuple[float, float, float]:
    """Easy/medium/hard probabilities once ``spent_frac`` of the budget is spent."""
    for limit, probs in CURRICULUM:
        if spent_frac < limit:
            return probs
    return CURRICULUM[-1][1]


def difficulty_score(factors: Mapping[str, float], ranges: Mapping[str, tuple[float, float]]) -> float:
    """d(x): mean over factors of the min–max-normalised factor (ranges from a calibration pool)."""
    parts = []
    for name, (lo, hi) in ranges.items():
        if name in factors:
            parts.append(0.0 if hi <= lo else min(1.0, max(0.0, (factors[name] - lo) / (hi - lo))))
    return sum(parts) / len(parts) if parts else 0.0


def normalise_prompt(text: str) -> str:
    """Strip, collapse whitespace, lowercase: what the leakage filter compares."""
    return re.sub(r"\s+", " ", text.strip()).lower()


def prompt_hash(text: str) -> str:
    """SHA-256 of the normalised prompt."""
    return hashlib.sha256(normalise_prompt(text).encode()).hexdigest()


class TemplateShareCap:
    """Within a sliding window of draws per capability, no template may exceed a share."""

    def __init__(self, window: int = 128, cap_frac: float = 0.25) -> None:
        self.window = window
        self.cap_frac = cap_frac
        self._recent: dict[str, deque[str]] = {}

    def allows(self, capability: str, template: str) -> bool:
        """Would drawing ``template`` keep it within the cap? (A short window is judged as
        if it held at least 1/cap draws, so the first draws are never refused.)"""
        recent = self._recent.get(capability, ())
        count = Counter(recent)[template] + 1
        return count <= self.cap_frac * max(len(recent) + 1, 1.0 / self.cap_frac)

    def record(self, capability: str, template: str) -> None:
        """Count a draw that was kept."""
        self._recent.setdefault(capability, deque(maxlen=self.window)).append(template)
