"""Renderers for what covgen found: a console table, and versioned JSON other tools read."""
