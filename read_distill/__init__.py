"""read-distill: ReAD, reinforcement-guided capability distillation for LLMs.

Importing this package is cheap: it never imports torch, transformers or vllm.
"""

__version__ = "0.1.0"
