"""The wizard's plain fields (workflow step, existing-label mode, batch name and priority).

The answers are not a Django form: their fields depend on the project's ontology and on the
options chosen so far, so `services.parse_answers` reads them from the request instead.
"""

from __future__ import annotations

from django import forms

from projects.models import ProjectDataRow

from .models import BulkClassificationJob
from .services import BATCH_NAME_MAX

PRIORITY_CHOICES = [(1, "1 (highest)"), (2, "2"), (3, "3"), (4, "4"), (5, "5 (lowest)")]

# Shown beside each workflow step: what the answers become there.
STEP_HELP: dict[str, str] = {
    ProjectDataRow.Step.INITIAL_LABELING: "Answers are stored as pre-labels for labelers to confirm.",
    ProjectDataRow.Step.INITIAL_REVIEW: "Answers are stored as labels; rows wait for review.",
    ProjectDataRow.Step.REWORK: "Answers are stored as labels; rows go back for rework.",
    ProjectDataRow.Step.DONE: "Answers are stored as labels; rows are finished.",
}

MODE_HELP: dict[str, str] = {
    BulkClassificationJob.Mode.OVERWRITE: "Only the questions answered here replace existing answers; all other answers stay.",
    BulkClassificationJob.Mode.EXCLUDE: "Rows that already have a label in the project are skipped.",
}


class BatchOptionsForm(forms.Form):
    """Field names match the keys of WizardValidationError.errors, so the service's errors and
    the form's land next to the same inputs."""

    step = forms.ChoiceField(
        label="Workflow step", choices=ProjectDataRow.Step.choices, initial=ProjectDataRow.Step.INITIAL_LABELING
    )
    mode = forms.ChoiceField(
        label="Existing labels", choices=BulkClassificationJob.Mode.choices, initial=BulkClassificationJob.Mode.OVERWRITE
    )
    batch_name = forms.CharField(label="Batch name", max_length=BATCH_NAME_MAX, strip=True)
    priority = forms.TypedChoiceField(label="Priority", choices=PRIORITY_CHOICES, coerce=int, initial=5)

    def value(self, name: str) -> object:
        """The value to show in the input: what the curator sent, else the initial one."""
        if self.is_bound:
            return self.data.get(name, "")
        return self.initial.get(name, self.fields[name].initial)
