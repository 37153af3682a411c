"""What MLflow runs to load the registered model (models from code); never imported here."""

import mlflow

from lead_conversion_prediction.scoring.pyfunc import python_model

mlflow.models.set_model(python_model())
