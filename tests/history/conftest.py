"""Fixtures of the learning-history tests."""

from tests.context.test_values import raw  # noqa: F401  (the raw LMS rows fixture)
