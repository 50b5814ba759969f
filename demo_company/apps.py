from django.apps import AppConfig


class DemoCompanyConfig(AppConfig):
    name = "demo_company"
    verbose_name = "Demo company data"

    def ready(self):
        from . import kinds  # noqa: F401  (registers onboard_customer)
