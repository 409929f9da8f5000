"""Flax modules of the five methods and their shared layers."""
