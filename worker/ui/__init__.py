"""The operator page, `/ui`: server-rendered HTML behind the API's keys (worker/ui/router.py)."""

from worker.ui.router import install

__all__ = ["install"]
