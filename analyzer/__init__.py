"""mxota: can this Mendix native release go over the air?"""

__version__ = "0.1.0"
