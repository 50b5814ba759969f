from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower


class Notification(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"  # the recipient's preferences ruled it out; never handed to a transport

    recipient = models.CharField(max_length=254, help_text="E-mail address, or the user id a webhook receives.")
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL, db_index=True)
    target = models.CharField(
        max_length=500, blank=True,
        help_text="Where it is delivered: the webhook URL, or for e-mail an address that replaces the recipient's.")
    subject = models.CharField(max_length=200, blank=True)
    message = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    skip_reason = models.CharField(max_length=300, blank=True,
                                   help_text="Why it was skipped (status 'skipped'): the recipient's preference.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="While 'sending': after this moment another worker may take it over.")
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="While 'queued': when the next delivery attempt is due.")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_by_tool = models.CharField(max_length=128, blank=True)
    created_by_token = models.CharField(max_length=16, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.channel} to {self.recipient} ({self.status})"


class NotificationPreference(models.Model):
    """What one recipient accepts. Keyed like Notification.recipient (e-mail or user id), case-insensitively."""

    recipient = models.CharField(max_length=254, help_text="As notifications name it: an e-mail address or a "
                                                           "user id. Matched without regard to case.")
    email_enabled = models.BooleanField("accepts e-mail", default=True)
    webhook_enabled = models.BooleanField("accepts webhooks", default=True)
    preferred_channel = models.CharField(
        max_length=16, blank=True, choices=Notification.Channel.choices,
        help_text="Used when the caller does not choose a channel itself.")
    email_address = models.EmailField(
        blank=True, help_text="Send this recipient's e-mail here instead (e.g. a user id's mailbox, or a deputy).")
    webhook_url = models.URLField(
        max_length=500, blank=True, help_text="Send this recipient's webhooks here instead of the tool's URL.")
    muted = models.BooleanField("mute all", default=False, help_text="Receive nothing until this is cleared.")
    muted_until = models.DateTimeField(null=True, blank=True, help_text="Receive nothing before this moment.")
    note = models.CharField(max_length=200, blank=True, help_text="Why (for other admins).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["recipient"]
        constraints = [
            models.UniqueConstraint(Lower("recipient"), name="notificationpreference_recipient_ci_unique",
                                    violation_error_message="This recipient already has preferences."),
        ]

    def __str__(self):
        return self.recipient

    def clean(self):
        self.recipient = self.recipient.strip()
        if self.preferred_channel and not self.accepts(self.preferred_channel):
            raise ValidationError({"preferred_channel": "The preferred channel must be one the recipient accepts."})

    def accepts(self, channel: str) -> bool:
        """A channel without a switch here (a future transport) is accepted; muting still covers it."""
        return {"email": self.email_enabled, "webhook": self.webhook_enabled}.get(channel, True)

    def muted_at(self, moment) -> bool:
        return self.muted or (self.muted_until is not None and self.muted_until > moment)
