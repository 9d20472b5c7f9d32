"""Renderers for comparison reports (HTML, JSON, JUnit)."""
