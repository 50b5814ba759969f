from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone

from mcp_tools.exceptions import InvalidArguments

from .models import Ticket, TicketComment
from .services import ticket_notify_assignee, ticket_parse_id


class TicketCommentInline(admin.StackedInline):
    """The notes so far, read-only: a note is never rewritten, only followed by another one."""

    model = TicketComment
    extra = 0
    can_delete = False
    fields = ("body", "internal")
    readonly_fields = fields
    verbose_name = "note"
    verbose_name_plural = "Notes (append-only, oldest first)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class NewTicketCommentInline(admin.StackedInline):
    """One empty form to add a note; the author and the time are recorded, never typed."""

    model = TicketComment
    extra = 1
    max_num = 1
    can_delete = False
    fields = ("body", "internal")
    verbose_name = "new note"
    verbose_name_plural = "Add a note"

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("reference", "title", "status", "priority", "assignee", "requester", "created_by_tool",
                    "created_at")
    list_display_links = ("reference", "title")
    list_filter = ("status", "priority", "assignee", "created_by_tool", "created_at")
    search_fields = ("title", "description", "requester", "request_id")
    search_help_text = "Searches title, description, requester and request id; TICK-00042 or 42 finds that ticket."
    list_select_related = ("assignee",)
    readonly_fields = ("reference", "created_by_tool", "created_by_token", "request_id", "created_at", "updated_at")
    inlines = (TicketCommentInline, NewTicketCommentInline)
    actions = ["assign_to_me", "mark_in_progress", "mark_waiting", "mark_resolved", "mark_closed"]

    @admin.display(description="number", ordering="pk")
    def reference(self, ticket):
        return ticket.reference if ticket.pk else "–"

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            ticket_id = ticket_parse_id(search_term.strip()) if search_term.strip() else None
        except InvalidArguments:
            ticket_id = None
        if ticket_id is not None:
            results = queryset.filter(Q(pk=ticket_id) | Q(pk__in=results.values("pk")))
        return results, may_have_duplicates

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if "assignee" in form.changed_data and obj.assignee_id:
            self._notify_assignee(request, obj)

    def _notify_assignee(self, request, ticket):
        notification = ticket_notify_assignee(ticket=ticket)
        if notification is not None and notification.status == notification.Status.SKIPPED:
            who = ticket.assignee.get_username()
            self.message_user(request, f"The new assignee {who} was not notified: {notification.skip_reason}",
                              messages.WARNING)

    def save_formset(self, request, form, formset, change):
        # Only new notes arrive here (existing ones are read-only); each is signed by the person who wrote it.
        for comment in formset.save(commit=False):
            if comment.pk is None:
                comment.author = request.user
                comment.author_label = ""
                comment.save()

    @admin.action(description="Assign selected tickets to me", permissions=["change"])
    def assign_to_me(self, request, queryset):
        count = queryset.exclude(assignee=request.user).update(assignee=request.user, updated_at=timezone.now())
        self.message_user(request, f"{count} ticket(s) assigned to you.", messages.SUCCESS)

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
