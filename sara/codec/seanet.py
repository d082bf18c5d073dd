"""SEANet encoder and decoder as audiocraft builds them (``audiocraft/modules/seanet.py``).

Layer indices in ``model`` are part of the checkpoint format.  With ``R`` residual layers, ``S = len(ratios)``
stages and ``L`` LSTM layers the encoder is ``[conv, (res x R, ELU, down-conv) x S, LSTM?, ELU, conv]``
(for the AudioGen codec: 0 conv, 1-12 stages, 13 LSTM, 14 ELU, 15 conv) and the decoder is
``[conv, LSTM?, (ELU, up-convtr, res x R) x S, ELU, conv]`` (0 conv, 1 LSTM, 2-13 stages, 14 ELU, 15 conv).
Residual blocks are ``block = [ELU, conv k, ELU, conv 1]`` (keys ``block.1`` / ``block.3``) plus an identity
(or 1x1 conv) ``shortcut``.

Shapes: encoder ``[B, C, T] -> [B, D, ceil(T / hop)]``; decoder ``[B, D, F] -> [B, C, F * hop]``.
"""

from __future__ import annotations

from torch import Tensor, nn

from sara.codec.config import CodecConfig
from sara.codec.conv import StreamableConv1d, StreamableConvTranspose1d

__all__ = ["SEANetDecoder", "SEANetEncoder", "SEANetResnetBlock", "StreamableLSTM"]


class StreamableLSTM(nn.Module):
    """LSTM over the time axis of ``[B, D, T]`` with a skip connection (key ``lstm.*``)."""

    def __init__(self, dimension: int, num_layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dimension, dimension, num_layers)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - see class docstring
        seq = x.permute(2, 0, 1)  # [T, B, D]
        y, _ = self.lstm(seq)
        return (y + seq).permute(1, 2, 0)


class SEANetResnetBlock(nn.Module):
    """``x + block(x)``: ELU, conv (``kernel``, ``dilation``) to ``dim // compress``, ELU, 1x1 conv back."""

    def __init__(self, cfg: CodecConfig, dim: int, dilation: int, weight_norm: bool) -> None:
        super().__init__()
        hidden = dim // cfg.compress
        kw = dict(weight_norm=weight_norm, causal=cfg.causal, pad_mode=cfg.pad_mode)
        self.block = nn.Sequential(
            nn.ELU(cfg.activation_alpha),
            StreamableConv1d(dim, hidden, cfg.residual_kernel_size, dilation=dilation, **kw),  # type: ignore[arg-type]
            nn.ELU(cfg.activation_alpha),
            StreamableConv1d(hidden, dim, 1, **kw),  # type: ignore[arg-type]
        )
        self.shortcut: nn.Module = nn.Identity() if cfg.true_skip else StreamableConv1d(dim, dim, 1, **kw)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - see class docstring
        return self.shortcut(x) + self.block(x)


def _conv(cfg: CodecConfig, cin: int, cout: int, kernel: int, weight_norm: bool, stride: int = 1) -> StreamableConv1d:
    return StreamableConv1d(cin, cout, kernel, stride, weight_norm=weight_norm, causal=cfg.causal,
                            pad_mode=cfg.pad_mode)


def _residuals(cfg: CodecConfig, dim: int, weight_norm: bool) -> list[nn.Module]:
    return [SEANetResnetBlock(cfg, dim, cfg.dilation_base ** j, weight_norm) for j in range(cfg.n_residual_layers)]


class SEANetEncoder(nn.Module):
    """Waveform ``[B, channels, T]`` -> latent ``[B, dimension, ceil(T / hop)]``."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        wn, outer = cfg.norm == "weight_norm", cfg.disable_norm_outer_blocks
        n_blocks = len(cfg.ratios) + 2
        width = cfg.n_filters
        layers: list[nn.Module] = [_conv(cfg, cfg.channels, width, cfg.kernel_size, wn and outer < 1)]
        for i, ratio in enumerate(reversed(cfg.ratios)):
            block_wn = wn and outer < i + 2
            layers += _residuals(cfg, width, block_wn)
            layers += [nn.ELU(cfg.activation_alpha), _conv(cfg, width, width * 2, ratio * 2, block_wn, stride=ratio)]
            width *= 2
        if cfg.lstm:
            layers.append(StreamableLSTM(width, cfg.lstm))
        layers += [nn.ELU(cfg.activation_alpha), _conv(cfg, width, cfg.dimension, cfg.last_kernel_size,
                                                        wn and outer != n_blocks)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - see class docstring
        return self.model(x)


class SEANetDecoder(nn.Module):
    """Latent ``[B, dimension, F]`` -> waveform ``[B, channels, F * hop]`` (no final activation)."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        wn, outer = cfg.norm == "weight_norm", cfg.disable_norm_outer_blocks
        n_blocks = len(cfg.ratios) + 2
        width = cfg.n_filters * 2 ** len(cfg.ratios)
        layers: list[nn.Module] = [_conv(cfg, cfg.dimension, width, cfg.kernel_size, wn and outer != n_blocks)]
        if cfg.lstm:
            layers.append(StreamableLSTM(width, cfg.lstm))
        for i, ratio in enumerate(cfg.ratios):
            block_wn = wn and not outer >= n_blocks - (i + 1)
            up = StreamableConvTranspose1d(width, width // 2, ratio * 2, ratio, weight_norm=block_wn,
                                           causal=cfg.causal, trim_right_ratio=cfg.trim_right_ratio)
            layers += [nn.ELU(cfg.activation_alpha), up]
            layers += _residuals(cfg, width // 2, block_wn)
            width //= 2
        layers += [nn.ELU(cfg.activation_alpha), _conv(cfg, width, cfg.channels, cfg.last_kernel_size,
                                                        wn and outer < 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:  # noqa: D102 - see class docstring
        return self.model(z)
