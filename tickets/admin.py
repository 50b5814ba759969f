from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone

from mcp_tools.exceptions import InvalidArguments

from .models import Ticket, TicketComment
from .services import ticket_notify_assignee, ticket_parse_id


class AppendOnlyNoteForm(forms.ModelForm):
    """A saved note is shown but cannot be edited (its fields are disabled, so posted changes are ignored)."""

    class Meta:
        model = TicketComment
        fields = ("body", "internal")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for field in self.fields.values():
                field.disabled = True
                field.help_text = ""


class TicketCommentInline(admin.StackedInline):
    """Notes, oldest first, each titled by its author and time; one empty form adds the next note."""

    model = TicketComment
    form = AppendOnlyNoteForm
    extra = 1
    can_delete = False
    fields = ("body", "internal")
    verbose_name = "note"
    verbose_name_plural = "Notes (append-only: a saved note is never rewritten)"


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("reference", "title", "status", "priority", "assignee", "requester", "created_at")
    list_display_links = ("reference", "title")
    list_filter = ("status", "priority", "assignee", "created_by_tool", "created_at")
    search_fields = ("title", "description", "requester", "request_id")
    search_help_text = "Searches title, description, requester and request id; TICK-00042 or 42 finds that ticket."
    list_select_related = ("assignee",)
    readonly_fields = ("reference", "created_by_tool", "created_by_token", "request_id", "created_at", "updated_at")
    inlines = (TicketCommentInline,)
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
