"""Reconciliation files (CONTRACT.md, "Reconciliation files"): format, checks and comparison."""
