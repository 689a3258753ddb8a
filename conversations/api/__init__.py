"""The conversations REST API (mounted under /api/ by chatsite/urls.py)."""
