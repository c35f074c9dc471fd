"""HTTP API: the producers' endpoints, the operators' and the vendors' push callbacks.

Run it with `uvicorn worker.api:api` (or `herald up`).
"""

from worker.api.app import api, create_api
from worker.api.callbacks import RedactCallbackTokens

__all__ = ["RedactCallbackTokens", "api", "create_api"]
