"""Helpers shared by the stages: artifact storage and logging."""
