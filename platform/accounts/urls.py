"""Signing in and out, the second factor, the account page, the password reset form. Included
before django.contrib.auth.urls (which still serves logout, password change and the reset's later
steps, with the templates in joliba/templates/registration/)."""

from django.urls import include, path
from django.views.generic import RedirectView

from . import views

# The names django-two-factor-auth reverses, under its namespace.
two_factor_patterns = (
    [
        path("two-factor/setup/", views.SetupView.as_view(), name="setup"),
        path("two-factor/qrcode/", views.QRGeneratorView.as_view(), name="qr"),
        path("two-factor/backup-codes/", views.BackupTokensView.as_view(), name="backup_tokens"),
        path("two-factor/", RedirectView.as_view(pattern_name="account"), name="profile"),
        path(
            "two-factor/login/", RedirectView.as_view(pattern_name="login", query_string=True), name="login"
        ),
        path(
            "two-factor/setup/complete/",
            RedirectView.as_view(pattern_name="two_factor:backup_tokens"),
            name="setup_complete",
        ),
    ],
    "two_factor",
)

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("password_reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("verify/", views.verify_second_factor, name="verify_second_factor"),
    path("me/", views.account, name="account"),
    path("logout-everywhere/", views.logout_everywhere, name="logout_everywhere"),
    path("", include(two_factor_patterns)),
]
