"""Measurements of herald under load, each a function that returns its figures."""
