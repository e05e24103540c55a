"""Urgency from model outputs and the manifest's weights, and the critical flags."""

from __future__ import annotations

from dataclasses import dataclass

from inference.model_spec import LabelSpec


@dataclass(frozen=True)
class Urgency:
    score: float  # 0..1
    critical_flags: list[str]  # labels at or above their critical threshold
    positive_labels: list[str]  # labels at or above their threshold, most probable first


def score_urgency(
    probabilities: dict[str, float], labels: tuple[LabelSpec, ...], critical_floor: float = 0.9
) -> Urgency:
    """score = max over labels of weight × probability.

    The maximum (not a sum or a noisy-OR) keeps many weak findings from adding up to an emergency
    and makes the number explainable: "pneumothorax, 0.8 × weight 1.0". A critical flag lifts
    the score to at least `critical_floor` so flagged studies sort first.
    """
    score = 0.0
    critical: list[str] = []
    positive: list[tuple[float, str]] = []
    for label in labels:
        p = probabilities.get(label.name)
        if p is None:
            continue
        score = max(score, label.urgency_weight * p)
        if p >= label.threshold:
            positive.append((p, label.name))
        if label.critical_threshold is not None and p >= label.critical_threshold:
            critical.append(label.name)
    if critical:
        score = max(score, critical_floor)
    positive.sort(reverse=True)
    return Urgency(min(max(score, 0.0), 1.0), critical, [name for _, name in positive])
