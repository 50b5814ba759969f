from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"

    def ready(self):
        from . import kinds  # noqa: F401  (registers create_ticket)
