"""Shared pieces of the PyTorch reference benchmarks (data, timing, thread settings, output).

Run by packages/bench (suite `throughput`) with Debian's python3-torch; usable alone:
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 mmoe.py --threads 1
Prints one JSON object on stdout.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch


def parse_args(description, extra=None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", help="directory written by the mdrec bench (meta.json + *.bin); "
                        "default: synthetic batches generated here")
    parser.add_argument("--fields", type=int, default=8)
    parser.add_argument("--vocabulary", type=int, default=10_000)
    parser.add_argument("--embedding-dim", type=int, default=16)
    parser.add_argument("--domains", type=int, default=3)
    parser.add_argument("--expert-units", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--tower-units", type=int, nargs="*", default=[8])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--infer-batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--infer-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve", action="store_true",
                        help="after the warm-up, run one step per stdin command (train, infer, latency, "
                        "quit) and answer each with a JSON line: lets the mdrec bench alternate single "
                        "steps of both engines so both see the same load")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


class Batches:
    """Training batches (ids [B, F] int64, domains [B] int64, labels [B, 1] float32), cycled."""

    def __init__(self, args):
        if args.data:
            with open(os.path.join(args.data, "meta.json"), encoding="utf-8") as handle:
                meta = json.load(handle)
            count, batch, fields = meta["numBatches"], meta["batchSize"], meta["numFields"]
            ids = np.fromfile(os.path.join(args.data, "ids.bin"), dtype=np.int32).reshape(count, batch, fields)
            domains = np.fromfile(os.path.join(args.data, "domains.bin"), dtype=np.int32).reshape(count, batch)
            labels = np.fromfile(os.path.join(args.data, "labels.bin"), dtype=np.float32).reshape(count, batch, 1)
            args.batch, args.fields = batch, fields
            args.vocabulary, args.domains = meta["vocabularySize"], meta["numDomains"]
        else:
            generator = np.random.default_rng(args.seed)
            count = 8
            ids = generator.integers(0, args.vocabulary, size=(count, args.batch, args.fields), dtype=np.int32)
            domains = generator.integers(0, args.domains, size=(count, args.batch), dtype=np.int32)
            # A planted signal so the loss moves: one hashed id bit per field plus a domain offset.
            score = ((ids % 7) < 3).sum(axis=2) - args.fields * 3 / 7 + (domains - 1) * 0.5
            labels = (generator.random(size=(count, args.batch)) < 1 / (1 + np.exp(-score))).astype(np.float32)
            labels = labels.reshape(count, args.batch, 1)
        self.items = [
            (torch.from_numpy(ids[i].astype(np.int64)), torch.from_numpy(domains[i].astype(np.int64)),
             torch.from_numpy(labels[i].copy()))
            for i in range(ids.shape[0])
        ]
        self.position = 0

    def next(self):
        item = self.items[self.position % len(self.items)]
        self.position += 1
        return item

    def inference_batch(self, size):
        """`size` rows made by repeating training rows (ids, domains)."""
        ids = torch.cat([item[0] for item in self.items])
        domains = torch.cat([item[1] for item in self.items])
        repeats = (size + ids.shape[0] - 1) // ids.shape[0]
        return ids.repeat(repeats, 1)[:size], domains.repeat(repeats)[:size]


def mlp(sizes, last_activation=True):
    layers = []
    for index in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[index], sizes[index + 1]))
        if last_activation or index < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def pick_domain(per_domain, domains):
    """per_domain [B, D] logits -> [B, 1] the logit of each row's own domain."""
    return per_domain.gather(1, domains.view(-1, 1))


def benchmark(model, args, batches, loss_of):
    """Times `args.steps` Adam steps and `args.infer_steps` inference passes; returns the JSON record."""
    torch.manual_seed(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    model.train()

    def step():
        ids, domains, labels = batches.next()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(model, ids, domains, labels)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(args.warmup):
        step()
    losses, step_seconds = [], []
    for _ in range(args.steps):
        begin = time.perf_counter()
        # detach: a kept loss would keep its whole autograd graph (activations) alive
        losses.append(step().detach())
        step_seconds.append(time.perf_counter() - begin)
    final_loss = float(torch.stack(losses[-10:]).mean())

    model.eval()
    ids, domains = batches.inference_batch(args.infer_batch)
    with torch.inference_mode():
        for _ in range(3):
            model.predict(ids, domains)
        infer_step_seconds = []
        for _ in range(args.infer_steps):
            begin = time.perf_counter()
            model.predict(ids, domains)
            infer_step_seconds.append(time.perf_counter() - begin)
        single_ids, single_domains = ids[:1], domains[:1]
        latencies = []
        for _ in range(200):
            begin = time.perf_counter()
            model.predict(single_ids, single_domains)
            latencies.append((time.perf_counter() - begin) * 1000)
    latencies.sort()
    # Throughput from the median step time (as the mdrec bench reports it): other processes share
    # these cores, and the median ignores the steps they preempted. Means are reported too.
    return {
        "trainExamplesPerSecond": args.batch / statistics.median(step_seconds),
        "trainExamplesPerSecondMean": args.steps * args.batch / sum(step_seconds),
        "inferenceExamplesPerSecond": args.infer_batch / statistics.median(infer_step_seconds),
        "inferenceExamplesPerSecondMean": args.infer_steps * args.infer_batch / sum(infer_step_seconds),
        "latencyP50Ms": latencies[len(latencies) // 2],
        "latencyP99Ms": latencies[int(len(latencies) * 0.99) - 1],
        "finalLoss": final_loss,
        "steps": args.steps,
        "batch": args.batch,
        "inferBatch": args.infer_batch,
        "torchThreads": torch.get_num_threads(),
        "openblasThreads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
        "torchVersion": torch.__version__,
        "python": platform.python_version(),
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
    }


def serve(model, args, batches, loss_of):
    """Step-per-command mode (see --serve)."""
    torch.manual_seed(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    ids, domains = batches.inference_batch(args.infer_batch)

    def train():
        batch_ids, batch_domains, labels = batches.next()
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(model, batch_ids, batch_domains, labels)
        loss.backward()
        optimizer.step()
        return float(loss)

    def infer(rows):
        model.eval()
        with torch.inference_mode():
            model.predict(ids[:rows], domains[:rows])

    for _ in range(args.warmup):
        train()
        infer(args.infer_batch)
    print(json.dumps({"ready": True, "torchVersion": torch.__version__, "torchThreads": torch.get_num_threads(),
                      "openblasThreads": os.environ.get("OPENBLAS_NUM_THREADS", "unset")}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        begin = time.perf_counter()
        if command == "train":
            loss = train()
        elif command == "infer":
            infer(args.infer_batch)
            loss = None
        elif command == "latency":
            infer(1)
            loss = None
        elif command == "quit":
            break
        else:
            print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
            continue
        print(json.dumps({"seconds": time.perf_counter() - begin, "loss": loss}), flush=True)


def main(description, build, extra=None):
    args = parse_args(description, extra)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    batches = Batches(args)
    model, loss_of = build(args)
    if args.serve:
        serve(model, args, batches, loss_of)
    else:
        print(json.dumps(benchmark(model, args, batches, loss_of)))
