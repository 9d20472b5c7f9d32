"""Bundled scenarios and the seeded generator of Janitor-like data."""
