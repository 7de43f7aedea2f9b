"""What a registered version runs when it is loaded: MLflow's models-from-code entry point.

``log_pyfunc`` logs this file as the version's ``python_model`` instead of a cloudpickle of the
model object, so loading ``models:/...@champion`` imports :class:`TokenSkipModel` from the
packaged ``tokenskip`` code and unpickles nothing. MLflow executes this file on load; registering
the model object here is its only effect.
"""

from mlflow.models import set_model

from tokenskip.register.pyfunc_model import TokenSkipModel

set_model(TokenSkipModel())
