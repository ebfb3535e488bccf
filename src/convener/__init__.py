"""convener: an Asterisk ARI front door for Open Floor Protocol multi-agent conversations."""

__version__ = "0.1.0"
