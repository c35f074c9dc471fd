"""Vendor protocols: one module per vendor document, httpx in and typed results out.

Nothing here knows about Celery, the store or settings; each module can be read with its vendor
document beside it.
"""
