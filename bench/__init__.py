"""Benchmarks of the hub: scripts that print figures (`python bench/flows.py --help`)."""
