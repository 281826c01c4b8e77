"""Data: source readers, catalogue hygiene, sequences and splits, the dataset folder."""

from .catalogue import Catalogue
from .dataset import Dataset, PrepareConfig, prepare
from .sources import FORMATS, read_source
from .tables import SourceData

__all__ = ["FORMATS", "Catalogue", "Dataset", "PrepareConfig", "SourceData", "prepare", "read_source"]
