"""Source kinds → the four canonical tables: resolution, adapters, Delta snapshots."""
