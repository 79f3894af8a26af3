"""The catalog: datasets of imported images (data rows), their metadata schema and each
curator's selection."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MetadataField(models.Model):
    """A typed metadata field of a dataset; values live in DataRow.metadata under `name`.

    The type decides how values are parsed at import and which filter operators apply.
    """

    class Kind(models.TextChoices):
        STRING = "string", "String"
        NUMBER = "number", "Number"
        DATETIME = "datetime", "Date & time"
        ENUM = "enum", "Enum"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="fields")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.STRING)
    # Enum fields: the values seen so far, kept sorted for the filter's pick list.
    choices = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["dataset", "name"], name="metadatafield_unique_name_per_dataset")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class DataRow(models.Model):
    """One imported image. `global_key` identifies it across Curio and in exports."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="rows")
    global_key = models.CharField(max_length=1024, unique=True)
    file = models.FileField(upload_to="originals/", max_length=500)
    thumbnail = models.FileField(upload_to="thumbnails/", max_length=500)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=16)
    byte_size = models.PositiveBigIntegerField()
    content_hash = models.CharField(max_length=64, db_index=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # Catalog grid filtered by dataset, newest first: keyset on id within a dataset.
            models.Index(fields=["dataset", "-id"], name="datarow_dataset_newest"),
            # Catalog grid sorted by global key: keyset on (global_key, id).
            models.Index(fields=["global_key", "id"], name="datarow_key_order"),
            models.Index(fields=["dataset", "global_key", "id"], name="datarow_dataset_key_order"),
        ]

    def __str__(self) -> str:
        return self.global_key

    @property
    def folder(self) -> str:
        return str(self.metadata.get("folder", ""))


class Selection(models.Model):
    """A curator's current selection, kept on the server so it survives paging and reloads.

    The selected rows are:
        (rows matching `filter_query`, created no later than `max_row_id`, minus excluded)
        ∪ included
    `filter_query` is frozen when "Select all" is pressed, so changing the catalog filter
    afterwards never silently changes what is selected. With no Select all, only the
    explicitly included rows count.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="selection")
    select_all = models.BooleanField(default=False)
    filter_query = models.TextField(blank=True)
    max_row_id = models.BigIntegerField(null=True, blank=True)
    # Last row id clicked in the grid: the anchor of a shift-click range.
    anchor_row_id = models.BigIntegerField(null=True, blank=True)
    # The exact number of selected rows, kept up to date by every selection service, so the
    # selection bar on every page never counts a million-row Select all again.
    row_count = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"selection of {self.user}"


class SelectionItem(models.Model):
    class Kind(models.TextChoices):
        INCLUDE = "include", "Included"
        EXCLUDE = "exclude", "Excluded"

    selection = models.ForeignKey(Selection, on_delete=models.CASCADE, related_name="items")
    data_row = models.ForeignKey(DataRow, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=7, choices=Kind.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["selection", "data_row"], name="selectionitem_one_per_row")]
        indexes = [
            # Resolving a selection: "ids of included / excluded rows of selection S".
            models.Index(fields=["selection", "kind", "data_row"], name="selectionitem_by_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} row {self.data_row_id}"


# Embedding models live in their own module; imported here so Django registers them with the app.
from .embedding_models import Embedding, EmbeddingJob, EmbeddingSpace  # noqa: E402,F401
