"""genrec: generative recommendation with large language models.

GenRec (Ji et al., "GenRec: Large Language Model for Generative Recommendation", 2023):
a causal language model fine-tuned with LoRA on prompts listing the titles of a user's
items in order generates the title of the next item.
"""

from ._version import __version__

__all__ = ["RecommendedItem", "Recommender", "__version__"]


def __getattr__(name: str):
    # `import genrec` stays light (no torch); the API is imported when first used
    if name in ("Recommender", "RecommendedItem"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'genrec' has no attribute {name!r}")
