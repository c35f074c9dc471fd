"""HTTP API: the producers' endpoints, the operators' and the vendors' push callbacks.

Run it with `uvicorn worker.api:api` (or `herald up`).
"""

from worker.api.app import api, create_api

__all__ = ["api", "create_api"]
