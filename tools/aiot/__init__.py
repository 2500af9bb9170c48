"""aiot: the numpy reference of the integer contract (docs/arithmetic.md), the model file, the
exporter and the test-vector format."""
