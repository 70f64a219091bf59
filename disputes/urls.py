from django.urls import path

from . import views

app_name = "disputes"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("mine/", views.mine, name="mine"),
    path("new/", views.intake, name="intake"),
    path("verification/", views.verification_inbox, name="verification_inbox"),
    path("bulletin/", views.bulletin, name="bulletin"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/receipt/", views.receipt, name="receipt"),
    path("<int:pk>/letter/", views.letter, name="letter"),
    path("<int:pk>/assign/", views.assign, name="assign"),
    path("<int:pk>/request-verification/", views.request_verification, name="request_verification"),
    path("<int:pk>/answer/", views.answer, name="answer"),
    path("<int:pk>/extend/", views.extend, name="extend"),
    path("<int:pk>/decide/", views.decide, name="decide"),
    path("<int:pk>/appeal/", views.appeal, name="appeal"),
    path("<int:pk>/reconsider/", views.reconsider, name="reconsider"),
    path("<int:pk>/close/", views.close, name="close"),
    path("attachments/<int:pk>/", views.attachment_download, name="attachment_download"),
]
