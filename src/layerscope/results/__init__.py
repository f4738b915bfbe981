"""The study's result tables, their statistics and comparisons, and result figures."""
