"""The `requests` schema, which requests_api alone writes."""

from __future__ import annotations
