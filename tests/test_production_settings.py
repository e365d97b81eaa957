"""Production settings (PRC_ENV=production) and researcher sign-in: HTTPS, no DEBUG, a separate hash salt,
no demo data, throttled sign-in, a second factor, and ``check --deploy`` clean. Settings are read once per
process, so the production ones are checked in a subprocess, as a deployment would start."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from participants.roles import PI

SECRET = secrets.token_urlsafe(50)
PRODUCTION = {
    "PRC_ENV": "production",
    "DJANGO_SECRET_KEY": SECRET,
    "PRC_HASH_SALT": secrets.token_urlsafe(32),
    "DJANGO_ALLOWED_HOSTS": "prc.example.org",
    # Never connected to by these commands: production names its own servers, so nothing embedded starts.
    "DATABASE_URL": "postgres://prc:unused@127.0.0.1:9/prc",
    "CELERY_BROKER_URL": "redis://127.0.0.1:9/0",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Only what a deployment sets: not the test run's own switches (DJANGO_ALLOW_ASYNC_UNSAFE is Playwright's).
    dropped = {*PRODUCTION, "DJANGO_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    environment = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**environment, **PRODUCTION, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_passes_with_production_settings() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_require_https_behind_the_proxy() -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_SECURE,"
        " s.PRC_REQUIRE_2FA, s.DEBUG)"
    )
    result = manage("shell", "-c", code)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https') True True False"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG must be off"),
        ({"PRC_HASH_SALT": SECRET}, "PRC_HASH_SALT must differ from DJANGO_SECRET_KEY"),
        ({"PRC_HASH_SALT": ""}, "PRC_HASH_SALT must be set"),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(env: dict[str, str], message: str) -> None:
    result = manage("check", **env)

    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize("command", ["seed_demo", "seed_demo_content"])
def test_production_refuses_to_seed_demo_data(command: str) -> None:
    result = manage(command)

    assert result.returncode != 0
    assert f"{command} is refused when PRC_ENV=production" in result.stderr


# --- sign-in ------------------------------------------------------------------------------------


def sign_in(client: Client, username: str, password: str, **extra: str) -> int:
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password, **extra})
    return int(response.status_code)


@pytest.mark.django_db
def test_repeated_failed_sign_ins_lock_the_account_out_even_with_the_right_password(settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_user("pi-target", password="Correct-horse-9", is_staff=True, is_superuser=True)
    client = Client()

    failures = [sign_in(client, "pi-target", f"guess-{n}") for n in range(3)]
    locked = sign_in(client, "pi-target", "Correct-horse-9")

    assert failures[:2] == [200, 200]  # the form again, with an error
    assert locked == 429
    assert client.get("/admin/").status_code == 302  # not signed in
    assert sign_in(Client(REMOTE_ADDR="10.9.8.7"), "pi-target", "Correct-horse-9") == 302  # another address


@pytest.mark.django_db
def test_with_a_second_factor_required_a_password_alone_does_not_open_the_admin(settings) -> None:
    settings.PRC_REQUIRE_2FA = True
    user = User.objects.create_user("two-factor", password="Correct-horse-9", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=PI)[0])
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()

    assert sign_in(client, "two-factor", "Correct-horse-9") == 200
    assert client.get("/admin/").status_code == 302
    token = str(totp(device.bin_key, step=device.step, digits=device.digits)).zfill(device.digits)
    assert sign_in(client, "two-factor", "Correct-horse-9", otp_device=device.persistent_id, otp_token=token) == 302

    assert client.get("/admin/").status_code == 200
    assert client.get("/research/funnel/").status_code not in (302, 403)  # past the access rule


@pytest.mark.django_db
def test_a_session_without_the_second_factor_is_sent_to_sign_in_when_it_is_required(settings) -> None:
    settings.PRC_REQUIRE_2FA = True
    user = User.objects.create_user("password-only", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)

    assert client.get("/admin/").status_code == 302
    assert client.get("/research/funnel/")["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_an_all_digit_password_is_refused() -> None:
    root = Client()
    root.force_login(User.objects.create_superuser("root-user", password="Correct-horse-9"))
    target = User.objects.create_user("frank")

    response = root.post(
        f"/admin/auth/user/{target.pk}/password/", {"password1": "83920174650183", "password2": "83920174650183"}
    )

    assert response.status_code == 200
    assert "entirely numeric" in response.content.decode()
