from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("two-factor/", views.otp_verify, name="otp_verify"),
    path("two-factor/enrol/", views.otp_enrol, name="otp_enrol"),
    path("invitation/<uidb64>/<token>/", views.InvitationView.as_view(), name="invitation"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("home/", views.home, name="home"),
    path("home/<slug:role>/", views.role_home, name="role_home"),
    path("users/", views.user_list, name="user_list"),
    path("users/invite/", views.user_invite, name="user_invite"),
    path("users/<int:pk>/roles/", views.user_roles, name="user_roles"),
    path("users/<int:pk>/active/", views.user_set_active, name="user_set_active"),
]
