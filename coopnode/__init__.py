"""CoopNode: a payment node for Japanese university co-ops."""

__version__ = "0.1.0"
