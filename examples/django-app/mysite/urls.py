from django.urls import path

from notes import views

urlpatterns = [
    path("", views.index),
    path("add", views.add),
    path("health", views.health),
]
