"""Training loop for any registered variant: AdamW, mini-batches, held-out early stopping.

Beyond each variant's own loss, three optional terms shape the codes for search:
- bit balance: each bit's mean over the batch pushed to 0, so a bit splits documents in half;
- decorrelation: off-diagonal of the bits' batch covariance pushed to 0, so bits are independent
  (both as in spectral hashing / ITQ objectives; they spread documents over the hash table);
- similarity preservation (neighbour distillation): within a batch, each document's softmax
  distribution over the others by code agreement (1 − 2·hamming/bits) is pulled towards its
  distribution by cosine of the centred embeddings (KL divergence, as in relational knowledge
  distillation). A sharp teacher temperature makes near neighbours dominate, which is what
  retrieval needs; matching all pairs' similarities instead (an MSE on 1 − 2θ/π) spent the
  model on the mass of unrelated pairs and lost to ITQ on bbc-news
  (benchmarks/results/bbc-news-tuning, chosen with `hashindex bench --tuning-split`).

Neighbourhood batches: a random batch of a large collection holds almost no true near
neighbours, so the distillation above learns topics but not the order inside a neighbourhood,
which is what recall against exact float search needs. So before training each document's
nearest neighbours by cosine are mined (neighbours.py: exact up to 12 000 documents, by
clusters above), and a batch is
made of neighbourhoods: `batch_size / neighbourhood` anchors, each with `neighbourhood − 1` of
its mined neighbours. The same loss then ranks near neighbours against each other and against
the other neighbourhoods. On 58 000 Debian package descriptions (tuning split, 64 bits) this
took the Hamming top-10's recall of the float top-10 from 0.26 to 0.36 (vanilla) and 0.40 (a
512-unit hidden layer), against ITQ's 0.29 (benchmarks/results/frontier).
"""

from __future__ import annotations

import copy
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hashindex.codes import check_bits
from hashindex.errors import HashIndexError
from hashindex.faults import fault_point
from hashindex.models import check_variant, create_model
from hashindex.models.base import BinaryAutoencoder
from hashindex.models.config import ModelConfig
from hashindex.neighbours import mine_neighbours
from hashindex.options import Options, option
from hashindex.validation import check_embeddings


@dataclass(frozen=True)
class TrainConfig(Options):
    """How a model is trained. Bit balance and decorrelation spread documents over the table;
    similarity preservation distils each document's neighbour distribution by cosine into
    its neighbour distribution by code (0 = a pure autoencoder)."""

    epochs: int = option(20, "training epochs, each every document once as an anchor (early "
                         "stopping may end sooner)", low=1)
    batch_size: int = option(256, "documents per step", low=2)
    learning_rate: float = option(5e-3, "AdamW learning rate (the peak, with the cosine "
                                  "schedule)", low=0.0, low_open=True)
    weight_decay: float = option(1e-4, "AdamW weight decay", low=0.0)
    val_fraction: float = option(0.1, "held out for early stopping", low=0.0, high=0.9)
    patience: int = option(5, "epochs without improvement before stopping", low=1)
    seed: int = option(0, "seed of the sample, the split and the initial weights", low=0)
    balance_weight: float = option(0.1, "each bit's batch mean pushed to 0", low=0.0)
    decorrelation_weight: float = option(0.1, "bits' batch covariance pushed to 0", low=0.0)
    similarity_weight: float = option(1.0, "neighbour distillation weight", low=0.0)
    similarity_teacher_temperature: float = option(0.05, "softmax temperature over cosines",
                                                   low=0.0, low_open=True)
    similarity_code_temperature: float = option(
        0.0, "softmax temperature over code agreement; 0: min(0.1, 0.8/√bits), 0.1 up to 64 "
        "bits, 0.05 at 256 (agreement steps by 2/bits: longer codes need a sharper student)",
        low=0.0)
    neighbourhood: int = option(8, "documents per neighbourhood in a batch: an anchor and that "
                                "many − 1 of its mined nearest neighbours (1: random batches)",
                                low=1)
    mined_neighbours: int = option(32, "nearest neighbours mined per document, from which each "
                                   "neighbourhood is sampled", low=1)
    max_train_docs: int = option(200_000, "documents sampled for training", low=2)
    max_steps: int = option(6_000, "cap on optimizer steps over all epochs (0: none), so the "
                            "cost stops growing with the documents (~30 s on one core); the "
                            "learning rate schedule spans the steps that will run", low=0)
    learning_rate_schedule: str = option("cosine", "constant, or cosine: decayed to 0 over "
                                         "the steps that will run",
                                         choices=("constant", "cosine"))
    threads: int = option(1, "torch threads while training (0: one per available core); "
                          "the model is small, so a second thread gains little, and on a busy "
                          "machine threads that wait on each other slow training many times",
                          low=0)
    show_progress: bool = True


@dataclass
class TrainResult:
    model: BinaryAutoencoder
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # "mine", "train"


def code_shaping_terms(
    out: dict[str, torch.Tensor], x_raw: torch.Tensor, center: torch.Tensor, config: TrainConfig
) -> dict[str, torch.Tensor]:
    code = out["code"]
    terms: dict[str, torch.Tensor] = {}
    if config.balance_weight:
        terms["balance"] = config.balance_weight * (code.mean(dim=0) ** 2).mean()
    if config.decorrelation_weight and len(code) > 1:
        centered = code - code.mean(dim=0)
        covariance = centered.T @ centered / (len(code) - 1)
        off_diagonal = covariance - torch.diag(torch.diagonal(covariance))
        terms["decorrelation"] = config.decorrelation_weight * (off_diagonal**2).mean()
    if config.similarity_weight and len(code) > 1:
        terms["similarity"] = config.similarity_weight * neighbour_distillation(
            code, x_raw - center, config
        )
    return terms


def neighbour_distillation(
    code: torch.Tensor, x: torch.Tensor, config: TrainConfig
) -> torch.Tensor:
    """KL(teacher ‖ student) of each row's distribution over the other rows of the batch:
    teacher by cosine of `x`, student by code agreement of the ±1 `code`."""
    unit = F.normalize(x, dim=1)
    self_pairs = torch.eye(len(code), dtype=torch.bool, device=code.device)
    cosine = (unit @ unit.T).masked_fill(self_pairs, -math.inf)
    agreement = (code @ code.T / code.shape[1]).masked_fill(self_pairs, -math.inf)
    teacher = F.softmax(cosine / config.similarity_teacher_temperature, dim=1)
    student = F.log_softmax(agreement / code_temperature(config, code.shape[1]), dim=1)
    return F.kl_div(student.masked_fill(self_pairs, 0.0), teacher, reduction="batchmean")


def code_temperature(config: TrainConfig, bits: int) -> float:
    """The student's softmax temperature: as configured, or min(0.1, 0.8/√bits) when 0."""
    return config.similarity_code_temperature or min(0.1, 0.8 / math.sqrt(bits))


def batch_loss(
    model: BinaryAutoencoder, x_raw: torch.Tensor, config: TrainConfig
) -> dict[str, torch.Tensor]:
    out = model(x_raw)
    losses = model.loss_function(out)
    extra = code_shaping_terms(out, model.teacher_view(x_raw), model.teacher_center, config)
    losses.update(extra)
    losses["loss"] = losses["loss"] + sum(extra.values(), out["x"].new_zeros(()))
    return losses


class Neighbourhoods:
    """Batches of neighbourhoods (module docstring): each batch is `batch_size / size` anchors,
    each followed by `size − 1` neighbours drawn from its mined ones; with size 1, plain
    random batches. Rows index `pool`."""

    def __init__(self, pool: torch.Tensor, config: TrainConfig,
                 anchors: torch.Tensor | None = None, view=lambda rows: rows):
        """`view`: the part of a row neighbours are mined by (a sequence row's pooled part)."""
        self.pool = pool
        self.size = min(config.neighbourhood, config.batch_size, len(pool))
        self.batch_size = config.batch_size
        self.anchors = anchors if anchors is not None else pool
        self.mined = (mine_neighbours(view(pool), config.mined_neighbours,
                                      view(anchors) if anchors is not None else None,
                                      config.seed)
                      if self.size > 1 else None)

    def steps(self) -> int:
        """Batches in one pass over the anchors."""
        return math.ceil(len(self.anchors) / max(1, self.batch_size // self.size))

    def batches(self, generator: torch.Generator | None):
        """(rows of the batch, their float32 embeddings), one pass over the anchors; in a
        random order with a generator, in order without (evaluation)."""
        n = len(self.anchors)
        order = torch.randperm(n, generator=generator) if generator is not None \
            else torch.arange(n)
        groups = max(1, self.batch_size // self.size)
        for start in range(0, n, groups):
            anchors = order[start : start + groups]
            if self.mined is None:
                yield self.anchors[anchors]
                continue
            picks = (torch.randint(0, self.mined.shape[1], (len(anchors), self.size - 1),
                                   generator=generator) if generator is not None
                     else torch.arange(self.size - 1).expand(len(anchors), -1))
            neighbours = self.pool[self.mined[anchors][torch.arange(len(anchors))[:, None],
                                                       picks]]
            yield torch.cat([self.anchors[anchors][:, None], neighbours], dim=1).reshape(
                -1, self.pool.shape[1])


@torch.no_grad()
def evaluate(model: BinaryAutoencoder, batches: Neighbourhoods, config: TrainConfig) -> float:
    """The held-out loss, over the held-out documents' own neighbourhoods."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches.batches(None):
        total += float(batch_loss(model, batch, config)["loss"]) * len(batch)
        count += len(batch)
    return total / max(count, 1)


def model_config_for(variant: str, bits: int, input_dim: int, options=None) -> ModelConfig:
    """The config `train` gives its model: the variant's options (its defaults when None)."""
    return ModelConfig(check_variant(variant), check_bits(bits), input_dim, options)


def train(
    embeddings: np.ndarray,
    variant: str,
    bits: int,
    config: TrainConfig | None = None,
    options=None,
    *,
    input_dim: int | None = None,
) -> TrainResult:
    """Train a binary autoencoder on float32 embeddings (n, d); `options` are the variant's
    (models/options.py), None for its defaults. A sequence variant takes packed rows
    (models/sequence.py) and the embedding dimension as `input_dim`. Same seed → same model.
    Torch runs `config.threads` threads meanwhile; the caller's setting is restored."""
    config = config or TrainConfig()
    embeddings = check_embeddings(embeddings)
    if len(embeddings) < 2:
        raise HashIndexError(f"need at least 2 embeddings to train, got {len(embeddings)}")
    model_config = model_config_for(variant, bits, input_dim or embeddings.shape[1], options)
    with torch_threads(config.threads):
        return train_model(embeddings, variant, bits, config, model_config)


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(threads: int):
    """Torch's intra-op threads set to `threads` (0: one per available core) for the block,
    the caller's count restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(min(threads or available_cores(), available_cores()))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def learning_rate_at(step: int, total: int, config: TrainConfig) -> float:
    """The learning rate of step `step` of `total`: constant, or cosine-decayed to 0."""
    if config.learning_rate_schedule == "constant" or total <= 1:
        return config.learning_rate
    return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * step / total))


def train_model(embeddings: np.ndarray, variant: str, bits: int, config: TrainConfig,
                model_config: ModelConfig) -> TrainResult:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if len(embeddings) > config.max_train_docs:
        embeddings = embeddings[rng.choice(len(embeddings), config.max_train_docs, replace=False)]
    order = rng.permutation(len(embeddings))
    n_val = int(round(len(embeddings) * config.val_fraction)) if len(embeddings) >= 10 else 0
    val = torch.from_numpy(embeddings[order[:n_val]])
    fit = torch.from_numpy(embeddings[order[n_val:]])

    model = create_model(model_config)
    train_batches = Neighbourhoods(fit, config, view=model.teacher_view)
    val_batches = (Neighbourhoods(fit, config, anchors=val, view=model.teacher_view)
                   if n_val else None)
    mined = time.perf_counter()
    model.fit_normalization(fit)
    model.pretrain(model.normalize(fit), generator)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    per_epoch = train_batches.steps()
    total_steps = per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    epochs = max(1, math.ceil(total_steps / max(per_epoch, 1)))

    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state, stale, step = math.inf, 0, None, 0, 0
    bar = tqdm(range(epochs), desc=f"train {variant} {bits}b", disable=not config.show_progress)
    for epoch in bar:
        model.on_epoch(epoch, epochs)
        model.train()
        sums: dict[str, float] = {}
        rows, steps = 0, 0
        for batch in train_batches.batches(generator):
            if step >= total_steps:
                break
            if len(batch) < 2:
                continue
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(step, total_steps, config)
            losses = batch_loss(model, batch, config)
            optimizer.zero_grad()
            losses["loss"].backward()
            optimizer.step()
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) * len(batch)
            rows += len(batch)
            steps += 1
            step += 1
        record = {name: value / max(rows, 1) for name, value in sums.items()}
        record["epoch"] = epoch
        record["steps"] = steps
        record["val_loss"] = (evaluate(model, val_batches, config) if val_batches is not None
                              else record.get("loss", math.inf))
        history.append(record)
        fault_point("train")
        bar.set_postfix(loss=f"{record.get('loss', math.nan):.4f}",
                        val=f"{record['val_loss']:.4f}")
        if record["val_loss"] < best_loss - 1e-6 or not model.can_stop_early:
            best_loss, best_epoch, stale = record["val_loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                break
        if step >= total_steps:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model=model, history=history, best_epoch=best_epoch,
                       seconds={"mine": mined - started,
                                "train": time.perf_counter() - mined})
