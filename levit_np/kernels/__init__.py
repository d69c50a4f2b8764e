"""Kernel namespaces. `reference` is plain NumPy and is the spec; faster backends keep its names and signatures."""
