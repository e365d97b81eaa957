"""The admin site: a second factor (django-otp) when ``PRC_REQUIRE_2FA`` is on, the stock login otherwise.

``admin.site`` keeps its identity (every app registers on it); only its class changes, the way django-otp
documents. The setting is read per request, so a deployment turns the requirement on without code.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.sites import AdminSite
from django.http import HttpRequest
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

OTP_LOGIN_TEMPLATE = OTPAdminSite.login_template


class ResearchAdminSite(OTPAdminSite):
    """Researchers sign in with a password and, when required, a one-time token from a registered device."""

    @property
    def login_form(self) -> Any:
        return OTPAdminAuthenticationForm if settings.PRC_REQUIRE_2FA else AdminAuthenticationForm

    @property
    def login_template(self) -> Any:
        return OTP_LOGIN_TEMPLATE if settings.PRC_REQUIRE_2FA else None

    def has_permission(self, request: HttpRequest) -> bool:
        if settings.PRC_REQUIRE_2FA:
            return bool(super().has_permission(request))
        return AdminSite.has_permission(self, request)


admin.site.__class__ = ResearchAdminSite
