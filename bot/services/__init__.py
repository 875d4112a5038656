"""Use cases: each service receives its ports by constructor and speaks core values."""
