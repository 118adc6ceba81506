"""Precision and recall of personal data detection on the fixed set in
``bench/data/redaction-cases.json`` (scripts/eval-redaction prints them; docs/privacy.md quotes
them; tests/unit/test_redaction_detect.py holds them to a floor).

An expected span is *found* when every one of its words is inside detections of its class;
a detection is *right* when it overlaps an expected span of its class and no words of other
cases' text... (every detection lies within one case, so only its own case's spans count).
A detection overlapping no expected span is a false positive, named with its case's ``kind``
(price, date, order, other) for the negatives.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.redaction.classes import PiiClass
from indexer.redaction.detect import Detection, detect_words

CASES_PATH = Path(__file__).resolve().parent / "data" / "redaction-cases.json"


@dataclass(frozen=True)
class Expected:
    pii: PiiClass
    words: frozenset[int]


@dataclass
class ClassScore:
    expected: int = 0
    found: int = 0
    detected: int = 0
    right: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.right / self.detected if self.detected else 1.0


@dataclass
class Evaluation:
    classes: dict[PiiClass, ClassScore] = field(
        default_factory=lambda: {pii: ClassScore() for pii in PiiClass}
    )
    misses: list[str] = field(default_factory=list)  # expected spans not wholly found
    false_positives: list[str] = field(default_factory=list)
    negatives: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # kind -> cases
    negatives_hit: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def table(self) -> str:
        lines = ["| Class | Expected | Found | Recall | Detected | Right | Precision |"]
        lines.append("|---|---|---|---|---|---|---|")
        for pii, score in self.classes.items():
            lines.append(
                f"| {pii.value} | {score.expected} | {score.found} | {score.recall:.2f} | "
                f"{score.detected} | {score.right} | {score.precision:.2f} |"
            )
        total = ClassScore(
            sum(s.expected for s in self.classes.values()),
            sum(s.found for s in self.classes.values()),
            sum(s.detected for s in self.classes.values()),
            sum(s.right for s in self.classes.values()),
        )
        lines.append(
            f"| all | {total.expected} | {total.found} | {total.recall:.2f} | {total.detected} "
            f"| {total.right} | {total.precision:.2f} |"
        )
        return "\n".join(lines)


def load_cases(path: Path = CASES_PATH) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["cases"]
    return cases


def _word_spans(text: str) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    for word in text.split():
        at = text.index(word, cursor)
        spans.append((at, at + len(word)))
        cursor = at + len(word)
    return spans


def expected_spans(case: dict[str, Any]) -> list[Expected]:
    text: str = case["text"]
    words = _word_spans(text)
    found = []
    for name, part in case["expect"]:
        at = text.index(part)
        end = at + len(part)
        covered = frozenset(i for i, (b, e) in enumerate(words) if b < end and e > at)
        found.append(Expected(PiiClass(name), covered))
    return found


def _show(words: list[str], detection: Detection) -> str:
    return " ".join(words[detection.first : detection.last + 1])


def evaluate(cases: list[dict[str, Any]]) -> Evaluation:
    result = Evaluation()
    for case in cases:
        words = case["text"].split()
        detections = detect_words(words)
        expected = expected_spans(case)
        if not expected:
            kind = case.get("kind", "other")
            result.negatives[kind] += 1
            result.negatives_hit[kind] += bool(detections)
        for item in expected:
            score = result.classes[item.pii]
            score.expected += 1
            covered = {
                i for d in detections if d.pii is item.pii for i in range(d.first, d.last + 1)
            }
            if item.words <= covered:
                score.found += 1
            else:
                said = " ".join(words[i] for i in sorted(item.words))
                got = ", ".join(f"{d.pii.value}: {_show(words, d)}" for d in detections) or "-"
                result.misses.append(f"[{case['lang']}] {item.pii.value} «{said}» (found: {got})")
        for detection in detections:
            score = result.classes[detection.pii]
            score.detected += 1
            span = set(range(detection.first, detection.last + 1))
            if any(item.pii is detection.pii and item.words & span for item in expected):
                score.right += 1
            else:
                result.false_positives.append(
                    f"[{case['lang']}, {case.get('kind', 'wrong class')}] "
                    f"{detection.pii.value} «{_show(words, detection)}» in «{case['text']}»"
                )
    return result
