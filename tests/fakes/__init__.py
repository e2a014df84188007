"""In-memory fakes of each feature's ports, one module per feature, shared by every test of it."""
