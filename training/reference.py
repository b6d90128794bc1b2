"""PyTorch reference of the *quantized* base model, mirroring quantize.py's row-wise int8 graph
op for op (integer-valued fp32 matmuls are exact, so only float rounding in norms, softmax and
attention can differ from onnxruntime). Used to write the parity fixtures and to measure the
held-out loss of the shipped artifact."""
import numpy as np
import torch

from training.model import BaseModel, ModelConfig
from training.quantize import quantize_weight


class RowwiseInt8Linear(torch.nn.Module):
    """y = (float(round(x/s_row) @ W_q) * s_row) * w_scale, s_row = max|x_row| / 127."""

    def __init__(self, weight_kn):
        super().__init__()
        q, s = quantize_weight(weight_kn.detach().cpu().numpy().astype(np.float32))
        self.wq = torch.from_numpy(q.astype(np.float32))
        self.ws = torch.from_numpy(s)

    def forward(self, x):
        s = x.abs().amax(-1, keepdim=True).clamp_min(1e-12) / 127.0
        return ((torch.round(x / s) @ self.wq) * s) * self.ws


class QuantizedBase(torch.nn.Module):
    def __init__(self, base: BaseModel):
        super().__init__()
        self.base = base
        for b in base.blocks:
            b.attn.wqkv = RowwiseInt8Linear(b.attn.wqkv.weight.t())
            b.attn.wo = RowwiseInt8Linear(b.attn.wo.weight.t())
            b.mlp.w_gate_up = RowwiseInt8Linear(b.mlp.w_gate_up.weight.t())
            b.mlp.w_down = RowwiseInt8Linear(b.mlp.w_down.weight.t())
        self.lm = RowwiseInt8Linear(base.lm_weight().t())
        # tied: one int8 table serves the lookup and the LM head; untied: the embedding has its own
        emb = self.lm if base.cfg.tie_embeddings else RowwiseInt8Linear(base.embed.weight.t())
        base.lm_head = self.lm
        table = emb.wq * emb.ws  # [d,V]: the embedding as the int8 graph sees it
        base.embed = torch.nn.Embedding.from_pretrained(table.t().contiguous())

    def forward_cached(self, *a):
        return self.base.forward_cached(*a)


def load_quantized(path):
    st = torch.load(path, map_location="cpu")
    base = BaseModel(ModelConfig(**st["config"]))
    base.load_state_dict(st["model"])
    base.eval()
    return QuantizedBase(base).eval()


def causal_mask(S, P):
    m = torch.zeros(1, 1, S, P + S)
    m[0, 0, :, P:] = torch.full((S, S), float("-inf")).triu(1)
    return m


@torch.no_grad()
def greedy(model, prompt, n_new):
    """The engine's plain decoding: prefill prompt[:-1], then one token per step.
    Returns the tokens and, per step, the gap between the top two logits."""
    L = len(model.base.blocks)
    H, D = model.base.cfg.n_heads, model.base.cfg.head_dim
    past = [(torch.zeros(1, H, 0, D), torch.zeros(1, H, 0, D)) for _ in range(L)]
    P = len(prompt) - 1
    if P > 0:
        _, _, past = model.forward_cached(torch.tensor([prompt[:-1]]), torch.arange(P).unsqueeze(0),
                                          causal_mask(P, 0), past)
    out, margins, last = [], [], prompt[-1]
    for i in range(n_new):
        logits, _, past = model.forward_cached(torch.tensor([[last]]), torch.tensor([[P + i]]),
                                               torch.zeros(1, 1, 1, P + i + 1), past)
        top2 = logits[0, -1].topk(2).values
        last = int(logits[0, -1].argmax())
        out.append(last)
        margins.append(float(top2[0] - top2[1]))
    return out, margins
