"""Training, evaluation, registry, tracking, validation and scoring of the lead model."""
