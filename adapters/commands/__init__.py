"""One module per `hotline` sub-command; each has `register(subparsers)`."""
