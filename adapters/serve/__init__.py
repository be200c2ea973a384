"""`hotline serve`: channels, the hub that runs conversations for them, and the config."""
