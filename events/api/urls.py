"""Routes of the events app, included under /api/v1/ by stories.api.urls."""

from django.urls import path

from . import views

W = "projects/<str:slug>/webhooks/"
E = W + "<int:webhook_id>/"

urlpatterns = [
    path("events/", views.EventFeedView.as_view(), name="event-feed"),
    path("events/stream/", views.EventStreamView.as_view(), name="event-stream"),
    path(W, views.WebhookListView.as_view(), name="webhook-list"),
    path(E, views.WebhookDetailView.as_view(), name="webhook-detail"),
    path(E + "deliveries/", views.WebhookDeliveryListView.as_view(), name="webhook-deliveries"),
    path(E + "deliveries/<int:delivery_id>/redeliver/", views.WebhookRedeliverView.as_view(), name="webhook-redeliver"),
    path(E + "ping/", views.WebhookPingView.as_view(), name="webhook-ping"),
]
