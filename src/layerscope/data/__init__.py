"""Data preparation: sources, seeded stratified splits, decoded image arrays."""
