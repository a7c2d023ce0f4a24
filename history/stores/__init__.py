"""Where conversations are kept: one abstract store, the JSON folder and the database."""
