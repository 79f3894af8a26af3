"""Embedding spaces and their vectors.

A vector is only comparable with vectors of the same space (same network, same weights),
so every vector belongs to exactly one EmbeddingSpace and search never mixes spaces.
Imported from models.py so Django sees these models as part of the catalog app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class EmbeddingSpace(models.Model):
    """One network's vector space: a CLIP model + weights, or custom vectors imported by name.

    `vectors_version` is bumped by every service that writes or deletes vectors of the space;
    the in-process search cache (vector_search) compares it to decide whether to reload.
    """

    class Kind(models.TextChoices):
        CLIP = "clip", "CLIP"
        CUSTOM = "custom", "Custom"

    # "clip:ViT-B-32:laion2b_s34b_b79k" or "custom:NAME"
    key = models.CharField(max_length=300, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    model_name = models.CharField(max_length=200, blank=True)
    pretrained = models.CharField(max_length=500, blank=True)
    dim = models.PositiveIntegerField()
    vectors_version = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Embedding(models.Model):
    """One data row's vector in one space, stored as float32 bytes (dim * 4 bytes)."""

    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="embeddings")
    data_row = models.ForeignKey("catalog.DataRow", on_delete=models.CASCADE, related_name="embeddings")
    vector = models.BinaryField()

    class Meta:
        constraints = [
            # Also the index for "all vectors of space S" (search cache load) and for "rows of
            # space S that already have a vector" (resumable embedding jobs).
            models.UniqueConstraint(fields=["space", "data_row"], name="embedding_one_per_row_and_space"),
        ]

    def __str__(self) -> str:
        return f"{self.space.key} vector of row {self.data_row_id}"


class EmbeddingJob(models.Model):
    """A background embedding run; the notification panel reads its progress.

    The task writes its own status (hooks can be lost), and `done` after every batch, so a
    restarted job resumes by skipping rows that already have a vector.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    space = models.ForeignKey(EmbeddingSpace, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    dataset = models.ForeignKey("catalog.Dataset", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    reembed = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # Per-row problems (unreadable image ...), capped; and the reason a whole job failed.
    errors = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # Notification panel: "this user's jobs that are still running", newest first.
            models.Index(fields=["user", "status", "-id"], name="embeddingjob_user_status"),
        ]

    def __str__(self) -> str:
        return f"embedding job {self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * (self.done + self.failed) / self.total))
