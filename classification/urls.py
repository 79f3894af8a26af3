from django.urls import path

from . import views

app_name = "classification"
urlpatterns = [
    path("wizard/", views.wizard, name="wizard"),
    path("wizard/projects/", views.project_list, name="projects"),
    path("wizard/project/", views.project_body, name="project_body"),
    path("wizard/answers/", views.answers, name="answers"),
    path("wizard/batch-name/", views.batch_name_check, name="batch_check"),
    path("wizard/preview/", views.preview, name="preview"),
    path("wizard/submit/", views.submit, name="submit"),
    path("notifications/", views.notification_panel, name="panel"),
    path("notifications/read/", views.mark_read, name="mark_read"),
    path("jobs/<id:pk>/resume/", views.resume, name="resume"),
    path("jobs/<id:pk>/skipped/", views.skipped_rows, name="skipped"),
]
