# A saved .keras model holds its compiled optimizer: importing any module of
# this package registers the project's optimizers so that it loads.
from models import lazy_optimizers  # noqa: F401
