"""The browser's import page: upload many images (and an optional manifest) into a dataset.

It calls the same service as `manage.py import_images`, so files are validated the same way
and failures carry the same reasons.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django_htmx.middleware import HtmxDetails

from .importer import ImportRefused, ImportReport, ManifestError, import_uploads
from .models import Dataset

# The report of the last plain (non-HTMX) upload, shown once after its redirect. Kept in the
# curator's own session, so nobody else sees which files they uploaded.
REPORT_SESSION_KEY = "curio_import_report"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails  # set by django-htmx's middleware


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Many files under one name (Django's documented pattern for `<input multiple>`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        single = super().clean
        if isinstance(data, list | tuple):
            if not data and self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class ImportForm(forms.Form):
    dataset = forms.CharField(
        max_length=200, error_messages={"required": "Give the dataset a name: pick an existing one or type a new one."}
    )
    # Empty files are let through: the importer refuses them with its own reason, exactly as
    # on the command line, instead of the form failing them with a different message.
    images = MultipleFileField(allow_empty_file=True, error_messages={"required": "Choose at least one image file to upload."})
    manifest = forms.FileField(required=False, allow_empty_file=True)


def queue_embedding(report: ImportReport, user: Any = None) -> None:
    """After an import (browser or `import_images`): queue an embedding job for the dataset's
    new rows when CLIP weights are here; otherwise say in the report, in one line, that the
    images were not embedded and what to set. The import itself has succeeded either way."""
    from .clip import ClipUnavailable
    from .embedding_service import start_embedding_job

    if not report.imported:
        return
    dataset = Dataset.objects.filter(name=report.dataset).first()
    try:
        start_embedding_job(user if getattr(user, "is_authenticated", False) else None, dataset=dataset)
    except ClipUnavailable:
        report.warnings.append(
            f"{len(report.imported)} image(s) were not embedded for search: CLIP weights are absent. Set "
            f"CURIO_CLIP_PRETRAINED (now {settings.CURIO_CLIP_PRETRAINED!r}) to a checkpoint file for "
            f"CURIO_CLIP_MODEL={settings.CURIO_CLIP_MODEL!r}, then run `python manage.py embed`."
        )


@require_http_methods(["GET", "POST"])
def import_images(request: HtmxHttpRequest) -> HttpResponse:
    report: ImportReport | None = None
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                report = import_uploads(
                    form.cleaned_data["images"],
                    dataset_name=form.cleaned_data["dataset"],
                    manifest_file=form.cleaned_data["manifest"],
                    user=request.user,
                )
            except ManifestError as exc:
                form.add_error("manifest", str(exc))
            except ImportRefused as exc:
                form.add_error("dataset", str(exc))
            if report is not None:
                queue_embedding(report, request.user)
            if report is not None and not request.htmx:
                request.session[REPORT_SESSION_KEY] = report.to_dict()
                return redirect("catalog:import")
            if report is not None:
                form = ImportForm(initial={"dataset": report.dataset})
    else:
        form = ImportForm()
        stored = request.session.pop(REPORT_SESSION_KEY, None)
        if stored:
            report = ImportReport.from_dict(stored)
            form = ImportForm(initial={"dataset": report.dataset})
    context = {
        "form": form,
        "report": report,
        "report_dataset": Dataset.objects.filter(name=report.dataset).first() if report else None,
        "dataset_names": Dataset.objects.order_by("name").values_list("name", flat=True),
        "max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES,
    }
    template = "catalog/import.html#import_panel" if request.htmx else "catalog/import.html"
    return render(request, template, context)
