from django.urls import path

from alerts import views

app_name = "alerts"
urlpatterns = [
    path("ack/<str:token>/", views.acknowledge, name="acknowledge"),
    path("twilio/status", views.twilio_status, name="twilio-status"),
    path("twilio/inbound", views.twilio_inbound, name="twilio-inbound"),
]
