from django import forms
from django.utils.translation import gettext_lazy as _

from studies.models import Priority


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (the pattern Django's documentation gives)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(d, initial) for d in data]
        return [super().clean(data, initial)] if data else []


class SubmissionForm(forms.Form):
    # Named "files" on the wire since the first API; the metaclass moves it off the instance, so
    # it never hides Form.files (the uploaded files), whatever mypy reads in the class body.
    files = MultipleFileField(  # type: ignore[assignment]
        label=_("Fichiers DICOM de l'examen"),
        allow_empty_file=True,  # refused by the ingest, with a verdict
    )
    indication = forms.CharField(
        label=_("Indication clinique"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
    )
    priority = forms.ChoiceField(label=_("Priorité"), choices=Priority.choices, initial=Priority.ROUTINE)
