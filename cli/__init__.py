"""The `levit` command line: a thin layer over the `levit_np` library (click + rich live only here)."""
