"""Dagger module for the lead conversion pipeline: the project's own commands in containers."""

from .main import LeadPipeline as LeadPipeline
