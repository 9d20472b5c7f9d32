"""The harness: data sources, comparator, CLI and services."""
