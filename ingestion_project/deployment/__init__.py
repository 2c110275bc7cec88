"""What production processes need besides the catalog: compute-log storage and the executor."""
