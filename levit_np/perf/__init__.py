"""Measuring speed: one timing module, the paper's block-timing table, per-block model profiles, and bench."""
