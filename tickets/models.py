from django.conf import settings
from django.db import models


class Ticket(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        WAITING = "waiting", "Waiting"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    title = models.CharField(max_length=200)
    description = models.TextField()
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True)
    requester = models.CharField(max_length=254, blank=True, help_text="Who the ticket is for (e-mail or name).")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="assigned_tickets")
    created_by_tool = models.CharField(max_length=128, blank=True)
    created_by_token = models.CharField(max_length=16, blank=True, help_text="Prefix of the API token used.")
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.reference} {self.title}" if self.pk else self.title

    @property
    def reference(self) -> str:
        return f"TICK-{self.pk:05d}"


class TicketComment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    author_label = models.CharField(max_length=128, blank=True, help_text="Tool or token that wrote it.")
    body = models.TextField()
    internal = models.BooleanField(default=True, help_text="Internal note, not shown to the requester.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self):
        who = (self.author.get_username() if self.author_id and self.author else "") or self.author_label or "unknown"
        when = self.created_at.strftime("%Y-%m-%d %H:%M:%S %Z") if self.created_at else "not saved yet"
        return f"{who}, {when}{' (internal)' if self.internal else ''}"
