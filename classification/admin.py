from django.contrib import admin

from .models import BulkClassificationJob, Notification


@admin.register(BulkClassificationJob)
class BulkClassificationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "created_by", "status", "processed_rows", "total_rows", "created_at"]
    list_filter = ["status", "project"]
    readonly_fields = ["counts", "batch_names", "cursor", "runner", "started_at", "heartbeat_at", "finished_at"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["user", "level", "text", "read", "created_at"]
    list_filter = ["level", "read"]
