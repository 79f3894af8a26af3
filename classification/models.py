"""Bulk-classification jobs and the notifications they raise."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from projects.models import Answer, Project, ProjectDataRow


def answer_kind_for(step: str) -> str:
    """Initial labeling gets pre-labels; every later step gets labels."""
    return Answer.Kind.PRELABEL if step == ProjectDataRow.Step.INITIAL_LABELING else Answer.Kind.LABEL


class BulkClassificationJob(models.Model):
    """One "Add classification" submission: a frozen selection, the answers to apply and
    how, plus the engine's progress. The engine writes its own status (hooks can be lost)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"

    class Mode(models.TextChoices):
        OVERWRITE = "overwrite", "Overwrite answers to these questions"
        EXCLUDE = "exclude", "Skip rows that already have labels"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="classification_jobs")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="classification_jobs")

    # The frozen selection: (filter ∧ id ≤ max_row_id ∖ excluded) ∪ included, resolved in
    # id order by the engine. Rows created after submit are never swept in.
    select_all = models.BooleanField(default=False)
    filter_query = models.TextField(blank=True)
    max_row_id = models.BigIntegerField(default=0)
    selection_description = models.TextField(blank=True)

    # What to apply. answers: {"<question id>": {"options": [option ids]} | {"text": "..."}}
    answers = models.JSONField(default=dict)
    step = models.CharField(max_length=20, choices=ProjectDataRow.Step.choices)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.OVERWRITE)
    batch_name = models.CharField(max_length=200)
    priority = models.PositiveSmallIntegerField(default=5)
    # One key per wizard page load: a replayed or re-sent submit returns the job it already
    # made instead of queueing the same work twice.
    submission_key = models.CharField(max_length=64, blank=True)

    # Progress, written by the engine after every chunk in the same transaction as the chunk.
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0, help_text="Last data-row id processed (resume point).")
    counts = models.JSONField(default=dict, blank=True)
    batch_names = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    runner = models.CharField(max_length=40, blank=True, help_text="Token of the process currently running the job.")
    attempts = models.PositiveSmallIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Notification panel: "this user's jobs, newest first" and "does this user have a running job".
            models.Index(fields=["created_by", "status", "-id"], name="job_user_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=5), name="job_priority_1_to_5"),
            models.UniqueConstraint(
                fields=["created_by", "submission_key"], condition=~Q(submission_key=""), name="job_one_per_submission"
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.pk}: {self.batch_name} → {self.project}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == self.Status.SUCCEEDED else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))

    @property
    def answer_kind(self) -> str:
        return answer_kind_for(self.step)


class Notification(models.Model):
    class Level(models.TextChoices):
        INFO = "info", "Info"
        SUCCESS = "success", "Success"
        ERROR = "error", "Error"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    job = models.ForeignKey(BulkClassificationJob, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    text = models.TextField()
    read = models.BooleanField(default=False)
    # A finished job raises a pop-up once, on whatever page the user is on.
    popped = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Bell: "unread notifications of this user"; pop-up: "not yet popped for this user".
            models.Index(fields=["user", "read"], name="notification_user_unread"),
            models.Index(fields=["user", "popped"], name="notification_user_popped"),
        ]

    def __str__(self) -> str:
        return self.text


class JobSelectionItem(models.Model):
    """The ticked / un-ticked rows of the selection, copied at submit so that later changes to
    the curator's live selection never change what a job does."""

    class Kind(models.TextChoices):
        INCLUDE = "include", "Included"
        EXCLUDE = "exclude", "Excluded"

    job = models.ForeignKey(BulkClassificationJob, on_delete=models.CASCADE, related_name="items")
    data_row_id = models.BigIntegerField()
    kind = models.CharField(max_length=7, choices=Kind.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "data_row_id"], name="jobselectionitem_one_per_row")]
        indexes = [
            # Resolving a job's rows: "included / excluded row ids of job J".
            models.Index(fields=["job", "kind", "data_row_id"], name="jobselectionitem_by_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} row {self.data_row_id}"


class JobSkippedRow(models.Model):
    """A row the job left alone, and why: written in the same transaction as the chunk, so
    the "skipped rows" link lists exactly what the job skipped, whatever happens later."""

    class Reason(models.TextChoices):
        BENCHMARK = "benchmark", "Benchmark row"
        LABELED = "labeled", "Already labeled (exclude mode)"

    job = models.ForeignKey(BulkClassificationJob, on_delete=models.CASCADE, related_name="skipped_rows")
    data_row = models.ForeignKey("catalog.DataRow", on_delete=models.CASCADE, related_name="+", db_index=False)
    reason = models.CharField(max_length=10, choices=Reason.choices)

    class Meta:
        constraints = [
            # Also the index of the skipped-rows page: "rows job J skipped, in id order".
            models.UniqueConstraint(fields=["job", "data_row"], name="jobskippedrow_one_per_row"),
        ]

    def __str__(self) -> str:
        return f"row {self.data_row_id}: {self.reason}"
