from django.contrib import admin

from .models import DataRow, Dataset, MetadataField


class MetadataFieldInline(admin.TabularInline):
    model = MetadataField
    extra = 0


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "created_by", "created_at"]
    search_fields = ["name"]
    inlines = [MetadataFieldInline]


@admin.register(DataRow)
class DataRowAdmin(admin.ModelAdmin):
    list_display = ["global_key", "dataset", "width", "height", "format", "created_at"]
    list_filter = ["dataset", "format"]
    search_fields = ["global_key"]
    readonly_fields = ["content_hash", "created_at"]
    show_full_result_count = False  # a 1M-row changelist must not count twice
