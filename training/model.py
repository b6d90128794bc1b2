"""Llama-style base model (RMSNorm, rotary positions, SwiGLU, tied embeddings by default) and its draft
heads (PrefixDraftHead: one causal layer over the prefix, read out as CTC slots or Medusa-style).

Shapes: B batch, T/S new tokens, P past tokens, d model width, H heads, D head dim, V vocab.
Runs on Debian's torch 1.13 (CPU) and on torch 2.x (GPU, fused attention when available).
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelConfig:
    vocab_size: int = 4096
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 4
    ffn_hidden: int = 688
    max_seq_len: int = 512
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    # False: a separate LM head `output` [V,d] (checkpoints converted from untied Llama models,
    # training/convert_hf.py); the models trained here tie it to the embedding
    tie_embeddings: bool = True

    @property
    def head_dim(self):
        return self.d_model // self.n_heads

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_cos_sin(position_ids, head_dim, theta):
    """position_ids [B,S] -> cos, sin [B,1,S,D] (rotate-half layout)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32,
                                             device=position_ids.device) / head_dim))
    freqs = position_ids.to(torch.float32).unsqueeze(-1) * inv_freq  # [B,S,D/2]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.wqkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.wo = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x, cos, sin, mask=None, past_k=None, past_v=None):
        """x [B,S,d]; mask: None (causal, training) or additive [B|1,1,S,P+S].
        Returns y [B,S,d] and the full key/value cache [B,H,P+S,D]."""
        B, S, _ = x.shape
        q, k, v = self.wqkv(x).split(x.shape[-1], dim=-1)
        q = q.view(B, S, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(B, S, self.n_heads, self.head_dim).transpose(1, 2)
        v = v.view(B, S, self.n_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        # mask None: causal over the new tokens when there is no past (training, prefill);
        # a single new token with a past attends to everything (batched greedy generation).
        causal = mask is None and past_k is None
        if mask is None and hasattr(F, "scaled_dot_product_attention") and (causal or S == 1):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
            if mask is not None:
                att = att + mask
            elif causal:
                tri = torch.ones(S, S, dtype=torch.bool, device=x.device).tril()
                att = att.masked_fill(~tri, float("-inf"))
            else:
                assert S == 1, "a multi-token step with a past needs an explicit mask"
            y = att.softmax(dim=-1) @ v
        y = y.transpose(1, 2).reshape(B, S, -1)
        return self.wo(y), k, v


class SwiGLU(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.w_gate_up = nn.Linear(d, 2 * hidden, bias=False)
        self.w_down = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        gate, up = self.w_gate_up(x).chunk(2, dim=-1)
        return self.w_down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = SwiGLU(cfg.d_model, cfg.ffn_hidden)

    def forward(self, x, cos, sin, mask=None, past_k=None, past_v=None):
        a, k, v = self.attn(self.attn_norm(x), cos, sin, mask, past_k, past_v)
        x = x + a
        return x + self.mlp(self.mlp_norm(x)), k, v


class BaseModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        if not cfg.tie_embeddings:
            self.output = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init)
        for b in self.blocks:  # scaled init of residual projections (GPT-2)
            nn.init.normal_(b.attn.wo.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
            nn.init.normal_(b.mlp.w_down.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def lm_weight(self):
        """The LM head [V,d]: the embedding when tied."""
        return self.embed.weight if self.cfg.tie_embeddings else self.output.weight

    def lm_head(self, h):
        return h @ self.lm_weight().t()

    def non_embedding_params(self):
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith(("embed", "output")))

    def hidden(self, input_ids):
        """input_ids [B,T] -> last hidden states [B,T,d] (after the final norm), without the LM head."""
        B, T = input_ids.shape
        pos = torch.arange(T, device=input_ids.device).unsqueeze(0).expand(B, T)
        cos, sin = rope_cos_sin(pos, self.cfg.head_dim, self.cfg.rope_theta)
        x = self.embed(input_ids)
        for b in self.blocks:
            x, _, _ = b(x, cos, sin)
        return self.norm(x)

    def forward(self, input_ids):
        """Training/eval: input_ids [B,T] -> logits [B,T,V], hidden [B,T,d] (after final norm)."""
        h = self.hidden(input_ids)
        return self.lm_head(h), h

    def forward_cached(self, input_ids, position_ids, attn_mask, past):
        """Inference graph (what ONNX exports).
        input_ids, position_ids [1,S]; attn_mask additive [1,1,S,P+S]; past: list of (k,v) [1,H,P,D].
        Returns logits [1,S,V], hidden [1,S,d], present: list of (k,v) [1,H,P+S,D]."""
        cos, sin = rope_cos_sin(position_ids, self.cfg.head_dim, self.cfg.rope_theta)
        x = self.embed(input_ids)
        present = []
        for b, (pk, pv) in zip(self.blocks, past):
            x, k, v = b(x, cos, sin, attn_mask, pk, pv)
            present.append((k, v))
        h = self.norm(x)
        return self.lm_head(h), h, present


@dataclass
class PrefixHeadConfig:
    """Draft heads that attend over the whole prefix."""
    kind: str = "ctc"          # "ctc" (CTC slots) or "medusa" (one read-out per draft position)
    d_model: int = 256
    vocab_size: int = 4096
    k: int = 6                 # draft tokens predicted after the pending token
    slots: int = 12            # CTC output slots (2k)
    n_heads: int = 4
    ffn_hidden: int = 688      # the prefix layer (a base-model block)
    slot_dim: int = 128        # ctc:  the slots are mixed at this width (the slot layer's cost)
    slot_ffn: int = 256        # ctc:  the slot layer's FFN
    slot_layers: int = 1       # ctc:  0 drops the slot layer (each slot a projection of u_t alone)
    shortlist_size: int = 0    # read out only the most frequent greedy-output tokens (0: all)
    max_seq_len: int = 512
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    def __post_init__(self):
        # checkpoints written before the heads took the plain names say "ctc2" / "medusa2"
        self.kind = {"ctc2": "ctc", "medusa2": "medusa"}.get(self.kind, self.kind)

    def to_dict(self):
        return asdict(self)

    def block_config(self):
        return ModelConfig(vocab_size=self.vocab_size, d_model=self.d_model, n_layers=1, n_heads=self.n_heads,
                           ffn_hidden=self.ffn_hidden, max_seq_len=self.max_seq_len, rope_theta=self.rope_theta,
                           norm_eps=self.norm_eps)


class PrefixDraftHead(nn.Module):
    """A draft head that sees every prefix position, as in the CTC drafter paper's released code
    (and EAGLE): position t's input is fuse([embedding of token t+1; base hidden state at t]), one
    causal decoder layer (a base-model block with its own KV cache at inference) runs over all
    positions, and from the newest position u_t the head emits the drafts for the next k tokens in
    one pass (non-autoregressive):
      ctc:     `slots` queries (a per-slot projection of u_t at width slot_dim) mixed by one small
               self-attention layer, read out through the frozen LM head's shortlist rows plus a
               blank logit -> log-probs [.., slots, V'+1];
      medusa:  k residual SiLU read-outs of u_t through the same rows -> logits [.., k, V']
               (the same trunk, shortlist, data and budget: the fair baseline).

    trunk(hidden [B,T,d], next_emb [B,T,d]) -> u [B,T,d] (causal); readout(u [N,d], lm_weight)."""

    def __init__(self, cfg: PrefixHeadConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.fuse = nn.Linear(2 * d, d, bias=False)
        self.block = Block(cfg.block_config())
        self.norm = RMSNorm(d, cfg.norm_eps)
        # The read-out covers `shortlist_ids` (the tokens the base model emits most; rows of the
        # frozen LM head): 1024 of 4096 tokens hold ~91% of its greedy output, a 4x smaller read-out.
        n = cfg.shortlist_size or cfg.vocab_size
        self.register_buffer("shortlist_ids", torch.arange(n, dtype=torch.long))
        if cfg.kind == "ctc":
            # Each slot gets its own projection of u_t (a shared u_t plus a small slot embedding kept
            # the slots near-identical, and CTC collapsed them into one token and blanks).
            ds = cfg.slot_dim
            self.upsample = nn.Linear(d, cfg.slots * ds, bias=True)
            self.slot_emb = nn.Parameter(torch.randn(cfg.slots, ds) * 0.02)
            # The slot layer lets the slots see each other (about a fifth of the head's cost per round)
            self.slot_layer = (nn.TransformerEncoderLayer(ds, cfg.n_heads, cfg.slot_ffn, dropout=0.0,
                                                          activation="gelu", batch_first=True, norm_first=True)
                               if cfg.slot_layers else None)
            self.slot_out = nn.Linear(ds, d, bias=False)
            self.slot_norm = RMSNorm(d, cfg.norm_eps)
            self.blank = nn.Linear(d, 1, bias=True)
        else:
            self.heads = nn.ModuleList([nn.Linear(d, d) for _ in range(cfg.k)])
            for h in self.heads:
                nn.init.zeros_(h.weight)
                nn.init.zeros_(h.bias)

    def trunk(self, hidden, next_emb, position_ids=None):
        B, T, _ = hidden.shape
        if position_ids is None:
            position_ids = torch.arange(T, device=hidden.device).unsqueeze(0).expand(B, T)
        cos, sin = rope_cos_sin(position_ids, self.cfg.d_model // self.cfg.n_heads, self.cfg.rope_theta)
        x = self.fuse(torch.cat([next_emb, hidden], -1))
        x, _, _ = self.block(x, cos, sin)
        return self.norm(x)

    def readout(self, u, lm_weight):
        """u [N,d] -> ctc: log-probs [N,slots,V'+1] (blank last); medusa: logits [N,k,V'], over
        the V' shortlist tokens (class i is token shortlist_ids[i])."""
        w = lm_weight[self.shortlist_ids]
        if self.cfg.kind == "ctc":
            s = self.upsample(u).view(-1, self.cfg.slots, self.cfg.slot_dim) + self.slot_emb
            y = self.slot_norm(self.slot_out(self.slot_layer(s) if self.slot_layer is not None else s))
            return torch.cat([y @ w.t(), self.blank(y)], -1).log_softmax(-1)
        outs = [u + F.silu(h(u)) for h in self.heads]
        return torch.stack(outs, 1) @ w.t()
