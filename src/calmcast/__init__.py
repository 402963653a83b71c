"""calmcast: guided-meditation audio from practice scripts, offline."""

__version__ = "0.1.0"
