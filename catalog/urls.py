from django.urls import path

from . import import_views, views

app_name = "catalog"
urlpatterns = [
    path("", views.browse, name="browse"),
    path("count/", views.count, name="count"),
    path("rows/<id:pk>/", views.row_detail, name="row"),
    path("rows/<id:pk>/thumbnail/", views.row_thumbnail, name="row_thumbnail"),
    path("datasets/", views.dataset_list, name="datasets"),
    path("datasets/import/", import_views.import_images, name="import"),
    path("selection/toggle/", views.selection_toggle, name="selection_toggle"),
    path("selection/range/", views.selection_range, name="selection_range"),
    path("selection/all/", views.selection_all, name="selection_all"),
    path("selection/clear/", views.selection_clear, name="selection_clear"),
    path("selection/similar/", views.similar_to_selection, name="similar_to_selection"),
    path("projector/", views.projector_page, name="projector"),
    path("projector/points/", views.projector_points, name="projector_points"),
    path("projector/select/", views.projector_select, name="projector_select"),
]
