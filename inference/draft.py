"""Draft findings text from the manifest's sentences, always marked as AI-generated."""

from __future__ import annotations

from inference.model_spec import ModelSpec


def draft_header(manifest: ModelSpec) -> tuple[str, str]:
    fr = f"Brouillon IA — modèle {manifest.name} v{manifest.version} — à vérifier"
    en = f"AI draft — model {manifest.name} v{manifest.version} — to be verified"
    if manifest.demo:
        fr += " (modèle de démonstration, pas pour usage clinique)"
        en += " (demo model, not for clinical use)"
    return fr, en


def build_draft(
    manifest: ModelSpec,
    probabilities: dict[str, float],
    positive_labels: list[str],
    *,
    regression: dict[str, float] | None = None,
    box_count: int = 0,
) -> tuple[str, str]:
    """Return (draft_fr, draft_en): header line, one sentence per positive label, then notes.

    Warnings (age unknown, body part not stated...) are not written into the draft: they travel
    as codes in `PreReadResult.warnings` and the platform shows them in the reader's language."""
    by_name = {label.name: label for label in manifest.labels}
    fr_lines, en_lines = (list(pair) for pair in zip(draft_header(manifest), strict=True))
    for name in positive_labels:
        label = by_name[name]
        p = probabilities[name]
        fr_lines.append(f"- {label.sentence_fr or name} (probabilité {p:.2f})")
        en_lines.append(f"- {label.sentence_en or name} (probability {p:.2f})")
    if not positive_labels and by_name:
        names = ", ".join(by_name)
        fr_lines.append(f"- Aucune anomalie retenue par le modèle parmi : {names}.")
        en_lines.append(f"- No finding retained by the model among: {names}.")
    for out in manifest.outputs:
        if out.kind == "regression" and regression and out.name in regression:
            value = regression[out.name]
            fr_lines.append(f"- {out.label_fr or out.name} : {value:.1f} {out.unit}".rstrip())
            en_lines.append(f"- {out.label_en or out.name}: {value:.1f} {out.unit}".rstrip())
    if box_count:
        fr_lines.append(f"- {box_count} zone(s) signalée(s) sur l'image (calque à afficher).")
        en_lines.append(f"- {box_count} region(s) marked on the image (toggle the overlay).")
    return "\n".join(fr_lines), "\n".join(en_lines)
