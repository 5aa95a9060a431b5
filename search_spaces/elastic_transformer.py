"""The elastic Transformer supernet: one set of weights that runs, and extracts, every architecture of an
``ElasticTransformerSpace``.

Owns the supernet's config, the dynamic layer norm, the elastic encoder blocks (self-attention and MLP
slicing the largest weights, Once-for-All / HAT style), the supernet and the plain standalone sub-network
it extracts. The model is a pre-LN Transformer encoder for sequence classification: a linear embedding of
each step's features plus a learned positional embedding, encoder layers, a final layer norm, mean pooling
over the sequence and a linear classifier. Elastic dimensions: layers (the first ``n`` run), the embedding
dim (the first ``E`` features of every weight), heads per layer (the first ``h`` heads of fixed width
``head_dim``) and the MLP hidden width per layer.

Attention is written by hand (matmul, softmax) in ``self_attention``, used by both the supernet and the
extracted module, so their outputs agree and the extracted module scripts and exports to ONNX with
standard ops only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.elastic_mlp import DynamicLinear
from search_spaces.elastic_transformer_space import ElasticTransformerSpace, TransformerArch, mlp_hidden_dim
from search_spaces.family import ArchSpace
from search_spaces.supernet import Supernet
from supernas.errors import InvalidInputError

LAYER_NORM_EPS = 1e-5


@dataclass(frozen=True)
class ElasticTransformerConfig:
    max_len: int  # longest sequence (positions of the learned positional embedding)
    in_features: int  # features of one sequence step
    num_classes: int
    max_layers: int  # largest num_layers choice
    max_embed_dim: int  # largest embed_dim choice
    max_heads: int  # largest num_heads choice
    head_dim: int  # width of one head (fixed)
    max_mlp_ratio: float  # largest mlp_ratio choice

    def __post_init__(self) -> None:
        ints = {
            "max_len": self.max_len,
            "in_features": self.in_features,
            "num_classes": self.num_classes,
            "max_layers": self.max_layers,
            "max_embed_dim": self.max_embed_dim,
            "max_heads": self.max_heads,
            "head_dim": self.head_dim,
        }
        for name, value in ints.items():
            if value < 1:
                raise InvalidInputError(f"{name} must be positive, got {value}", (name,))
        if not (math.isfinite(self.max_mlp_ratio) and self.max_mlp_ratio > 0):
            raise InvalidInputError(
                f"max_mlp_ratio must be positive, got {self.max_mlp_ratio}", ("max_mlp_ratio",)
            )

    @property
    def max_hidden_dim(self) -> int:
        return mlp_hidden_dim(self.max_mlp_ratio, self.max_embed_dim)

    @classmethod
    def from_space(
        cls, space: ElasticTransformerSpace, input_shape: tuple[int, ...], num_classes: int
    ) -> ElasticTransformerConfig:
        if len(input_shape) != 2:
            raise InvalidInputError(
                f"the elastic Transformer needs sequence inputs of shape (L, F), got {tuple(input_shape)}",
                ("input_shape",),
            )
        max_len, in_features = input_shape
        return cls(
            max_len=int(max_len),
            in_features=int(in_features),
            num_classes=num_classes,
            max_layers=max(space.num_layers),
            max_embed_dim=max(space.embed_dim),
            max_heads=max(space.num_heads),
            head_dim=space.head_dim,
            max_mlp_ratio=max(space.mlp_ratio),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_len": self.max_len,
            "in_features": self.in_features,
            "num_classes": self.num_classes,
            "max_layers": self.max_layers,
            "max_embed_dim": self.max_embed_dim,
            "max_heads": self.max_heads,
            "head_dim": self.head_dim,
            "max_mlp_ratio": self.max_mlp_ratio,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ElasticTransformerConfig:
        return cls(
            max_len=int(d["max_len"]),
            in_features=int(d["in_features"]),
            num_classes=int(d["num_classes"]),
            max_layers=int(d["max_layers"]),
            max_embed_dim=int(d["max_embed_dim"]),
            max_heads=int(d["max_heads"]),
            head_dim=int(d["head_dim"]),
            max_mlp_ratio=float(d["max_mlp_ratio"]),
        )


def self_attention(q: Tensor, k: Tensor, v: Tensor, head_dim: int) -> Tensor:
    """Multi-head scaled dot-product attention over the whole sequence (no mask).

    ``q``, ``k``, ``v``: (B, L, H * head_dim); returns (B, L, H * head_dim).
    """
    b, n, width = q.size(0), q.size(1), q.size(2)
    q = q.reshape(b, n, -1, head_dim).transpose(1, 2)  # (B, H, L, hd)
    k = k.reshape(b, n, -1, head_dim).transpose(1, 2)  # (B, H, L, hd)
    v = v.reshape(b, n, -1, head_dim).transpose(1, 2)  # (B, H, L, hd)
    att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(head_dim))  # (B, H, L, L)
    att = torch.softmax(att, dim=-1)  # (B, H, L, L)
    y = torch.matmul(att, v)  # (B, H, L, hd)
    return y.transpose(1, 2).reshape(b, n, width)  # (B, L, H * hd)


# --- dynamic op: slice the largest layer norm -------------------------------------------------------


class DynamicLayerNorm(nn.Module):
    """Layer norm over the active (first ``E``) features, with the first ``E`` affine params."""

    def __init__(self, max_dim: int, eps: float = LAYER_NORM_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(max_dim))
        self.bias = nn.Parameter(torch.zeros(max_dim))

    def forward(self, x: Tensor) -> Tensor:
        e = x.shape[-1]  # x: (B, L, E)
        return F.layer_norm(x, (e,), self.weight[:e], self.bias[:e], self.eps)  # (B, L, E)

    def extract(self, dim: int) -> nn.LayerNorm:
        w = self.weight
        ln = nn.LayerNorm(dim, eps=self.eps).to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            ln.weight.copy_(self.weight[:dim])
            ln.bias.copy_(self.bias[:dim])
        return ln


# --- elastic blocks ----------------------------------------------------------------------------------


class ElasticSelfAttention(nn.Module):
    """Self-attention running the first ``heads`` heads: q/k/v/out sliced to ``heads * head_dim``."""

    def __init__(self, max_embed_dim: int, max_heads: int, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        width = max_heads * head_dim
        self.q = DynamicLinear(max_embed_dim, width)
        self.k = DynamicLinear(max_embed_dim, width)
        self.v = DynamicLinear(max_embed_dim, width)
        self.proj = DynamicLinear(width, max_embed_dim)

    def forward(self, x: Tensor, heads: int) -> Tensor:
        width = heads * self.head_dim
        q, k, v = self.q(x, width), self.k(x, width), self.v(x, width)  # (B, L, H * hd) each
        y = self_attention(q, k, v, self.head_dim)  # (B, L, H * hd)
        return self.proj(y, x.shape[-1])  # (B, L, E)

    def extract(self, embed_dim: int, heads: int) -> SelfAttention:
        width = heads * self.head_dim
        return SelfAttention(
            self.q.extract(embed_dim, width),
            self.k.extract(embed_dim, width),
            self.v.extract(embed_dim, width),
            self.proj.extract(width, embed_dim),
            self.head_dim,
        )


class ElasticFeedForward(nn.Module):
    """Linear E -> hidden, GELU, linear hidden -> E, with the first ``hidden`` units of the largest MLP."""

    def __init__(self, max_embed_dim: int, max_hidden_dim: int) -> None:
        super().__init__()
        self.fc = DynamicLinear(max_embed_dim, max_hidden_dim)
        self.proj = DynamicLinear(max_hidden_dim, max_embed_dim)

    def forward(self, x: Tensor, hidden_dim: int) -> Tensor:
        return self.proj(F.gelu(self.fc(x, hidden_dim)), x.shape[-1])  # (B, L, E)

    def extract(self, embed_dim: int, hidden_dim: int) -> FeedForward:
        return FeedForward(self.fc.extract(embed_dim, hidden_dim), self.proj.extract(hidden_dim, embed_dim))


class ElasticEncoderLayer(nn.Module):
    """Pre-LN encoder layer: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    def __init__(self, config: ElasticTransformerConfig) -> None:
        super().__init__()
        self.ln1 = DynamicLayerNorm(config.max_embed_dim)
        self.attn = ElasticSelfAttention(config.max_embed_dim, config.max_heads, config.head_dim)
        self.ln2 = DynamicLayerNorm(config.max_embed_dim)
        self.mlp = ElasticFeedForward(config.max_embed_dim, config.max_hidden_dim)

    def forward(self, x: Tensor, heads: int, hidden_dim: int) -> Tensor:
        x = x + self.attn(self.ln1(x), heads)  # (B, L, E)
        return x + self.mlp(self.ln2(x), hidden_dim)  # (B, L, E)

    def extract(self, embed_dim: int, heads: int, hidden_dim: int) -> EncoderLayer:
        return EncoderLayer(
            self.ln1.extract(embed_dim),
            self.attn.extract(embed_dim, heads),
            self.ln2.extract(embed_dim),
            self.mlp.extract(embed_dim, hidden_dim),
        )


# --- the plain, standalone sub-network ---------------------------------------------------------------


class SelfAttention(nn.Module):
    """Plain multi-head self-attention of an extracted sub-network."""

    def __init__(self, q: nn.Linear, k: nn.Linear, v: nn.Linear, proj: nn.Linear, head_dim: int) -> None:
        super().__init__()
        self.q = q
        self.k = k
        self.v = v
        self.proj = proj
        self.head_dim = head_dim

    def forward(self, x: Tensor) -> Tensor:
        y = self_attention(self.q(x), self.k(x), self.v(x), self.head_dim)  # (B, L, H * hd)
        return self.proj(y)  # (B, L, E)


class FeedForward(nn.Module):
    def __init__(self, fc: nn.Linear, proj: nn.Linear) -> None:
        super().__init__()
        self.fc = fc
        self.act = nn.GELU()
        self.proj = proj

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.act(self.fc(x)))  # (B, L, E)


class EncoderLayer(nn.Module):
    def __init__(self, ln1: nn.LayerNorm, attn: SelfAttention, ln2: nn.LayerNorm, mlp: FeedForward) -> None:
        super().__init__()
        self.ln1 = ln1
        self.attn = attn
        self.ln2 = ln2
        self.mlp = mlp

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))  # (B, L, E)
        return x + self.mlp(self.ln2(x))  # (B, L, E)


class SubnetTransformer(nn.Module):
    """A standalone sub-network extracted from an ``ElasticTransformer``: plain torch layers, its own
    weights. Input (B, L, F) with L up to the supernet's ``max_len``; output (B, num_classes)."""

    def __init__(
        self, embed: nn.Linear, pos: Tensor, layers: list[EncoderLayer], ln_f: nn.LayerNorm, head: nn.Linear
    ) -> None:
        super().__init__()
        self.embed = embed
        self.pos = nn.Parameter(pos)  # (max_len, E)
        self.layers = nn.Sequential(*layers)
        self.ln_f = ln_f
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        x = self.embed(x) + self.pos[: x.size(1)]  # (B, L, E)
        x = self.ln_f(self.layers(x))  # (B, L, E)
        return self.head(x.mean(dim=1))  # (B, num_classes)


# --- the supernet ------------------------------------------------------------------------------------


class ElasticTransformer(Supernet):
    """Weight-sharing pre-LN Transformer encoder for sequence classification."""

    config_class = ElasticTransformerConfig

    def __init__(self, config: ElasticTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = DynamicLinear(config.in_features, config.max_embed_dim)
        self.pos = nn.Parameter(torch.randn(config.max_len, config.max_embed_dim) * 0.02)  # (max_len, E_max)
        self.layers = nn.ModuleList(ElasticEncoderLayer(config) for _ in range(config.max_layers))
        self.ln_f = DynamicLayerNorm(config.max_embed_dim)
        self.head = DynamicLinear(config.max_embed_dim, config.num_classes)

    @classmethod
    def from_space(
        cls, space: ArchSpace, input_shape: tuple[int, ...], num_classes: int
    ) -> ElasticTransformer:
        if not isinstance(space, ElasticTransformerSpace):
            raise InvalidInputError(
                f"ElasticTransformer needs an elastic_transformer space, got {space.family!r}", ("space",)
            )
        return cls(ElasticTransformerConfig.from_space(space, input_shape, num_classes))

    def check_arch(self, arch: TransformerArch) -> None:
        """Raise ``InvalidInputError`` unless this supernet can run ``arch``."""
        cfg = self.config
        if not isinstance(arch, TransformerArch):
            raise InvalidInputError(f"expected a TransformerArch, got {type(arch).__name__}", ("arch",))
        if not 1 <= arch.num_layers <= cfg.max_layers:
            raise InvalidInputError(
                f"num_layers {arch.num_layers} must be between 1 and {cfg.max_layers}", ("arch", "num_layers")
            )
        if not 1 <= arch.embed_dim <= cfg.max_embed_dim:
            raise InvalidInputError(
                f"embed_dim {arch.embed_dim} must be between 1 and {cfg.max_embed_dim}", ("arch", "embed_dim")
            )
        if len(arch.heads) != arch.num_layers or any(not 1 <= h <= cfg.max_heads for h in arch.heads):
            raise InvalidInputError(
                f"heads {list(arch.heads)} must give one count between 1 and {cfg.max_heads} per layer",
                ("arch", "heads"),
            )
        if len(arch.mlp_ratios) != arch.num_layers or any(
            not (math.isfinite(r) and r > 0) or mlp_hidden_dim(r, arch.embed_dim) > cfg.max_hidden_dim
            for r in arch.mlp_ratios
        ):
            raise InvalidInputError(
                f"mlp_ratios {list(arch.mlp_ratios)} must give one positive ratio per layer, with a hidden "
                f"width of at most {cfg.max_hidden_dim}",
                ("arch", "mlp_ratios"),
            )

    def check_input(self, x: Tensor) -> None:
        """Raise ``InvalidInputError`` unless ``x`` is (B, L, F) with L at most ``max_len``."""
        cfg = self.config
        if x.dim() != 3 or x.shape[2] != cfg.in_features or not 1 <= x.shape[1] <= cfg.max_len:
            raise InvalidInputError(
                f"expected input (B, L, {cfg.in_features}) with 1 <= L <= {cfg.max_len}, "
                f"got {tuple(x.shape)}",
                ("x",),
            )

    def forward(self, x: Tensor, arch: TransformerArch) -> Tensor:
        self.check_arch(arch)
        self.check_input(x)
        e = arch.embed_dim
        x = self.embed(x, e) + self.pos[: x.shape[1], :e]  # (B, L, E)
        layers = self.layers[: arch.num_layers]
        for layer, heads, hidden in zip(layers, arch.heads, arch.hidden_dims(), strict=True):
            x = layer(x, heads, hidden)  # (B, L, E)
        x = self.ln_f(x)  # (B, L, E)
        return self.head(x.mean(dim=1), self.config.num_classes)  # (B, num_classes)

    def extract(self, arch: TransformerArch) -> SubnetTransformer:
        """A standalone copy of ``arch``'s sub-network (cloned weights, no link to the supernet).
        Its outputs equal ``self(x, arch)``; it can be fine-tuned, TorchScript-compiled and ONNX-exported."""
        self.check_arch(arch)
        e = arch.embed_dim
        layers = self.layers[: arch.num_layers]
        return SubnetTransformer(
            embed=self.embed.extract(self.config.in_features, e),
            pos=self.pos.detach()[:, :e].clone(),
            layers=[
                layer.extract(e, heads, hidden)
                for layer, heads, hidden in zip(layers, arch.heads, arch.hidden_dims(), strict=True)
            ],
            ln_f=self.ln_f.extract(e),
            head=self.head.extract(e, self.config.num_classes),
        ).train(self.training)
