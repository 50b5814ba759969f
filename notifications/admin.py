from django.contrib import admin, messages

from .models import Notification
from .services import notifications_resend


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "recipient", "subject", "status", "attempts", "last_error", "created_at",
                    "next_attempt_at", "sent_at")
    list_filter = ("status", "channel", "created_at")
    search_fields = ("recipient", "subject", "message", "request_id")
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
