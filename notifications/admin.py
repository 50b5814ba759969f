from django.contrib import admin, messages
from django.db import transaction

from .models import Notification
from .tasks import deliver_notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "recipient", "subject", "status", "attempts", "last_error", "created_at",
                    "sent_at")
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
        ids = list(queryset.filter(status=Notification.Status.FAILED).values_list("pk", flat=True))
        with transaction.atomic():
            Notification.objects.filter(pk__in=ids).update(status=Notification.Status.QUEUED, last_error="")
            for pk in ids:
                transaction.on_commit(lambda pk=pk: deliver_notification.delay(pk), robust=True)
        self.message_user(request, f"Queued {len(ids)} notification(s) again.", messages.SUCCESS)
