"""multicam-tracker: turn several camera videos into one consistent set of person identities."""

__version__ = "0.1.0"
