"""PyTorch reference MMoE at the mdrec bench config (see common.py for flags and output).

8 categorical fields (vocabulary 10k, dim 16) -> x [B, 128]; 4 experts 128 -> 256 -> 128 (ReLU);
per domain a softmax gate over the experts and a tower [8] -> 1; each row uses its own domain's
output; BCE with logits; Adam (dense updates of the whole embedding tables, like tfjs).
"""

import torch

from common import main, mlp, pick_domain


class Mmoe(torch.nn.Module):
    def __init__(self, args, num_experts):
        super().__init__()
        width = args.fields * args.embedding_dim
        self.embeddings = torch.nn.ModuleList(
            torch.nn.Embedding(args.vocabulary, args.embedding_dim) for _ in range(args.fields))
        self.experts = torch.nn.ModuleList(mlp([width, *args.expert_units]) for _ in range(num_experts))
        self.gates = torch.nn.Linear(width, args.domains * num_experts)
        out = args.expert_units[-1]
        self.towers = torch.nn.ModuleList(
            mlp([out, *args.tower_units, 1], last_activation=False) for _ in range(args.domains))
        self.num_experts = num_experts
        self.num_domains = args.domains

    def forward(self, ids, domains):
        x = torch.cat([table(ids[:, field]) for field, table in enumerate(self.embeddings)], dim=1)  # [B, 128]
        experts = torch.stack([expert(x) for expert in self.experts], dim=1)  # [B, N, d]
        gates = torch.softmax(self.gates(x).view(-1, self.num_domains, self.num_experts), dim=2)  # [B, D, N]
        mixed = torch.bmm(gates, experts)  # [B, D, d]
        logits = torch.cat([tower(mixed[:, d]) for d, tower in enumerate(self.towers)], dim=1)  # [B, D]
        return pick_domain(logits, domains)  # [B, 1]

    def predict(self, ids, domains):
        return torch.sigmoid(self.forward(ids, domains))


def build(args):
    model = Mmoe(args, args.experts)

    def loss_of(module, ids, domains, labels):
        return torch.nn.functional.binary_cross_entropy_with_logits(module(ids, domains), labels)

    return model, loss_of


if __name__ == "__main__":
    main(__doc__.splitlines()[0], build, lambda parser: parser.add_argument("--experts", type=int, default=4))
