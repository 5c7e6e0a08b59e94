"""Autoscaling: the pure policy (`policy`), and the day simulator that compares it with other policies."""
