"""The preference pages in the admin: admins edit, support staff read."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
import pytest

from notifications.models import Notification, NotificationPreference

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:notifications_notificationpreference_changelist"


@pytest.fixture
def preference(db):
    return NotificationPreference.objects.create(recipient="muted-one@example.com", muted=True,
                                                 note="asked by phone", email_address="desk@example.com")


@pytest.fixture
def support_client(client):
    user = get_user_model().objects.create_user("frontline", "f@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Support staff"))
    client.force_login(user)
    return client


def form(**overrides):
    data = {"recipient": "new@example.com", "note": "", "email_enabled": "on", "webhook_enabled": "on",
            "preferred_channel": "", "email_address": "", "webhook_url": "", "muted_until_0": "",
            "muted_until_1": ""}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


class TestAdmin:
    def test_the_list_filters_and_searches(self, admin_client, preference):
        NotificationPreference.objects.create(recipient="loud@example.com")
        page = admin_client.get(reverse(CHANGELIST), {"muted__exact": "1"}).content.decode()
        assert "muted-one@example.com" in page and "loud@example.com" not in page
        page = admin_client.get(reverse(CHANGELIST), {"q": "desk@"}).content.decode()
        assert "muted-one@example.com" in page and "loud@example.com" not in page

    def test_the_change_form_renders_every_setting(self, admin_client, preference):
        response = admin_client.get(reverse("admin:notifications_notificationpreference_change",
                                            args=[preference.pk]))
        page = response.content.decode()
        assert response.status_code == 200
        for name in ("recipient", "email_enabled", "webhook_enabled", "preferred_channel", "email_address",
                     "webhook_url", "muted", "muted_until_0"):
            assert f'name="{name}"' in page

    def test_an_admin_adds_a_preference(self, admin_client):
        response = admin_client.post(reverse("admin:notifications_notificationpreference_add"),
                                     form(muted="on", preferred_channel="email"))
        assert response.status_code == 302, response.content.decode()[:2000]
        assert NotificationPreference.objects.get(recipient="new@example.com").muted is True

    def test_a_second_preference_for_the_same_recipient_is_refused(self, admin_client, preference):
        response = admin_client.post(reverse("admin:notifications_notificationpreference_add"),
                                     form(recipient="MUTED-ONE@example.com"))
        assert response.status_code == 200
        assert "This recipient already has preferences." in response.content.decode()
        assert NotificationPreference.objects.count() == 1

    def test_preferring_a_refused_channel_is_refused(self, admin_client):
        response = admin_client.post(reverse("admin:notifications_notificationpreference_add"),
                                     form(email_enabled=None, preferred_channel="email"))
        assert response.status_code == 200
        assert "The preferred channel must be one the recipient accepts." in response.content.decode()
        assert not NotificationPreference.objects.exists()

    def test_skipped_notifications_can_be_filtered_with_their_reason(self, admin_client):
        Notification.objects.create(recipient="x@example.com", message="m", status="skipped",
                                    skip_reason="The recipient has muted all notifications.")
        Notification.objects.create(recipient="y@example.com", message="m", status="sent")
        page = admin_client.get("/admin/notifications/notification/?status__exact=skipped").content.decode()
        assert "The recipient has muted all notifications." in page
        assert "y@example.com" not in page


class TestSupportStaff:
    def test_support_staff_read_the_list_and_the_form(self, support_client, preference):
        assert "muted-one@example.com" in support_client.get(reverse(CHANGELIST)).content.decode()
        page = support_client.get(reverse("admin:notifications_notificationpreference_change",
                                          args=[preference.pk])).content.decode()
        assert "asked by phone" in page
        assert 'name="muted"' not in page and 'name="_save"' not in page  # read-only

    def test_support_staff_cannot_change_add_or_delete(self, support_client, preference):
        change = reverse("admin:notifications_notificationpreference_change", args=[preference.pk])
        assert support_client.post(change, form(recipient=preference.recipient)).status_code == 403
        assert support_client.get(reverse("admin:notifications_notificationpreference_add")).status_code == 403
        assert support_client.post(reverse("admin:notifications_notificationpreference_delete",
                                           args=[preference.pk]), {"post": "yes"}).status_code == 403
        preference.refresh_from_db()
        assert preference.muted is True and preference.email_address == "desk@example.com"
