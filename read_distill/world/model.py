"""What is the world's own on the model side: its tokenizer and its model configs.

Models are Llama-architecture ``transformers`` models built from config (never
downloaded), saved with ``save_pretrained`` (safetensors) and loaded with
``AutoModelForCausalLM``. They are trained with :func:`read_distill.train.fit_stream` and
generate with the backends' batched generation, exactly as a run trains and generates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from read_distill.world import GENERATORS, reference_completion

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")


@dataclass(frozen=True)
class ModelSize:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    #: std of the initial weights. transformers' 0.02 suits wide models; at width 128 it
    #: leaves attention logits so small that the look-up (induction) circuit sat on a
    #: plateau for millions of tokens, while 0.1 (about 1/sqrt(width)) learned it within
    #: about 1,500 steps (docs/world.md). The student keeps 0.02: it is meant to be weak.
    init_std: float = 0.02

    def config(self, vocab_size: int, max_positions: int = 512) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden,
            intermediate_size=self.intermediate,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.heads,
            max_position_embeddings=max_positions,
            tie_word_embeddings=True,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            initializer_range=self.init_std,
        )


# -- tokenizer ------------------------------------------------------------------------------


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on world text, digits split one per token, pad/bos/eos.

    The tokenizer itself puts ``<bos>`` first whenever special tokens are asked for, as the
    tokenizers of real models do: every path that encodes a prompt then feeds the models
    the way they were trained, with nothing added by hand.
    """
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    bos = tok.token_to_id("<bos>")
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")


def new_model(size: ModelSize, vocab_size: int, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model of ``size`` (deterministic in ``seed``)."""
    torch.manual_seed(seed)
    return LlamaForCausalLM(size.config(vocab_size))


def n_params(model: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def world_texts(n_per: int, seed: int = 0) -> list[str]:
    """A corpus of world text (prompts + reference completions) to train the tokenizer on."""
    from read_distill.world import TASK_GENERATORS

    texts = []
    for g in GENERATORS.values():
        for d in ("easy", "medium", "hard"):
            for i in range(n_per):
                it = g.generate(seed * 7919 + i, d)
                texts.append(it.prompt + reference_completion(it))
    for name, g in TASK_GENERATORS.items():
        if name.startswith("cap_"):
            continue
        for i in range(n_per):
            it = g.generate(seed * 7919 + i, "medium")
            texts.append(it.prompt + reference_completion(it))
    return texts
