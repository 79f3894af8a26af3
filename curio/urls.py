from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from catalog import views as catalog_views
from curio.ids import IdConverter

register_converter(IdConverter, "id")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("media/<path:path>", catalog_views.media, name="media"),
    path("projects/", include("projects.urls")),
    path("classification/", include("classification.urls")),
    path("", include("catalog.urls")),
]
