"""Reference numbers for the reference model's forward-pass test (tests/reflm.rs).

A tiny Qwen2ForCausalLM (grouped-query attention, QKV bias, untied embeddings) is built
with Hugging Face transformers from a fixed torch seed, its weights are saved as
safetensors under Hugging Face names, and its logits and mean next-token loss on fixed
token ids are written to JSON. The Rust test loads the same file into corpus's model and
must reproduce the numbers: they are computed by an independent implementation.

    python models/recipes/reflm_fixture.py tests/data/reflm

Needs torch and transformers (any recent version; run wherever they are installed, CI
does not need them: the outputs are committed).
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import Qwen2Config, Qwen2ForCausalLM


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    cfg = Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=88,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=16,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        torch_dtype="float32",
        attn_implementation="eager",
    )
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():
        # Random (not default-initialised) biases and norm gains, so the test sees them.
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if "norm" in name else 0.0))
            else:
                p.copy_(torch.randn_like(p) * 0.2)
    g = torch.Generator().manual_seed(99)
    ids = torch.randint(0, cfg.vocab_size, (2, 12), generator=g)
    with torch.no_grad():
        out_ = model(input_ids=ids, labels=ids)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(out, "model.safetensors"))
    model.config.to_json_file(os.path.join(out, "config.json"))
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(
            {
                "input_ids": ids.tolist(),
                "logits": out_.logits.tolist(),
                "loss": float(out_.loss),
                "torch": torch.__version__,
                "transformers": __import__("transformers").__version__,
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/reflm")
