"""Recipients and subjects are checked when a notification is queued; delivery faults end in a recorded reason.

Delivery runs in this process against the local SMTP sink (no worker needed to see what is sent).
"""
from datetime import timedelta
import email

from django.utils import timezone
import pytest

from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.tokens import token_issue
from notifications import services
from notifications.models import Notification
from notifications.transports import notification_message_id


@pytest.fixture
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(services, "notification_enqueue",
                        lambda *, notification_id, countdown=None: calls.append(notification_id))
    return calls


@pytest.fixture
def send(db, settings, enqueued):
    from demo_company.seed import seed_tools

    seed_tools("http://127.0.0.1:9")
    settings.CELERY_TASK_ALWAYS_EAGER = True  # no broker check here; the broker has tests of its own
    caller = Caller(token=token_issue(name="notifier", all_tools=True).token)

    def call(user_id, message="Deploy finished", **extra):
        return tool_invoke(name="send_notification", arguments={"user_id": user_id, "message": message, **extra},
                           caller=caller)
    return call


@pytest.mark.parametrize("user_id, field, words", [
    ("a@example.com, b@example.com", "recipient", "not one valid e-mail address"),
    ("a@example.com; b@example.com", "recipient", "not one valid e-mail address"),
    ("a@example.com\r\nBcc: everyone@example.com", "recipient", "control characters"),
    ("a@example.com\n", "recipient", "control characters"),
    ("x" * 4990 + "@example.com", "recipient", "at most 254 characters"),
    ("   ", "recipient", "give one e-mail address"),
    ("not-an-address@", "recipient", "not one valid e-mail address"),
    # Invisible characters: the mail system drops them, a preference lookup does not (a muted recipient).
    ("mute@example.com\ufeff", "recipient", "invisible characters"),
    ("mute@EXAMPLE.com\u200b", "recipient", "invisible characters"),
    # Line and paragraph separators break headers as CR/LF do; an IDNA-invalid domain cannot be delivered.
    ("a@example.com\u2028b", "recipient", "control characters"),
    ("a@exa\u2029mple.com", "recipient", "control characters"),
    ("a@" + "x" * 70 + ".example", "recipient", "not one valid e-mail address"),
])
def test_a_recipient_that_is_not_one_address_is_refused_and_nothing_is_queued(send, enqueued, user_id, field,
                                                                              words):
    refused = send(user_id)
    assert (refused.outcome, refused.error_code) == ("invalid", "invalid_arguments"), refused.message
    assert refused.message.startswith(f"{field}:") and words in refused.message
    assert not Notification.objects.exists() and enqueued == []


@pytest.mark.parametrize("subject, words", [
    ("Hello\r\nBcc: everyone@example.com", "control characters"),
    ("s" * 201, "at most 200 characters"),
])
def test_a_subject_that_would_break_the_headers_is_refused(send, enqueued, subject, words):
    refused = send("ops@example.com", subject=subject)
    assert refused.outcome == "invalid" and refused.message.startswith("subject:") and words in refused.message
    assert not Notification.objects.exists() and enqueued == []


@pytest.mark.parametrize("user_id", ["ops@example.com", "Ops.Team+deploys@Example.COM", "o'brien@sub.example.co.uk",
                                     "ana@bücher.example", "a" * 64 + "@" + "b" * 60 + ".example.com"])
def test_everyday_addresses_are_queued(send, enqueued, user_id, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sent = send(user_id, subject="Build #42 — finished (ok)")
    assert sent.ok, sent.message
    assert Notification.objects.get().recipient == user_id and len(enqueued) == 1


def test_a_five_thousand_character_recipient_answers_400_over_rest(demo, demo_token, api):
    response = api.post("/mcp/v1/tools/invoke", headers={"Authorization": f"Bearer {demo_token}"},
                        json={"name": "send_notification", "arguments": {"user_id": "x" * 5000, "message": "m"}})
    assert response.status_code == 400, response.text
    assert "recipient: at most 254 characters" in response.json()["error"]
    assert not Notification.objects.exists()


@pytest.fixture
def smtp(settings, smtp_sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_sink.port
    return smtp_sink


def _row(**fields):
    fields.setdefault("message", "hi")
    fields.setdefault("next_attempt_at", timezone.now())
    return Notification.objects.create(**fields)


def _messages_of(sink, pk):
    parsed = [email.message_from_string(m["data"]) for m in list(sink.messages)]
    return [m for m in parsed if m["X-Notification-Id"] == str(pk)]


@pytest.mark.parametrize("recipient", ["a@example.com, b@example.com", "a@example.com\r\nBcc: b@example.com"])
def test_an_unexpected_delivery_error_fails_at_once_with_its_reason(db, smtp, recipient):
    """Rows written before recipients were checked (or any fault no retry cures) must not stay 'sending'."""
    notification = _row(recipient=recipient)
    delivery = services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert delivery.status == notification.status == "failed"
    assert notification.attempts == 1 and notification.lease_expires_at is None
    assert notification.last_error.startswith("Delivery failed unexpectedly (")
    assert "not retried" in notification.last_error
    assert services.notification_deliver(notification_id=notification.pk).status == "failed"  # never claimed again
    notification.refresh_from_db()
    assert notification.attempts == 1


def test_a_notification_out_of_attempts_fails_instead_of_being_claimed_again(db, smtp, settings):
    """Its last worker died mid-send (lease expired): a 7th attempt of 6 would be one too many."""
    notification = _row(recipient="ops@example.com", status="sending", attempts=settings.NOTIFICATION_MAX_ATTEMPTS,
                        lease_expires_at=timezone.now() - timedelta(seconds=1))
    delivery = services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert delivery.status == notification.status == "failed"
    assert notification.attempts == settings.NOTIFICATION_MAX_ATTEMPTS
    assert notification.last_error.startswith(f"Gave up after {settings.NOTIFICATION_MAX_ATTEMPTS} attempts")
    assert _messages_of(smtp, notification.pk) == []


def test_every_attempt_of_an_email_carries_the_same_message_id(db, smtp, settings):
    """A worker killed after SMTP DATA sends again: the repeat keeps the Message-ID, so receivers drop it."""
    settings.NOTIFICATION_MESSAGE_ID_DOMAIN = "mail.example.org"
    notification = _row(recipient="ops@example.com")
    assert services.notification_deliver(notification_id=notification.pk).status == "sent"
    # What a lease takeover does after a worker died before recording 'sent'.
    Notification.objects.filter(pk=notification.pk).update(status="sending",
                                                           lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.notification_deliver(notification_id=notification.pk).status == "sent"
    first, second = _messages_of(smtp, notification.pk)
    notification.refresh_from_db()
    assert first["Message-ID"] == second["Message-ID"] == notification_message_id(notification)
    assert first["Message-ID"].startswith(f"<notification.{notification.pk}.")
    assert first["Message-ID"].endswith("@mail.example.org>")
    other = _row(recipient="ops@example.com")
    services.notification_deliver(notification_id=other.pk)
    assert _messages_of(smtp, other.pk)[0]["Message-ID"] != first["Message-ID"]
