"""mgca: does calcium correct once magnesium is repleted?"""

__version__ = "0.1.0"
