from django.urls import path

from . import views

app_name = "projects"
urlpatterns = [
    path("", views.project_list, name="list"),
    path("new/", views.project_new, name="new"),
    path("<id:pk>/", views.project_detail, name="detail"),
    path("<id:pk>/export.<str:fmt>", views.project_export, name="export"),
]
