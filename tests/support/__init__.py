"""What the tests share: discs authored with the real tools, small models, running the workflow (not tests)."""
