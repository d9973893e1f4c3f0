"""Training's cost controls (issue 30, item 5): the step cap, the thread setting, and the
clustered neighbour mining against the exact one."""

import numpy as np
import torch
import torch.nn.functional as F

import hashindex.neighbours as neighbours
from hashindex.neighbours import mine_neighbours, nearest
from hashindex.training import TrainConfig, train


def clustered(n=3000, d=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, d))
    rows = centres[rng.integers(0, 40, n)] + 0.3 * rng.normal(size=(n, d))
    return torch.from_numpy((rows / np.linalg.norm(rows, axis=1, keepdims=True))
                            .astype(np.float32))


def test_clustered_mining_keeps_most_exact_neighbours_and_never_the_row_itself(monkeypatch):
    pool = clustered()
    exact = mine_neighbours(pool, 16)
    monkeypatch.setattr(neighbours, "EXACT_MINING_ROWS", 100)
    monkeypatch.setattr(neighbours, "MINING_CLUSTER_ROWS", 64)
    mined = mine_neighbours(pool, 16)
    assert mined.shape == exact.shape == (len(pool), 16)
    assert not (mined == torch.arange(len(pool))[:, None]).any()
    kept = np.mean([len(np.intersect1d(a, b)) / 16 for a, b in zip(mined.numpy(),
                                                                    exact.numpy())])
    assert kept > 0.8
    assert torch.equal(mined, mine_neighbours(pool, 16))  # same seed, same neighbours
    anchors = clustered(200, seed=1)
    truth = nearest(F.normalize(anchors), pool, 16, None)
    found = mine_neighbours(pool, 16, anchors)
    assert np.mean([len(np.intersect1d(a, b)) / 16 for a, b in zip(found.numpy(),
                                                                   truth.numpy())]) > 0.8


def test_max_steps_caps_the_steps_and_the_callers_threads_are_restored():
    before = torch.get_num_threads()
    result = train(clustered(2000).numpy(), "vanilla", 16,
                   TrainConfig(max_steps=70, batch_size=64, show_progress=False, threads=1))
    assert sum(record["steps"] for record in result.history) == 70
    assert torch.get_num_threads() == before
    assert set(result.seconds) == {"mine", "train"}
