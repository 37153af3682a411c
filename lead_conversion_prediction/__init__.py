"""Lead conversion prediction: will a new signup become a paying customer?"""

__version__ = "0.1.0"
