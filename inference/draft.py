"""The pre-read's draft findings, in French and in English, always marked as AI-generated.

Each language has ONE template (`FRENCH`, `ENGLISH`) and both are filled by the same function, so
the two texts say the same things in the same order. Labels are named by the display names the
model package gives (`display_fr`, `display_en`), never by the model's class names, and the French
text writes its numbers the French way (0,95). Warnings (age unknown, body part not stated...)
are not part of the draft: they travel as codes in `PreReadResult.warnings` and the platform
shows them in the reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass

from inference.model_spec import LabelSpec, ModelSpec, OutputSpec


@dataclass(frozen=True)
class DraftTemplate:
    lang: str  # "fr" | "en": which display names, sentences and units of the package to use
    header: str
    demo: str
    finding: str  # one positive label
    no_finding: str  # nothing above threshold
    measurement: str  # a regression output
    regions: str  # boxes drawn on the image
    decimal_mark: str


FRENCH = DraftTemplate(
    lang="fr",
    header="Brouillon IA — modèle {model} v{version} — à vérifier",
    demo=" (modèle de démonstration, pas pour usage clinique)",
    finding="- {label}, probabilité {probability}.{sentence}",
    no_finding="- Aucune anomalie retenue par le modèle parmi : {labels}.",
    measurement="- {label} : {value} {unit}",
    regions="- Zones signalées sur l'image : {count} (calque à afficher).",
    decimal_mark=",",
)
ENGLISH = DraftTemplate(
    lang="en",
    header="AI draft — model {model} v{version} — to be verified",
    demo=" (demo model, not for clinical use)",
    finding="- {label}, probability {probability}.{sentence}",
    no_finding="- No finding retained by the model among: {labels}.",
    measurement="- {label}: {value} {unit}",
    regions="- Regions marked on the image: {count} (toggle the overlay).",
    decimal_mark=".",
)


def build_draft(
    spec: ModelSpec,
    probabilities: dict[str, float],
    positive_labels: list[str],
    *,
    regression: dict[str, float] | None = None,
    box_count: int = 0,
) -> tuple[str, str]:
    """Return (draft_fr, draft_en): a header line, one line per positive label (most probable
    first), or the labels looked for when none is positive, then measurements and regions."""
    args = (spec, probabilities, positive_labels, regression or {}, box_count)
    return render_draft(FRENCH, *args), render_draft(ENGLISH, *args)


def render_draft(
    t: DraftTemplate,
    spec: ModelSpec,
    probabilities: dict[str, float],
    positive_labels: list[str],
    regression: dict[str, float],
    box_count: int,
) -> str:
    def number(value: float, digits: int) -> str:
        return f"{value:.{digits}f}".replace(".", t.decimal_mark)

    lines = [t.header.format(model=spec.name, version=spec.version) + (t.demo if spec.demo else "")]
    by_name = {label.name: label for label in spec.labels}
    for name in positive_labels:
        label = by_name[name]
        sentence = _text(label, "sentence", t.lang)
        lines.append(
            t.finding.format(
                label=_text(label, "display", t.lang),
                probability=number(probabilities[name], 2),
                sentence=f" {sentence}" if sentence else "",
            )
        )
    if not positive_labels and by_name:
        looked_for = ", ".join(_text(label, "display", t.lang) for label in by_name.values())
        lines.append(t.no_finding.format(labels=looked_for))
    for out in spec.outputs:
        if out.kind == "regression" and out.name in regression:
            lines.append(
                t.measurement.format(
                    label=_text(out, "label", t.lang),
                    value=number(regression[out.name], 1),
                    unit=_text(out, "unit", t.lang),
                ).rstrip()
            )
    if box_count:
        lines.append(t.regions.format(count=box_count))
    return "\n".join(lines)


def _text(item: LabelSpec | OutputSpec, field: str, lang: str) -> str:
    return str(getattr(item, f"{field}_{lang}"))
