"""Labeling projects on Label Studio over image datasets; their labels become versioned datasets."""
