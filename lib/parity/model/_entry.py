"""Model-from-code entry point: MLflow runs this file to build the pyfunc (no pickling)."""

from mlflow.models import set_model

from parity.model.packaged import ParityModel

set_model(ParityModel())
