"""Labeling projects: ontologies (questions and options, nestable to any depth), projects with
batches and workflow steps, and answers stored as labels or pre-labels.

The bulk-classification engine upserts against the unique constraints below, and the
catalog's annotation filter queries AnswerOption / Answer through the indexes named here:
keep both in step with `projects.querying`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from catalog.models import DataRow


class Ontology(models.Model):
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "ontologies"

    def __str__(self) -> str:
        return self.name

    def global_questions(self) -> models.QuerySet[Question]:
        """The top-level ("global classification") questions, in display order."""
        return self.questions.filter(parent_option__isnull=True).order_by("position", "id")


class Question(models.Model):
    """A classification question. With `parent_option` set it is a sub-classification that is
    asked only once that option is chosen; nesting goes to any depth."""

    class Kind(models.TextChoices):
        RADIO = "radio", "Radio (one option)"
        CHECKLIST = "checklist", "Checklist (several options)"
        TEXT = "text", "Free text"

    ontology = models.ForeignKey(Ontology, on_delete=models.CASCADE, related_name="questions")
    parent_option = models.ForeignKey(
        "Option",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sub_questions",
        help_text="Empty for a global question.",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RADIO)
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    required = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            # Names are unique among siblings. NULL never equals NULL in a unique index, so the
            # global questions (no parent option) need their own conditional constraint.
            models.UniqueConstraint(
                fields=["ontology", "name"], condition=Q(parent_option__isnull=True), name="question_unique_global_name"
            ),
            models.UniqueConstraint(
                fields=["parent_option", "name"], condition=Q(parent_option__isnull=False), name="question_unique_nested_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        # A sub-question always lives in its parent's ontology; the nested admin does not show
        # the ontology field below the first level, so it is derived here.
        if self.parent_option_id is not None and not self.ontology_id:
            self.ontology_id = Option.objects.values_list("question__ontology_id", flat=True).get(pk=self.parent_option_id)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def has_options(self) -> bool:
        return self.kind in (self.Kind.RADIO, self.Kind.CHECKLIST)

    def clean(self) -> None:
        """Model-level rules that need no sibling rows: the parent option belongs to the same
        ontology, and following parents upwards never comes back to this question (no cycles)."""
        super().clean()
        if self.parent_option is None:
            return
        parent_question = self.parent_option.question
        if self.ontology_id and parent_question.ontology_id != self.ontology_id:
            raise ValidationError({"parent_option": "The parent option belongs to another ontology."})
        if self.pk is not None and self.pk in self.ancestor_ids():
            raise ValidationError({"parent_option": "A question cannot be nested under its own option or a sub-question of it."})

    def ancestor_ids(self) -> list[int]:
        """Ids of the questions above this one, nearest first. Stops at a repeat so that a
        cycle already in the database cannot loop forever."""
        seen: list[int] = []
        option_id = self.parent_option_id
        while option_id is not None:
            row = Option.objects.filter(pk=option_id).values_list("question_id", "question__parent_option_id").first()
            if row is None:
                break
            question_id, option_id = row
            if question_id in seen:
                seen.append(question_id)
                break
            seen.append(question_id)
        return seen


class Option(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="options")
    label = models.CharField(max_length=200)
    value = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["question", "value"], name="option_unique_value_per_question")]

    def __str__(self) -> str:
        return f"{self.question.name}: {self.label}"


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    # PROTECT: deleting an ontology must not silently take projects and their labels with it.
    ontology = models.ForeignKey(Ontology, on_delete=models.PROTECT, related_name="projects")
    consensus = models.BooleanField(default=False, help_text="Several labelers answer each data row.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Project list and the wizard's project picker: newest first.
            models.Index(fields=["-created_at", "-id"], name="project_newest"),
        ]

    def __str__(self) -> str:
        return self.name


class Batch(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    name = models.CharField(max_length=200)
    priority = models.PositiveSmallIntegerField(default=5, help_text="1 is the highest priority, 5 the lowest.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["priority", "created_at", "id"]
        verbose_name_plural = "batches"
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="batch_unique_name_per_project"),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=5), name="batch_priority_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (P{self.priority})"


class ProjectDataRow(models.Model):
    """A data row's place in a project: its batch, workflow step and benchmark flag."""

    class Step(models.TextChoices):
        INITIAL_LABELING = "initial_labeling", "Initial labeling"
        INITIAL_REVIEW = "initial_review", "Initial review"
        REWORK = "rework", "Rework"
        DONE = "done", "Done"

    # No separate index on project: the unique constraint below starts with it.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="project_rows", db_index=False)
    data_row = models.ForeignKey(DataRow, on_delete=models.CASCADE, related_name="project_rows")
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="project_rows")
    step = models.CharField(max_length=20, choices=Step.choices, default=Step.INITIAL_LABELING)
    benchmark = models.BooleanField(default=False)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # One place per project: the engine upserts on this; it also serves the project
            # page's keyset pagination "rows of P after data_row_id X".
            models.UniqueConstraint(fields=["project", "data_row"], name="projectdatarow_one_per_project"),
        ]
        indexes = [
            # Project page: "count rows of P per workflow step".
            models.Index(fields=["project", "step"], name="projectdatarow_by_step"),
        ]

    def __str__(self) -> str:
        return f"{self.data_row_id} in {self.project_id} ({self.step})"


class Answer(models.Model):
    """One data row's answer to one question in one project, as a label or a pre-label.

    Text questions keep the answer in `text`; radio and checklist answers keep their chosen
    options as AnswerOption rows. A sub-question's answer belongs to its parent option (the
    question's `parent_option`); services only store it while that option is chosen.
    """

    class Kind(models.TextChoices):
        LABEL = "label", "Label"
        PRELABEL = "prelabel", "Pre-label"

    # No separate index on project: the unique constraint below starts with it.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="answers", db_index=False)
    # Every index costs the bulk engine a write per answer, so only the queries that run per
    # page or per job get one. data_row is covered by "answer_row_project"; set_by and job
    # are only read from the answer's side (history); question deletions are rare admin work.
    data_row = models.ForeignKey(DataRow, on_delete=models.CASCADE, related_name="answers", db_index=False)
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers", db_index=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    text = models.TextField(blank=True)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    set_at = models.DateTimeField(default=timezone.now)
    # History: the bulk-classification job that wrote this answer (none when set by hand).
    job = models.ForeignKey(
        "classification.BulkClassificationJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="written_answers",
        db_index=False,
    )

    class Meta:
        constraints = [
            # At most one answer per question and kind: the engine's upserts rely on it. Its
            # column order also serves the catalog filter "rows with / without a label in P",
            # the streamed export's keyset walk "answers of P of kind K, by data row" and the
            # engine's "labeled rows of P in this id range" (one index fewer to write per answer).
            models.UniqueConstraint(fields=["project", "kind", "data_row", "question"], name="answer_one_per_question_kind"),
        ]
        indexes = [
            # Data-row page: "this row's answers in every project".
            models.Index(fields=["data_row", "project"], name="answer_row_project"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.question_id} on {self.data_row_id}"


class AnswerOption(models.Model):
    """A chosen option of a radio or checklist answer.

    project / data_row / question / kind copy the answer's so that the catalog's annotation
    filter reads one table with one index instead of joining Answer for every row.
    """

    # answer and project need no index of their own: the unique constraint and the filter
    # index below start with them (fewer indexes keep the engine's bulk upserts fast).
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="chosen", db_index=False)
    option = models.ForeignKey(Option, on_delete=models.CASCADE, related_name="+", db_index=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    data_row = models.ForeignKey(DataRow, on_delete=models.CASCADE, related_name="+")
    # Option / question deletions (rare admin work) may scan; the engine writes one row per
    # chosen option per answer and should not pay for those indexes.
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=8, choices=Answer.Kind.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["answer", "option"], name="answeroption_unique_option")]
        indexes = [
            # Catalog filter "rows of P whose label to Q is one of options O" and, as an
            # anti-join against ProjectDataRow, its "is not one of" complement.
            models.Index(fields=["project", "kind", "option", "data_row"], name="answeroption_filter"),
        ]

    def __str__(self) -> str:
        return f"{self.option_id} for {self.answer_id}"
