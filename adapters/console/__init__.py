"""The terminal channel: `hotline chat`."""
