from django.contrib import admin, messages

from .models import Ticket, TicketComment
from .services import ticket_notify_assignee


class TicketCommentInline(admin.StackedInline):
    model = TicketComment
    extra = 1
    fields = ("body", "internal", "author", "author_label", "created_at")
    readonly_fields = ("author", "author_label", "created_at")


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "status", "priority", "assignee", "requester", "created_by_tool", "created_at")
    list_filter = ("status", "priority", "assignee", "created_by_tool", "created_at")
    search_fields = ("title", "description", "requester", "request_id")
    list_select_related = ("assignee",)
    readonly_fields = ("created_by_tool", "created_by_token", "request_id", "created_at", "updated_at")
    inlines = (TicketCommentInline,)
    actions = ["mark_in_progress", "mark_waiting", "mark_resolved", "mark_closed"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if "assignee" in form.changed_data and obj.assignee_id:
            notification = ticket_notify_assignee(ticket=obj)
            if notification is not None and notification.status == notification.Status.SKIPPED:
                who = obj.assignee.get_username()
                self.message_user(request, f"The new assignee {who} was not notified: {notification.skip_reason}",
                                  messages.WARNING)

    def save_formset(self, request, form, formset, change):
        for comment in formset.save(commit=False):
            if comment.author_id is None and not comment.author_label:
                comment.author = request.user
            comment.save()
        for deleted in formset.deleted_objects:
            deleted.delete()

    def _set_status(self, request, queryset, status):
        count = queryset.update(status=status)
        self.message_user(request, f"{count} ticket(s) set to {Ticket.Status(status).label}.", messages.SUCCESS)

    @admin.action(description="Mark selected tickets in progress", permissions=["change"])
    def mark_in_progress(self, request, queryset):
        self._set_status(request, queryset, Ticket.Status.IN_PROGRESS)

    @admin.action(description="Mark selected tickets waiting", permissions=["change"])
    def mark_waiting(self, request, queryset):
        self._set_status(request, queryset, Ticket.Status.WAITING)

    @admin.action(description="Mark selected tickets resolved", permissions=["change"])
    def mark_resolved(self, request, queryset):
        self._set_status(request, queryset, Ticket.Status.RESOLVED)

    @admin.action(description="Mark selected tickets closed", permissions=["change"])
    def mark_closed(self, request, queryset):
        self._set_status(request, queryset, Ticket.Status.CLOSED)
