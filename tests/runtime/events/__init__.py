"""Contract tests of the event port, run against every adapter."""
