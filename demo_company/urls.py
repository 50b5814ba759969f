from django.urls import path

from . import views

urlpatterns = [
    path("crm/customers/search", views.crm_search, name="demo-crm-search"),
    path("billing/invoices/create", views.billing_invoice, name="demo-billing-invoice"),
]
