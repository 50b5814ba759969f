from django.db import models


class Notification(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    recipient = models.CharField(max_length=254, help_text="E-mail address, or the user id a webhook receives.")
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL, db_index=True)
    target = models.CharField(max_length=500, blank=True, help_text="Webhook URL for webhook notifications.")
    subject = models.CharField(max_length=200, blank=True)
    message = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
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
