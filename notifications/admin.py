from django.contrib import admin, messages
from django.db import models

from .models import Notification, NotificationPreference
from .services import notifications_resend


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "recipient", "subject", "status", "attempts", "last_error", "skip_reason",
                    "created_at", "next_attempt_at", "sent_at")
    list_filter = ("status", "channel", "created_at")
    search_fields = ("recipient", "target", "subject", "message", "request_id", "skip_reason")
    date_hierarchy = "created_at"
    actions = ("resend",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Resend selected failed notifications", permissions=["change"])
    def resend(self, request, queryset):
        count = notifications_resend(notification_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"Queued {count} failed notification(s) again.", messages.SUCCESS)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    """Admins edit; support staff have the view permission only (Django then shows the form read-only)."""

    list_display = ("recipient", "email_enabled", "webhook_enabled", "preferred_channel", "email_address",
                    "webhook_url", "muted", "muted_until", "updated_at")
    list_filter = ("muted", "email_enabled", "webhook_enabled", "preferred_channel", "muted_until")
    search_fields = ("recipient", "email_address", "webhook_url", "note")
    readonly_fields = ("created_at", "updated_at")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # a bare host means https, not http
    fieldsets = (
        (None, {"fields": ("recipient", "note")}),
        ("Channels", {"fields": ("email_enabled", "webhook_enabled", "preferred_channel")}),
        ("Addresses", {"fields": ("email_address", "webhook_url")}),
        ("Mute", {"fields": ("muted", "muted_until"),
                  "description": "Muted notifications are recorded as 'skipped', never sent, and not sent later."}),
        (None, {"fields": ("created_at", "updated_at")}),
    )
