"""The admin dashboard: what agents did over the last day and week, read from the audit trail."""
