"""Offline tiny text encoders for the AudioGen tests: a WordLevel tokenizer + a random tiny T5 encoder."""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ("a", "dog", "barks", "rain", "falls", "heavy", "on", "the", "roof", "bird", "sings", "car", "engine",
         "sound", "of", "loud", "quiet", "wind", "water", "running")


def tiny_tokenizer():  # noqa: ANN201 - PreTrainedTokenizerFast
    """T5-like conventions: ``<pad>`` 0, ``</s>`` 1 appended to every text, ``<unk>`` 2, whitespace words."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_t5(d_model: int = 16, seed: int = 0):  # noqa: ANN201 - T5EncoderModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(WORDS) + 3, d_model=d_model, d_kv=4, d_ff=16, num_layers=1, num_heads=2,
                      relative_attention_num_buckets=8, decoder_start_token_id=0)
    return T5EncoderModel(config).eval()


def write_tiny_t5(directory: Path, d_model: int = 16) -> Path:
    """A loadable T5 directory (config, weights, fast tokenizer files)."""
    directory.mkdir(parents=True, exist_ok=True)
    tiny_t5(d_model).save_pretrained(str(directory))
    tiny_tokenizer().save_pretrained(str(directory))
    return directory


def tiny_conditioner(d_model: int = 16):  # noqa: ANN201 - TextConditioner
    from sara.audiogen.conditioning import TextConditioner

    return TextConditioner(tiny_tokenizer(), tiny_t5(d_model), d_model)


def write_sentencepiece_t5(directory: Path, d_model: int = 16) -> Path:
    """A T5 directory shaped like the HF t5 snapshots: ``spiece.model`` (a tiny unigram model trained here, T5's
    ids: pad 0, eos 1, unk 2) + config + weights."""
    import sentencepiece as spm
    from transformers import T5Config, T5EncoderModel

    directory.mkdir(parents=True, exist_ok=True)
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))) * 5)
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(directory / "spiece"), vocab_size=40,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   minloglevel=2)
    torch.manual_seed(0)
    config = T5Config(vocab_size=40, d_model=d_model, d_kv=4, d_ff=16, num_layers=1, num_heads=2,
                      relative_attention_num_buckets=8, decoder_start_token_id=0)
    T5EncoderModel(config).save_pretrained(str(directory))
    return directory
