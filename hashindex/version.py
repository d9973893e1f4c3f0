"""The package's version, in a module of its own: the manifest and the model files record it,
and importing it must not import the package's front door (hashindex/__init__.py)."""

__version__ = "0.1.0"
