"""An offline stand-in for a local FLAN-T5 directory: a tiny ``T5EncoderModel`` + a word-level fast tokenizer
that behaves like T5's (``</s>`` appended, ``<pad>`` id 0, right padding), saved with ``save_pretrained``.

No T5 sentencepiece model ships with the installed packages, so the tokenizer is built in memory with
``tokenizers``; everything downstream (``AutoTokenizer.from_pretrained``, padding, truncation) is the real
transformers code path.
"""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ("a dog barks rain falls on tin roof and birds sing car engine idles people talk loudly in the "
         "distance wind blows").split()


def tiny_t5_config(d_model: int = 32):  # noqa: ANN201 - transformers.T5Config
    from transformers import T5Config

    return T5Config(vocab_size=64, d_model=d_model, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)


def tiny_t5_tokenizer(model_max_length: int = 16):  # noqa: ANN201 - PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(dict.fromkeys(WORDS))}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=model_max_length)


def make_tiny_t5_dir(path: Path, d_model: int = 32, seed: int = 0) -> Path:
    """Write ``config.json`` + weights + tokenizer files of a tiny random T5 encoder to ``path``."""
    from transformers import T5EncoderModel

    torch.manual_seed(seed)
    T5EncoderModel(tiny_t5_config(d_model)).save_pretrained(str(path))
    tiny_t5_tokenizer().save_pretrained(str(path))
    return path
