"""The PFN: a transformer that reads a context of (x, y) points and predicts y at query x.

Context tokens embed (x, y); query tokens embed x alone. In every layer the context attends to
itself and each query attends to the context only (never to other queries), so queries are
independent: they can be predicted in chunks, and one query costs O(N) for a context of N. No
positional encoding: the model is invariant to the order of the context. The head gives logits
over the buckets of a ``BarDistribution`` whose borders are a buffer of the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import Tensor, nn

from surrogates.pfn.bar_distribution import BarDistribution


@dataclass(frozen=True)
class PFNConfig:
    max_dim: int = 16  # encoded config coordinates (plus one for the fidelity t)
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 256
    n_bars: int = 512
    max_context: int = 400  # the largest context trained on; longer ones are split into random subsets

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class PFNLayer(nn.Module):
    """Pre-norm attention and feed-forward, applied to context and queries with shared weights."""

    def __init__(self, cfg: PFNConfig) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(cfg.d_model)
        self.attn = nn.MultiheadAttention(cfg.d_model, cfg.n_heads, batch_first=True)
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))

    def forward(self, ctx: Tensor, qry: Tensor, pad: Tensor | None) -> tuple[Tensor, Tensor]:
        c = self.norm_attn(ctx)
        q = self.norm_attn(qry)
        ctx = ctx + self.attn(c, c, c, key_padding_mask=pad, need_weights=False)[0]
        qry = qry + self.attn(q, c, c, key_padding_mask=pad, need_weights=False)[0]
        return ctx + self.ff(self.norm_ff(ctx)), qry + self.ff(self.norm_ff(qry))


class PFN(nn.Module):
    def __init__(self, cfg: PFNConfig, borders: Tensor) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_x = nn.Sequential(
            nn.Linear(cfg.max_dim + 1, cfg.d_model), nn.GELU(), nn.Linear(cfg.d_model, cfg.d_model)
        )
        self.embed_y = nn.Linear(1, cfg.d_model)
        self.layers = nn.ModuleList(PFNLayer(cfg) for _ in range(cfg.n_layers))
        self.norm_out = nn.LayerNorm(cfg.d_model)
        self.head = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.n_bars)
        )
        self.register_buffer("borders", borders.float().clone())

    @property
    def bars(self) -> BarDistribution:
        return BarDistribution(self.borders)

    def forward(self, x_ctx: Tensor, y_ctx: Tensor, x_qry: Tensor, pad: Tensor | None = None) -> Tensor:
        """x_ctx (B, N, D + 1), y_ctx (B, N) standardised, x_qry (B, M, D + 1) -> logits (B, M, K).

        ``pad`` (B, N) marks context padding (True); every task needs at least one real point.
        """
        ctx = self.embed_x(x_ctx) + self.embed_y(y_ctx.unsqueeze(-1))
        qry = self.embed_x(x_qry)
        for layer in self.layers:
            ctx, qry = layer(ctx, qry, pad)
        return self.head(self.norm_out(qry))

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
