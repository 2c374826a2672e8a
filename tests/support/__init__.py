"""Helpers shared by the test suites: real servers started through `modelyard.devstack`."""
