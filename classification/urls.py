from django.urls import path

from . import views

app_name = "classification"
urlpatterns = [
    path("notifications/", views.notification_panel, name="panel"),
]
