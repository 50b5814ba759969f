"""Admin login attempts are throttled per client IP and per username."""
import secrets

from django.test import Client, override_settings
import pytest

from ..helpers import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("five_a_minute")]


@pytest.fixture
def five_a_minute():
    with override_settings(MCP_ADMIN_LOGIN_RATE_LIMIT="5/m"):
        yield


@pytest.fixture
def admin_user(django_user_model):
    # Random names and addresses: counters in the shared Redis never collide between runs.
    username = f"admin-{secrets.token_hex(4)}"
    django_user_model.objects.create_superuser(username, f"{username}@example.com", "right-password")
    return username


def new_client():
    return Client(REMOTE_ADDR=f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}")


def attempt(client, username, password):
    return client.post("/admin/login/", {"username": username, "password": password, "next": "/admin/"})


def test_the_sixth_attempt_in_a_minute_is_refused_even_with_the_right_password(admin_user):
    client = new_client()
    assert [attempt(client, admin_user, "wrong").status_code for _ in range(5)] == [200] * 5
    response = attempt(client, admin_user, "right-password")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert b"Too many login attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_the_limit_follows_the_username_across_addresses(admin_user):
    for _ in range(5):
        attempt(new_client(), admin_user, "wrong")
    assert attempt(new_client(), admin_user, "right-password").status_code == 429


def test_the_limit_follows_the_address_across_usernames(admin_user):
    client = new_client()
    for i in range(5):
        attempt(client, f"nobody-{secrets.token_hex(4)}", "x")
    assert attempt(client, admin_user, "right-password").status_code == 429


def test_a_correct_login_under_the_limit_works(admin_user):
    client = new_client()
    attempt(client, admin_user, "wrong")
    response = attempt(client, admin_user, "right-password")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_viewing_the_login_page_is_not_counted(admin_user):
    client = new_client()
    assert all(client.get("/admin/login/").status_code == 200 for _ in range(10))
    assert attempt(client, admin_user, "right-password").status_code == 302


def test_with_the_cache_down_the_login_still_works(admin_user):
    dead = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                        "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    with override_settings(CACHES=dead, SESSION_ENGINE="django.contrib.sessions.backends.db"):
        client = new_client()
        assert attempt(client, admin_user, "right-password").status_code == 302
