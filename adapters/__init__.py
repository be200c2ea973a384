"""Channel adapters (console, Telegram, Matrix) and the command line that wires them."""
