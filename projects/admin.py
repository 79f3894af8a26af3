"""Admin for ontology setup (nested question → options → sub-questions inlines, a read-only
tree preview, JSON import and export) and for projects and their batches."""

from __future__ import annotations

import json
from typing import Any

import nested_admin
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .models import Batch, Ontology, Option, Project, ProjectDataRow, Question
from .services import OntologyError, _Node, dump_ontology_json, export_ontology_json, import_ontology_json, ontology_tree

# Questions can nest to any depth; the admin page shows this many question levels (deeper
# ones stay editable from the Question admin).
ADMIN_QUESTION_LEVELS = 4


class QuestionFormSet(nested_admin.formsets.NestedInlineFormSet):
    """Sibling questions need distinct names. The database refuses duplicates too, but only
    a form error tells the admin which name to change instead of a server error."""

    def clean(self) -> None:
        super().clean()
        names: set[str] = set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            name = form.cleaned_data.get("name")
            if name in names:
                raise ValidationError(f'Question name "{name}" is used twice at this level; names must be unique among siblings.')
            if name:
                names.add(name)


class OptionFormSet(nested_admin.formsets.NestedInlineFormSet):
    """Option rules that need the parent question's kind: radio and checklist need at least
    one option, text none. (Duplicate values are caught by Django's own check of the
    unique (question, value) constraint in super().clean().)"""

    def clean(self) -> None:
        super().clean()
        parent_form = getattr(self, "parent_form", None)
        parent_data = getattr(parent_form, "cleaned_data", None) or {}
        if parent_data.get("DELETE"):
            return
        kind = parent_data.get("kind") or self.instance.kind
        name = parent_data.get("name") or self.instance.name
        kept = [f for f in self.forms if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("DELETE")]
        if kind in (Question.Kind.RADIO, Question.Kind.CHECKLIST) and not kept:
            raise ValidationError(f'Question "{name}": a {kind} question needs at least one option.')
        if kind == Question.Kind.TEXT and kept:
            raise ValidationError(f'Question "{name}": a text question has no options; remove them or change its type.')


class GlobalQuestionsOnly:
    """The first level shows the global questions only; sub-questions share the ontology
    foreign key but appear under their option instead."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Question]:
        return super().get_queryset(request).filter(parent_option__isnull=True)  # type: ignore[misc]


def _inlines(level: int) -> type[nested_admin.NestedStackedInline]:
    """The question inline for one nesting level, with its options inline and, below that,
    the next level's sub-questions."""
    option_attrs: dict[str, Any] = {
        "model": Option,
        "formset": OptionFormSet,
        "fields": ["label", "value", "position"],
        "extra": 0,
        "sortable_field_name": "position",
    }
    if level < ADMIN_QUESTION_LEVELS:
        option_attrs["inlines"] = [_inlines(level + 1)]
    option_inline = type(f"OptionInlineL{level}", (nested_admin.NestedStackedInline,), option_attrs)
    question_attrs: dict[str, Any] = {
        "model": Question,
        "formset": QuestionFormSet,
        "fk_name": "ontology" if level == 1 else "parent_option",
        "fields": ["name", "kind", "instructions", "required", "position"],
        "extra": 0,
        "sortable_field_name": "position",
        "inlines": [option_inline],
        "verbose_name": "question" if level == 1 else "sub-question",
    }
    bases = (GlobalQuestionsOnly, nested_admin.NestedStackedInline) if level == 1 else (nested_admin.NestedStackedInline,)
    return type(f"QuestionInlineL{level}", bases, question_attrs)


class ImportOntologyForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Name of the new ontology.")
    file = forms.FileField(help_text='Labelbox-shaped JSON: {"tools": [], "classifications": [...]}')


@admin.register(Ontology)
class OntologyAdmin(nested_admin.NestedModelAdmin):
    list_display = ["name", "question_count", "project_count", "created_at"]
    list_filter = ["created_at", "questions__kind"]
    search_fields = ["name", "questions__name"]
    readonly_fields = ["tree_preview", "created_at"]
    fields = ["name", "tree_preview", "created_at"]
    inlines = [_inlines(1)]
    actions = ["export_json"]
    change_list_template = "admin/projects/ontology/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ontology]:
        return (
            super()
            .get_queryset(request)
            .annotate(n_questions=Count("questions", distinct=True), n_projects=Count("projects", distinct=True))
        )

    @admin.display(description="Questions", ordering="n_questions")
    def question_count(self, obj: Ontology) -> int:
        return getattr(obj, "n_questions", 0)

    @admin.display(description="Projects", ordering="n_projects")
    def project_count(self, obj: Ontology) -> int:
        return getattr(obj, "n_projects", 0)

    @admin.display(description="Tree preview")
    def tree_preview(self, obj: Ontology) -> SafeString | str:
        if obj.pk is None:
            return "Save the ontology to see its tree."
        tree = ontology_tree(obj)
        if not tree:
            return "No questions yet."
        return format_html('<div class="ontology-tree">{}</div>', _tree_html(tree))

    @admin.action(description="Export selected ontology as JSON")
    def export_json(self, request: HttpRequest, queryset: QuerySet[Ontology]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one ontology to export.", messages.ERROR)
            return None
        ontology = queryset.get()
        response = HttpResponse(dump_ontology_json(export_ontology_json(ontology)), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="ontology-{ontology.pk}.json"'
        return response

    def get_urls(self) -> list[URLPattern]:
        own = [path("import-json/", self.admin_site.admin_view(self.import_json_view), name="projects_ontology_import_json")]
        return own + super().get_urls()

    def import_json_view(self, request: HttpRequest) -> HttpResponse:
        """Create an ontology from an uploaded Labelbox JSON file; every problem is listed
        and nothing is created when one is found."""
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = ImportOntologyForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                data = json.loads(form.cleaned_data["file"].read().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                form.add_error("file", f"The file is not valid JSON ({exc}).")
            else:
                try:
                    ontology = import_ontology_json(data, name=form.cleaned_data["name"])
                except OntologyError as exc:
                    for error in exc.errors:
                        form.add_error(None, error)
                else:
                    self.message_user(request, f'Imported ontology "{ontology.name}".', messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:projects_ontology_change", args=[ontology.pk]))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": "Import ontology JSON",
        }
        return TemplateResponse(request, "admin/projects/ontology/import_json.html", context)


def _tree_html(nodes: list[_Node]) -> SafeString:
    """Nested lists of questions and options; every name goes through format_html (escaped)."""
    items = []
    for node in nodes:
        q = node.question
        options = format_html_join(
            "",
            "<li>{} <code>{}</code>{}</li>",
            ((opt.label, opt.value, _tree_html(subs) if subs else "") for opt, subs in node.options),
        )
        items.append(
            format_html(
                "<li><strong>{}</strong> <em>({}{})</em>{}</li>",
                q.name,
                q.get_kind_display(),
                ", required" if q.required else "",
                format_html("<ul>{}</ul>", options) if node.options else "",
            )
        )
    return format_html("<ul>{}</ul>", format_html_join("", "{}", ((i,) for i in items)))


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "required", "ontology", "parent_option", "position"]
    list_filter = ["kind", "required", "ontology"]
    search_fields = ["name", "instructions", "ontology__name"]
    list_select_related = ["ontology", "parent_option__question"]
    raw_id_fields = ["parent_option"]


class BatchInline(admin.TabularInline):
    model = Batch
    fields = ["name", "priority", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "ontology", "consensus", "created_at", "created_by"]
    list_filter = ["consensus", "ontology", "created_at"]
    search_fields = ["name", "description"]
    inlines = [BatchInline]
    readonly_fields = ["created_at", "created_by"]

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "priority", "created_at"]
    list_filter = ["priority", "project"]
    search_fields = ["name", "project__name"]


@admin.register(ProjectDataRow)
class ProjectDataRowAdmin(admin.ModelAdmin):
    list_display = ["data_row", "project", "batch", "step", "benchmark"]
    list_filter = ["step", "benchmark", "project"]
    search_fields = ["data_row__global_key"]
    raw_id_fields = ["data_row", "batch"]
    list_select_related = ["data_row", "project", "batch"]
