"""Data sets the simulator trains on: the 2-D sets and the shipped digits (seeded, shipped as code or data)."""
