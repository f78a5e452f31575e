"""Running the whole system on one machine: the demo (`dev.py up`), the test runner, and the test fixtures."""
