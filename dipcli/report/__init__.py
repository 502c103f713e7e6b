"""What the user sees: live progress, curves, the HTML page."""
