"""PyTorch reference CESAA at the mdrec bench config (see common.py for flags and output).

x [B, 128] from 8 embedded fields; S shared experts always run (mean of their outputs); a
domain-conditioned noisy top-k gate over N specific experts, logits W_g [x ; emb(d)] plus
noise * softplus(W_n x) while training; the k kept logits are softmaxed; each specific expert
runs only on the rows routed to it (sparse dispatch: index_select, expert, index_add_), or with
--dispatch dense every specific expert runs on every row and the gate's top-k weights (zero
elsewhere) mix them, as a plain PyTorch MoE does.
Loss = BCE + lambda * (-I(D; E)), the domain-expert mutual information from the full softmax.
Experts 128 -> 256 -> 128, per-domain towers [8] -> 1.
"""

import torch

from common import main, mlp, pick_domain


class Cesaa(torch.nn.Module):
    def __init__(self, args):
        super().__init__()
        width = args.fields * args.embedding_dim
        out = args.expert_units[-1]
        self.embeddings = torch.nn.ModuleList(
            torch.nn.Embedding(args.vocabulary, args.embedding_dim) for _ in range(args.fields))
        self.shared = torch.nn.ModuleList(mlp([width, *args.expert_units]) for _ in range(args.shared))
        self.specific = torch.nn.ModuleList(mlp([width, *args.expert_units]) for _ in range(args.specific))
        self.domain_embedding = torch.nn.Embedding(args.domains, args.domain_embedding_dim)
        self.gate = torch.nn.Linear(width + args.domain_embedding_dim, args.specific)
        self.noise = torch.nn.Linear(width, args.specific)
        self.towers = torch.nn.ModuleList(
            mlp([out, *args.tower_units, 1], last_activation=False) for _ in range(args.domains))
        self.k = args.k
        self.dense = args.dispatch == "dense"
        self.num_domains = args.domains
        self.out = out

    def forward(self, ids, domains):
        x = torch.cat([table(ids[:, field]) for field, table in enumerate(self.embeddings)], dim=1)  # [B, 128]
        shared = torch.stack([expert(x) for expert in self.shared], dim=0).mean(dim=0)  # [B, d]
        logits = self.gate(torch.cat([x, self.domain_embedding(domains)], dim=1))  # [B, N]
        if self.training:
            logits = logits + torch.randn_like(logits) * torch.nn.functional.softplus(self.noise(x))
        probs = torch.softmax(logits, dim=1)  # [B, N]
        top_logits, top_indices = logits.topk(self.k, dim=1)  # [B, k]
        top_weights = torch.softmax(top_logits, dim=1)  # [B, k]
        if self.dense:
            outputs = torch.stack([expert(x) for expert in self.specific], dim=1)  # [B, N, d]
            gate = torch.zeros_like(probs).scatter(1, top_indices, top_weights)  # [B, N]
            specific = torch.bmm(gate.unsqueeze(1), outputs).squeeze(1)  # [B, d]
            h = shared + specific
            per_domain = torch.cat([tower(h) for tower in self.towers], dim=1)  # [B, D]
            return pick_domain(per_domain, domains), probs
        rows = torch.arange(x.shape[0]).repeat_interleave(self.k)  # [B * k]
        experts = top_indices.reshape(-1)  # [B * k]
        weights = top_weights.reshape(-1, 1)  # [B * k, 1]
        order = torch.argsort(experts)
        counts = torch.bincount(experts, minlength=len(self.specific)).tolist()
        specific = torch.zeros(x.shape[0], self.out)
        for expert, slots in zip(self.specific, torch.split(order, counts)):
            if slots.numel() == 0:
                continue
            routed = rows[slots]
            specific.index_add_(0, routed, expert(x[routed]) * weights[slots])
        h = shared + specific
        per_domain = torch.cat([tower(h) for tower in self.towers], dim=1)  # [B, D]
        return pick_domain(per_domain, domains), probs

    def predict(self, ids, domains):
        return torch.sigmoid(self.forward(ids, domains)[0])


def mutual_information(probs, domains, num_domains):
    """I(D; E) from the full softmax p(e|x): P(e|d) = mean over the domain's rows."""
    one_hot = torch.nn.functional.one_hot(domains, num_domains).to(probs.dtype)  # [B, D]
    counts = one_hot.sum(dim=0)  # [D]
    p_domain = counts / counts.sum()  # [D]
    p_expert_given_domain = (one_hot.t() @ probs) / counts.clamp(min=1).unsqueeze(1)  # [D, N]
    p_expert = p_domain @ p_expert_given_domain  # [N]
    ratio = torch.log(p_expert_given_domain.clamp(min=1e-9)) - torch.log(p_expert.clamp(min=1e-9))
    return (p_domain.unsqueeze(1) * p_expert_given_domain * ratio).sum()


def build(args):
    model = Cesaa(args)

    def loss_of(module, ids, domains, labels):
        logits, probs = module(ids, domains)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        return bce - args.mi_weight * mutual_information(probs, domains, args.domains)

    return model, loss_of


def extra(parser):
    parser.add_argument("--shared", type=int, default=2)
    parser.add_argument("--specific", type=int, default=16)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--dispatch", choices=["sparse", "dense"], default="sparse")
    parser.add_argument("--mi-weight", type=float, default=0.01)
    parser.add_argument("--domain-embedding-dim", type=int, default=8)


if __name__ == "__main__":
    main(__doc__.splitlines()[0], build, extra)
