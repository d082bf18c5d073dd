"""CLAP embedder from a local directory (a tiny random ClapModel + processor written here) and the CLI score."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sara.audio.io import load_audio, save_audio
from sara.cli.__main__ import main

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


@pytest.fixture
def clap_dir(tmp_path: Path) -> Path:
    """A ClapModel with a whitespace word-level tokenizer and a non-fusion feature extractor."""
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "dog": 4, "rain": 5, "a": 6, "tone": 7}
    tk = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>",
                                               bos_token="<s>", eos_token="</s>")
    cfg = transformers.ClapConfig(
        text_config=dict(vocab_size=16, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=80),
        audio_config=dict(depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1], hidden_size=64,
                          patch_embeds_hidden_size=8, spec_size=256, num_mel_bins=64),
        projection_dim=8)
    torch.manual_seed(0)
    out = tmp_path / "clap"
    transformers.ClapModel(cfg).save_pretrained(out)
    transformers.ClapFeatureExtractor(truncation="rand_trunc").save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_clap_embedder_and_generation_score(tmp_path: Path, clap_dir: Path) -> None:
    from sara.eval.embedders import build_embedder

    emb = build_embedder(f"clap:{clap_dir}")
    t = torch.arange(24000) / 24000
    wavs = [(0.3 * torch.sin(2 * math.pi * f * t))[None] for f in (300, 500, 700)]
    caps = ["a dog", "rain", "a tone"]
    for i, w in enumerate(wavs):
        save_audio(tmp_path / "gen" / f"s{i}.wav", w, 24000)
        save_audio(tmp_path / "ref" / f"r{i}.wav", 0.5 * w, 24000)
    (tmp_path / "caps.tsv").write_text("".join(f"s{i}.wav\t{c}\n" for i, c in enumerate(caps)))
    out = tmp_path / "out"
    assert main(["eval", "generation", "--generated", str(tmp_path / "gen"), "--reference", str(tmp_path / "ref"),
                 "--embedder", f"clap:{clap_dir}", "--captions", str(tmp_path / "caps.tsv"), "--out", str(out)]) == 0
    m = json.loads((out / "generation.json").read_text())["metrics"]["clap"]
    audio = np.stack([emb.run(load_audio(tmp_path / "gen" / f"s{i}.wav")[0], 24000).clip.numpy() for i in range(3)])
    text = emb.embed_text(caps).numpy()
    assert audio.shape == (3, 8) and np.allclose(np.linalg.norm(audio, axis=1), 1.0, atol=1e-5)
    assert m["clap_pairs"] == 3
    assert m["clap_score"] == pytest.approx(float(np.mean(np.sum(audio * text, axis=1))), abs=1e-5)
