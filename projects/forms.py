from __future__ import annotations

from django import forms

from .models import Project


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "description", "ontology", "consensus"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"consensus": "Several labelers answer each data row (such projects cannot receive bulk classifications)."}

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()
