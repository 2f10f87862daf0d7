"""The Enginy side: the source tables the pipeline reads, and a generator of realistic data."""
