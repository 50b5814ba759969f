from django.contrib import admin

from .models import BillingAccount, Customer, Order, Product

admin.site.register(Customer, list_display=("id", "name", "email", "state", "plan"), search_fields=("email", "name"))
admin.site.register(Product, list_display=("id", "name", "sku", "price_cents"))
admin.site.register(Order, list_display=("id", "customer", "product", "quantity", "total_cents", "status"))
admin.site.register(BillingAccount, list_display=("id", "customer", "plan", "status"))
