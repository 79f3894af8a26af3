from django.urls import path

from . import import_views, views

app_name = "catalog"
urlpatterns = [
    path("", views.browse, name="browse"),
    path("count/", views.count, name="count"),
    path("rows/<int:pk>/", views.row_detail, name="row"),
    path("datasets/", views.dataset_list, name="datasets"),
    path("datasets/import/", import_views.import_images, name="import"),
    path("selection/toggle/", views.selection_toggle, name="selection_toggle"),
    path("selection/range/", views.selection_range, name="selection_range"),
    path("selection/all/", views.selection_all, name="selection_all"),
    path("selection/clear/", views.selection_clear, name="selection_clear"),
]
