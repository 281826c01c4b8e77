"""genrec: generative recommendation with large language models.

GenRec (Ji et al., "GenRec: Large Language Model for Generative Recommendation", 2023):
a causal language model fine-tuned with LoRA on prompts listing the titles of a user's
items in order generates the title of the next item.
"""

__version__ = "0.1.0"
