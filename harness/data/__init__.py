"""Data formats and the Janitor database: sources, snapshots, the live reader, restore, output files."""
