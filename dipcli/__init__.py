"""dipcli: image restoration with a Deep Image Prior, as a command-line tool."""

__version__ = "0.1.0"
