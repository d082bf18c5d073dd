"""``sara eval``: generation metrics, reconstruction metrics, latent probes (and the offline classifier).

    sara eval generation --generated DIR --reference DIR [--captions FILE] [--embedder SPEC ...]
    sara eval reconstruction --model M --audio DIR [--steps N] [--rates 44100 22050] [--visqol]
    sara eval probe --encoder M --manifest FILE [--baseline mel] [--kinds linear mlp] [--grid hear|cpu|fast]
    sara eval train-classifier --manifest FILE --out DIR
    sara eval relevance --model M --classifier DIR --manifest FILE [--per-class 3] [--duration 4]

Each command writes ``<out>/<command>.json`` and ``<out>/<command>.md`` and prints the Markdown table.
Embedder specs: ``mel``, ``classifier:DIR``, ``semantic:DIR``, ``cnn14:FILE``, ``vggish:FILE``, ``clap:DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sara.cli._args import MAX_INT, float_range, int_range


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval`` and its sub-commands."""
    parser = subparsers.add_parser("eval", help="evaluate generations, reconstructions and latents")
    sub = parser.add_subparsers(dest="eval_command", metavar="WHAT", required=True)
    _add_generation(sub)
    _add_reconstruction(sub)
    _add_probe(sub)
    _add_train_classifier(sub)
    _add_relevance(sub)


def _add_relevance(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("relevance", help="classifier accuracy on audio generated from test captions vs real audio")
    p.add_argument("--model", default=None,
                   help="any text-to-audio model `sara generate` takes: SARA, Tango / sara LDM, DC-LDM, AudioGen "
                        "(default: the bundled demo model)")
    p.add_argument("--classifier", required=True, help="corpus classifier release (`sara eval train-classifier`)")
    p.add_argument("--also-classifier", action="append", default=[], metavar="DIR",
                   help="another classifier release that scores the same generated and real audio (repeatable; "
                        "same classes as --classifier)")
    p.add_argument("--manifest", type=Path, required=True, help="corpus manifest (jsonl)")
    p.add_argument("--split", default="test")
    p.add_argument("--per-class", type=int_range(1, 100_000), default=3, help="captions per class")
    p.add_argument("--samples-per-prompt", type=int_range(1, 1000), default=1,
                   help="clips generated per caption (different noise); every clip is scored")
    p.add_argument("--duration", type=float_range(0.0, 600.0, low_open=True), default=4.0, help="seconds per generated clip")
    p.add_argument("--steps", type=int_range(1, 10_000), default=None,
                   help="sampling steps (default: 50 DiT steps for SARA models, the model's own otherwise)")
    p.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the model's)")
    p.add_argument("--vocoder-steps", type=int_range(1, 10_000), default=None, help="vocoder steps (default: the model's)")
    p.add_argument("--batch-size", type=int_range(1, 1024), default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("eval_relevance"), help="output directory (JSON + Markdown)")
    p.set_defaults(func=run_relevance)


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--out", type=Path, default=Path(default_out), help="output directory (JSON + Markdown)")
    p.add_argument("--cache", type=Path, default=None, help="embedding cache directory (default: OUT/cache)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")


def _add_generation(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generation", help="FD / FAD / KL / IS / CLAP score of generated vs reference audio")
    p.add_argument("--generated", type=Path, required=True, help="directory of generated audio")
    p.add_argument("--reference", type=Path, required=True, help="directory of reference audio")
    p.add_argument("--captions", type=Path, default=None, help="captions (jsonl / csv / tsv) for the CLAP score")
    p.add_argument("--embedder", action="append", default=None, metavar="SPEC",
                   help="embedding model (repeatable); default: mel")
    _common(p, "eval_generation")
    p.set_defaults(func=run_generation)


def _add_reconstruction(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruction", help="encode -> decode distances (DAC mel, STFT, L1, SI-SDR, ViSQOL)")
    p.add_argument("--model", required=True,
                   help="SemanticVocoder release or checkpoint, a latent-diffusion model (its VAE + HiFi-GAN), an "
                        "EnCodec release or an AudioGen model (its codec)")
    p.add_argument("--audio", type=Path, required=True, help="directory (or file) of audio to reconstruct")
    p.add_argument("--steps", type=int_range(1, 10_000), default=None, help="sampling steps (default: the model's)")
    p.add_argument("--rates", type=int_range(1000, 384_000), nargs="+", default=[44100, 22050], help="measurement rates in Hz")
    p.add_argument("--visqol", action="store_true", help="add ViSQOL (needs the visqol-python package)")
    p.add_argument("--limit", type=int_range(1, MAX_INT), default=None, help="use only the first N files")
    p.add_argument("--seed", type=int, default=0)
    _common(p, "eval_reconstruction")
    p.set_defaults(func=run_reconstruction)


def _add_probe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="linear / MLP probes on mean-pooled latents vs a mel baseline, + t-SNE")
    p.add_argument("--encoder", required=True, help="SemanticEncoder release directory or checkpoint")
    p.add_argument("--manifest", type=Path, required=True, help="corpus manifest (jsonl with class and split)")
    p.add_argument("--baseline", action="append", default=None, metavar="SPEC",
                   help="baseline embedders (repeatable); default: mel; 'none' disables")
    p.add_argument("--kinds", nargs="+", choices=("linear", "mlp"), default=["linear", "mlp"])
    p.add_argument("--folds", choices=("split", "group"), default="split",
                   help="manifest train/valid/test split, or HEAR k-fold over the group field")
    p.add_argument("--label", choices=("class", "group"), default="class", help="manifest field to predict")
    p.add_argument("--grid", choices=("hear", "cpu", "fast"), default="hear",
                   help="probe grid: hear-eval-kit's, a CPU-sized one, or one point (smoke runs)")
    p.add_argument("--max-clips", type=int, default=None, help="seeded random subset of this many clips")
    p.add_argument("--min-train-clips", type=int, default=1,
                   help="with --label class: keep classes with at least this many train clips")
    p.add_argument("--no-tsne", action="store_true", help="skip the t-SNE plots")
    _common(p, "eval_probe")
    p.set_defaults(func=run_probe)


def _add_train_classifier(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-classifier", help="train the offline corpus classifier used for FD/KL/IS")
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="release directory to write")
    p.add_argument("--epochs", type=int_range(1, 100_000), default=30)
    p.add_argument("--min-train-clips", type=int, default=5, help="drop classes with fewer train clips")
    p.add_argument("--augment", action="store_true",
                   help="augment training crops (gain, coloured noise at 10-60 dB SNR, random EQ, SpecAugment) so "
                        "the classifier survives generic changes to the audio")
    p.add_argument("--class-balance", type=float_range(0.0, 4.0), default=0.0,
                   help="draw training clips with weight (clips of their class) ** -this; 0 = each clip once per "
                        "epoch, 1 = classes equal (thin classes, e.g. weather and vehicles, are seen more often)")
    p.add_argument("--seed", type=int_range(0, 2**31 - 1), default=0,
                   help="seed of the initialisation, batch order and augmentation (train several to measure how "
                        "much a score depends on the scorer)")
    p.add_argument("--tiny", action="store_true", help="tiny network (tests)")
    p.set_defaults(func=run_train_classifier)


def _cache(args: argparse.Namespace) -> Any:
    from sara.eval.runner import EmbeddingCache

    return EmbeddingCache(None if args.no_cache else (args.cache or args.out / "cache"))


def _audio_files(path: Path) -> list[Path]:
    from sara.audio.io import iter_audio_files
    from sara.errors import ConfigError, SaraError

    if not path.exists():
        raise ConfigError(f"{path}: no such file or directory")
    files = list(iter_audio_files([path]))
    if not files:
        raise SaraError(f"{path}: no audio files found")
    return files


def _finish(result: dict, rows: list[dict], args: argparse.Namespace, name: str, title: str) -> int:
    from sara.eval.report import write_report

    jpath, mpath, table = write_report(result, rows, args.out, name, title=title)
    print(table, end="")
    print(f"wrote {jpath} and {mpath}")
    return 0


def run_generation(args: argparse.Namespace) -> int:
    """``sara eval generation``."""
    from sara.eval.embedders import build_embedder
    from sara.eval.manifest import read_captions
    from sara.eval.runner import evaluate_generation

    embedders = [build_embedder(s) for s in (args.embedder or ["mel"])]
    captions = read_captions(args.captions) if args.captions else None
    result = evaluate_generation(_audio_files(args.generated), _audio_files(args.reference), embedders, _cache(args),
                                 captions=captions)
    rows = [{"embedder": name, **m} for name, m in result["metrics"].items()]
    return _finish(result, rows, args, "generation", f"Generation metrics ({result['num_generated']} generated, "
                   f"{result['num_reference']} reference, paired={result['paired']})")


def run_reconstruction(args: argparse.Namespace) -> int:
    """``sara eval reconstruction``."""
    from sara.eval.runner import evaluate_reconstruction

    files = _audio_files(args.audio)[: args.limit or None]
    vocoder = _reconstructor(args.model)
    result = evaluate_reconstruction(vocoder, files, steps=args.steps, rates=args.rates, with_visqol=args.visqol,
                                     seed=args.seed)
    rows = [{"model": str(args.model), "steps": args.steps, **result["metrics"]}]
    return _finish(result, rows, args, "reconstruction", f"Reconstruction ({result['num_files']} files)")


def _reconstructor(path: str) -> Any:
    """A SemanticVocoder release; a latent-diffusion model (Tango dir, sara LDM / DC-LDM release) whose
    VAE + HiFi-GAN path is scored (:class:`~sara.eval.mel_reconstruction.MelReconstructor`); an EnCodec release
    or an AudioGen model, whose codec is scored (:class:`~sara.eval.codec_reconstruction.CodecReconstructor`)."""
    from sara.errors import CheckpointError
    from sara.pipelines.detect import detect_model_kind, load_pipeline
    from sara.vocoder import SemanticVocoder

    try:
        kind = detect_model_kind(path)
    except CheckpointError:
        kind = None  # e.g. a SemanticVocoder release: its own loader reports what is wrong
    if kind in ("tango", "sara-ldm", "sara-dcldm"):
        from sara.eval.mel_reconstruction import MelReconstructor

        return MelReconstructor(load_pipeline(path))
    if kind in ("audiogen", "sara-audiogen") or _is_codec_release(path):
        from sara.eval.codec_reconstruction import CodecReconstructor

        codec = load_pipeline(path).codec if kind else _load_codec(path)
        return CodecReconstructor(codec)
    return SemanticVocoder.from_pretrained(path)


def _is_codec_release(path: str) -> bool:
    """True for a sara release directory whose ``config.json`` class is ``EncodecCodec``."""
    from sara.serialization import read_json_object

    cfg = Path(path) / "config.json"
    return cfg.is_file() and read_json_object(cfg).get("class") == "EncodecCodec"


def _load_codec(path: str) -> Any:
    from sara.codec.model import EncodecCodec

    return EncodecCodec.from_pretrained(path).eval()


def run_probe(args: argparse.Namespace) -> int:
    """``sara eval probe``."""
    from sara.eval.embedders import build_embedder
    from sara.eval.embedders.semantic import SemanticEmbedder
    from sara.eval.manifest import keep_frequent_classes, read_manifest
    from sara.eval.probe_runner import evaluate_probe

    clips = read_manifest(args.manifest)
    if args.label == "class":
        clips = keep_frequent_classes(clips, args.min_train_clips)
    specs = [s for s in (args.baseline or ["mel"]) if s != "none"]
    embedders = [SemanticEmbedder.from_pretrained(args.encoder), *(build_embedder(s) for s in specs)]
    result = evaluate_probe(clips, embedders, _cache(args), kinds=args.kinds, scheme=args.folds, label=args.label,
                            grid=args.grid, tsne_dir=None if args.no_tsne else args.out, max_clips=args.max_clips)
    rows = [{"features": name, "probe": kind, "metric": r["metric"], "mean": r["mean"], "std": r["std"],
             "balanced_acc": r.get("balanced_accuracy"), "dim": r["dim"]}
            for name, res in result["results"].items() for kind, r in res.items()]
    name = "probe" if args.label == "class" else f"probe_{args.label}"
    return _finish(result, rows, args, name, f"Probes ({result['num_clips']} clips, {result['num_classes']} "
                   f"{result['label']} labels, {result['scheme']} split)")


def run_train_classifier(args: argparse.Namespace) -> int:
    """``sara eval train-classifier``."""
    from sara.eval.augment import MelAugmentConfig
    from sara.eval.embedders.classifier import ClassifierConfig
    from sara.eval.manifest import keep_frequent_classes, read_manifest
    from sara.eval.train_classifier import ClassifierTrainConfig, train_classifier

    clips = keep_frequent_classes([c for c in read_manifest(args.manifest) if c.label], args.min_train_clips)
    names = tuple(sorted({c.label for c in clips if c.split == "train"}))
    config = ClassifierConfig.tiny(names) if args.tiny else ClassifierConfig.small(names)
    train = ClassifierTrainConfig(epochs=args.epochs, min_train_clips=args.min_train_clips,
                                  augment=MelAugmentConfig() if args.augment else None,
                                  class_balance=args.class_balance, seed=args.seed)
    stats = train_classifier(clips, args.out, config, train)
    args.out = Path(args.out)
    return _finish(stats, [stats], args, "classifier_training", "Corpus classifier")


def run_relevance(args: argparse.Namespace) -> int:
    """``sara eval relevance``."""

    import torch
    from tqdm.auto import tqdm

    from sara.audio.io import load_audio
    from sara.data.manifest import load_manifest
    from sara.errors import ConfigError, SaraError
    from sara.eval.embedders.classifier import ClassifierEmbedder
    from sara.eval.generators import caption_generator
    from sara.eval.relevance import classifier_fn, relevance_score, select_prompts
    from sara.pipelines.detect import load_pipeline
    from sara.pretrained import DEFAULT_MODEL

    if not args.manifest.is_file():
        raise ConfigError(f"{args.manifest}: no such manifest")
    records = load_manifest(args.manifest)
    classifier = ClassifierEmbedder.from_pretrained(args.classifier)
    others = {}
    for path in args.also_classifier:
        other = ClassifierEmbedder.from_pretrained(path)
        if other.model.config.class_names != classifier.model.config.class_names:
            raise SaraError(f"--also-classifier {path} has other classes than --classifier {args.classifier}")
        others[str(path)] = classifier_fn(other)
    prompts = select_prompts(records, classifier.model.config.class_names, root=args.manifest.parent,
                             split=args.split, per_class=args.per_class)
    if not prompts:
        raise SaraError(f"no {args.split!r} clips of the classifier's classes in {args.manifest}")
    if args.samples_per_prompt < 1:
        raise ConfigError(f"--samples-per-prompt must be >= 1, got {args.samples_per_prompt}")
    prompts = prompts * args.samples_per_prompt  # all captions once, then again with the next noise draws
    pipe = load_pipeline(args.model or DEFAULT_MODEL)
    generate, settings = caption_generator(pipe, duration=args.duration, steps=args.steps, cfg=args.cfg,
                                           vocoder_steps=args.vocoder_steps)
    args.steps, args.cfg = settings["steps"], settings["cfg"]
    torch.manual_seed(args.seed)

    with tqdm(total=len(prompts), desc="relevance") as bar:
        result = relevance_score(prompts, generate, classifier_fn(classifier), sample_rate=pipe.sample_rate,
                                 load=load_audio, batch_size=args.batch_size, progress=bar.update, others=others)
    result.update(chance=1.0 / len(classifier.model.config.class_names), model=str(args.model or DEFAULT_MODEL),
                  classifier=str(args.classifier), steps=args.steps, cfg=args.cfg, duration=args.duration,
                  samples_per_prompt=args.samples_per_prompt, system=settings["system"])
    row = {k: result[k] for k in ("generated_accuracy", "real_accuracy", "chance", "num_prompts", "num_classes")}
    return _finish(result, [row], args, "relevance", "Text-to-audio relevance (corpus classifier)")
