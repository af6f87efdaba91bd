"""Test helpers shared across tiers: story databases, fixtures, simulated data, servers."""
