"""A small company's data (customers, products, orders) that the demo SQL tools read.

Table names are the plain ones an agent would write in SQL: users, products, orders.
"""
from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    state = models.CharField(max_length=2, blank=True, help_text="US state code")
    plan = models.CharField(max_length=32, default="free")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "users"
        ordering = ["id"]

    def __str__(self):
        return self.email


class Product(models.Model):
    name = models.CharField(max_length=200)
    sku = models.CharField(max_length=32, unique=True)
    price_cents = models.PositiveIntegerField()

    class Meta:
        db_table = "products"
        ordering = ["id"]

    def __str__(self):
        return self.name


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, db_column="user_id")
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField(default=1)
    total_cents = models.PositiveIntegerField()
    status = models.CharField(max_length=16, default="paid")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "orders"
        ordering = ["id"]


class BillingAccount(models.Model):
    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, db_column="user_id")
    plan = models.CharField(max_length=32)
    status = models.CharField(max_length=16, default="active")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "billing_accounts"
