"""Losses shared by the methods (float32 throughout)."""
