"""Benchmark-only URLs (see bench/views.py); mounted under /bench/ only when
settings.STORYHUB_BENCH_VIEWS is true."""

from django.urls import path

from . import views

urlpatterns = [
    path("floor/projects/<slug:slug>/stories", views.floor_story_list, name="bench-floor-list"),
    path("floor/projects/<slug:slug>/stories/<str:key>", views.floor_story_detail, name="bench-floor-detail"),
    path("trivial", views.trivial, name="bench-trivial"),
    path("worker", views.worker, name="bench-worker"),
]
