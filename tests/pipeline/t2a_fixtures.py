"""Builders for the pipeline tests: a tiny T5 directory and an official-format model directory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from sara.dit import LatentDiT
from sara.dit.official import official_to_config

torch.set_num_threads(1)

WORDS = ["a", "dog", "bark", "s", "rain", "on", "roof", "bird", "sing", "car", "engine", "loud", "soft"]

OFFICIAL_BACKBONE = {
    "_target_": "models.dit.mask_dit.UDiT",
    "img_size": 500, "patch_size": 1, "in_chans": 768, "input_type": "1d", "embed_dim": 32, "depth": 2,
    "num_heads": 2, "mlp_ratio": 4, "qkv_bias": False, "qk_norm": "layernorm", "act_layer": "geglu",
    "norm_layer": "layernorm", "context_norm": True, "time_fusion": "ada_sola_bias", "ada_sola_rank": 4,
    "ada_sola_alpha": 4, "context_dim": 32, "context_fusion": "cross", "context_max_length": 64,
    "context_pe_method": "none", "pe_method": "none", "rope_mode": "shared", "use_conv": True,
    "skip": True, "skip_norm": True,
}


def make_tiny_t5_dir(path: Path) -> Path:
    """A 2-layer 16-d T5 encoder (random weights) + a small unigram T5 tokenizer, saved HF-style."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    vocab += [(f"▁{w}", -1.0) for w in WORDS] + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    tok = T5Tokenizer(vocab=vocab, extra_ids=0)
    cfg = T5Config(vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
                   feed_forward_proj="gated-gelu", relative_attention_num_buckets=8, decoder_start_token_id=0)
    torch.manual_seed(0)
    T5EncoderModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def randomize(model: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model.eval()


def make_official_dir(path: Path, t5_dir: Path, *, weights: str = "model.safetensors") -> Path:
    """An official-format TTA model dir: hydra-like config.json + prefixed weights (random, tiny)."""
    from transformers import T5EncoderModel

    from sara.vocoder import SemanticVocoder, VocoderConfig

    path.mkdir(parents=True, exist_ok=True)
    dit = randomize(LatentDiT(dataclasses.replace(official_to_config(OFFICIAL_BACKBONE), text_dim=16)), seed=2)
    torch.manual_seed(3)
    vocoder = SemanticVocoder(VocoderConfig.tiny())
    t5 = T5EncoderModel.from_pretrained(t5_dir)
    state = {f"model.backbone.{k}": v for k, v in dit.state_dict().items() if not k.startswith("text_proj.")}
    state.update({f"model.content_encoder.text_encoder.proj.{k}": v for k, v in dit.text_proj.state_dict().items()})
    state.update({f"model.content_encoder.text_encoder.model.{k}": v for k, v in t5.state_dict().items()
                  if k != "encoder.embed_tokens.weight"})  # HF de-duplicates the tied embedding
    state.update({f"model.autoencoder.generator.{k}": v for k, v in vocoder.generator.state_dict().items()})
    state["model.dummy_param"] = torch.zeros(0)
    state = {k: v.contiguous().clone() for k, v in state.items()}
    if weights == "model.safetensors":
        save_file(state, str(path / weights))
    else:
        torch.save(state, path / weights)
    (path / "flan-t5-tiny").symlink_to(t5_dir, target_is_directory=True)
    config = {
        "architectures": ["SemanticVocoder"], "model_type": "semantic_vocoder",
        "auto_map": {"AutoConfig": "model.SemanticVocoderConfig", "AutoModel": "model.SemanticVocoder"},
        "model_config": {
            "_target_": "models.flow_matching.SingleTaskCrossAttentionAudioFlowMatching",
            "cfg_drop_ratio": 0.2, "sample_strategy": "normal", "num_train_steps": 1000,
            "autoencoder": {"_target_": "models.autoencoder.waveform.semanticVocoder.SemanticVocoder",
                            "encoder_name": "none", "sample_rate": 24000, "downsampling_ratio": 960},
            "content_encoder": {"_target_": "models.content_encoder.content_encoder.ContentEncoder",
                                "embed_dim": 32,
                                "text_encoder": {"_target_": "models.content_encoder.text_encoder.T5TextEncoder",
                                                 "embed_dim": 32, "model_name": "flan-t5-tiny"}},
            "backbone": OFFICIAL_BACKBONE,
        },
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path
