import numpy as np
import pytest
import torch

from hashindex.codes import hamming_distance_matrix
from hashindex.encoding import encode_codes
from hashindex.errors import HashIndexError
from hashindex.model_io import load_model, save_model
from hashindex.models import VARIANTS, create_model
from hashindex.models.config import ModelConfig, variant_options
from hashindex.models.contractive import ContractiveAutoencoder
from hashindex.models.options import (
    ConcreteOptions,
    ContractiveOptions,
    DeepOptions,
    SparseKOptions,
)
from hashindex.training import TrainConfig, train

FAST = TrainConfig(epochs=6, batch_size=128, show_progress=False, seed=3)
SMALL = DeepOptions(hidden=(64, 32))


def small_options(variant: str):
    """The variant's options with small layers (and few features, RBM epochs)."""
    options = VARIANTS[variant].options
    small = {"hidden": (64,) if variant.startswith("sparse") else (64, 32), "sparse_k": 8,
             "concrete_features": 8, "rbm_epochs": 3}
    return options(**{k: v for k, v in small.items() if k in options.names()})


# the sequence variants read token rows, not these vectors: tests/test_sequence_variants.py
@pytest.fixture(scope="module",
                params=sorted(v for v in VARIANTS if not VARIANTS[v].tokens))
def trained(request, clustered):
    points, _ = clustered
    result = train(points, request.param, 16, FAST, small_options(request.param))
    return request.param, result, points


def test_every_variant_loss_falls(trained):
    variant, result, _ = trained
    first, last = result.history[0]["loss"], min(r["loss"] for r in result.history)
    assert last < first, f"{variant}: loss {first:.4f} → {last:.4f}"


def test_inference_codes_are_deterministic_and_survive_save_load(trained, tmp_path):
    variant, result, points = trained
    codes = encode_codes(result.model, points)
    assert codes.shape == (len(points), 2) and codes.dtype == np.uint8
    assert np.array_equal(codes, encode_codes(result.model, points))
    save_model(result.model, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert type(loaded).__name__ == type(result.model).__name__
    assert np.array_equal(codes, encode_codes(loaded, points))


def test_same_seed_same_codes(clustered):
    points, _ = clustered
    a = train(points, "deep", 16, FAST, SMALL)
    b = train(points, "deep", 16, FAST, SMALL)
    assert np.array_equal(encode_codes(a.model, points), encode_codes(b.model, points))


def test_k_sparse_keeps_exactly_k():
    model = create_model(ModelConfig("sparse-k", 16, 12, SparseKOptions(hidden=(40,),
                                                                         sparse_k=5)))
    hidden = torch.randn(7, 40).abs() + 0.1  # all positive, so zeros come from the top-k only
    sparse = model.transform_hidden(hidden)
    assert ((sparse != 0).sum(dim=1) == 5).all()
    hidden.requires_grad_(True)
    model.transform_hidden(hidden).sum().backward()
    assert ((hidden.grad != 0).sum(dim=1) == 5).all()


def test_contractive_penalty_equals_autograd_jacobian_norm():
    torch.manual_seed(0)
    exact = ContractiveAutoencoder(
        ModelConfig("contractive", 8, 5, ContractiveOptions(hidden=(6, 4), jacobian="exact")))
    x = torch.randn(3, 5)
    expected = torch.stack([
        (torch.autograd.functional.jacobian(
            lambda s: exact.code_probabilities(s.unsqueeze(0)).squeeze(0), sample) ** 2).sum()
        for sample in x
    ]).mean()
    assert torch.allclose(exact.jacobian_penalty(x), expected, rtol=1e-5, atol=1e-7)
    # the default: random projections, an unbiased estimate of the same norm
    estimated = ContractiveAutoencoder(
        ModelConfig("contractive", 8, 5, ContractiveOptions(hidden=(6, 4), projections=64)))
    estimated.load_state_dict(exact.state_dict())
    draws = torch.stack([estimated.jacobian_penalty(x).detach() for _ in range(40)])
    assert abs(draws.mean().item() / expected.item() - 1) < 0.05
    penalty = estimated.jacobian_penalty(x)
    penalty.backward()  # it trains the weights: gradients reach the encoder
    assert estimated.encoder[0].weight.grad.abs().sum() > 0


def test_contractive_closed_form_equals_the_exact_jacobian_norm():
    """One layer to the code (the default): Σ_j (c_j(1−c_j))²‖W_j‖², no autograd."""
    torch.manual_seed(1)
    closed = ContractiveAutoencoder(ModelConfig("contractive", 8, 5, ContractiveOptions()))
    exact = ContractiveAutoencoder(
        ModelConfig("contractive", 8, 5, ContractiveOptions(jacobian="exact")))
    exact.load_state_dict(closed.state_dict())
    assert closed.closed_form and not exact.closed_form
    x = torch.randn(4, 5)
    assert torch.allclose(closed.jacobian_penalty(x), exact.jacobian_penalty(x), rtol=1e-5)
    with pytest.raises(HashIndexError, match="jacobian=closed needs a one-layer encoder"):
        ContractiveAutoencoder(ModelConfig("contractive", 8, 5, ContractiveOptions(
            hidden=(6,), jacobian="closed"))).jacobian_penalty(x)


def test_concrete_selects_requested_distinct_features():
    # 40 dims of which only 6 carry signal: a cold selector must pick 6 distinct features
    rng = np.random.default_rng(1)
    points = 0.01 * rng.normal(size=(600, 40)).astype(np.float32)
    points[:, :6] += rng.normal(size=(600, 6)).astype(np.float32)
    config = ConcreteOptions(hidden=(32,), concrete_features=6, concrete_start_temperature=5.0,
                             concrete_end_temperature=0.01)
    result = train(points, "concrete", 8,
                   TrainConfig(epochs=40, show_progress=False, learning_rate=1e-2,
                               similarity_weight=0.0), config)
    assert float(result.model.temperature) == pytest.approx(0.01)
    chosen = result.model.selected_features().tolist()
    assert len(set(chosen)) == 6


def test_hamming_neighbours_share_cluster(clustered):
    points, labels = clustered
    result = train(points, "deep", 32, TrainConfig(epochs=15, show_progress=False), SMALL)
    codes = encode_codes(result.model, points)
    distances = hamming_distance_matrix(codes, codes)
    np.fill_diagonal(distances, 10**6)
    nearest = distances.argmin(axis=1)
    agreement = (labels[nearest] == labels).mean()
    assert agreement > 0.9, agreement  # chance is 1/8


@pytest.mark.parametrize(
    "variant, pairs, message",
    [
        ("nope", [], "unknown variant 'nope'"),
        ("denoising", ["noise=pink"], "noise='pink' is unknown: choose one of gaussian"),
        ("variational", ["relaxation=x"], "relaxation='x' is unknown"),
        ("deep", ["code_estimator=magic"], "code_estimator='magic' is unknown"),
        ("sparse-k", ["sparse_k=10000"], "sparse_k=10000"),
        ("vanilla", ["noise=masking"], "variant vanilla has no option 'noise'; its options are"),
        ("vanilla", ["hidden=64"], "variant vanilla has no option 'hidden'"),
        ("variational", ["code_estimator=ste"], "variational has no option 'code_estimator'"),
        ("deep", ["hidden=64,x"], "'64,x' is not a valid tuple"),
        ("deep", ["bits=8"], "bits is not an option; pass --bits"),
    ],
)
def test_bad_variant_options_raise(variant, pairs, message):
    with pytest.raises(HashIndexError, match=message):
        variant_options(variant, pairs)


def test_bad_model_config_raises():
    with pytest.raises(HashIndexError, match="bits=12"):
        ModelConfig("deep", 12, 8)
    with pytest.raises(HashIndexError, match="variant vanilla takes VanillaOptions"):
        ModelConfig("vanilla", 16, 8, DeepOptions())
    with pytest.raises(HashIndexError, match="concrete_features=20"):
        create_model(ModelConfig("concrete", 16, 8, ConcreteOptions(concrete_features=20)))


def test_model_format_1_loads_with_the_same_codes(tmp_path, clustered):
    """A model saved flat (format 1, every variant's fields in one list) loads as the model it
    was: its own variant's fields kept, the others (ignored by it then) dropped."""
    import json

    points, _ = clustered
    model = train(points, "sparse-k", 16, FAST, SparseKOptions(hidden=(48,), sparse_k=6)).model
    path = save_model(model, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    flat = {"variant": "sparse-k", "bits": 16, "input_dim": points.shape[1], "hidden": [48],
            "activation": "gelu", "code_estimator": "ste", "code_noise_std": 4.0,
            "gumbel_temperature": 0.5, "sparse_k": 6, "sparse_rho": 0.05, "noise": "gaussian",
            "noise_level": 0.2, "kl_weight": 0.01, "relaxation": "gumbel", "rbm_epochs": 20}
    config.update(format_version=1, model=flat)
    (path / "config.json").write_text(json.dumps(config))
    loaded = load_model(path)
    assert loaded.options == SparseKOptions(hidden=(48,), sparse_k=6)  # relu kept, as in v1
    assert np.array_equal(encode_codes(loaded, points), encode_codes(model, points))


def test_bad_embeddings_raise(clustered):
    points, _ = clustered
    broken = points.copy()
    broken[5, 2] = np.nan
    with pytest.raises(HashIndexError, match="row 5"):
        train(broken, "deep", 16, FAST)
    model = train(points, "vanilla", 16, FAST).model
    with pytest.raises(HashIndexError, match="dimension 7"):
        encode_codes(model, np.zeros((2, 7), dtype=np.float32))


def test_missing_or_incompatible_model_folder(tmp_path):
    with pytest.raises(HashIndexError, match="config.json is missing"):
        load_model(tmp_path / "absent")
    model = create_model(ModelConfig("vanilla", 8, 4))
    path = save_model(model, tmp_path / "m")
    config_file = path / "config.json"
    text = config_file.read_text().replace('"format_version": 2', '"format_version": 99')
    config_file.write_text(text)
    with pytest.raises(HashIndexError, match="format version 99"):
        load_model(path)


def test_neighbour_distillation_prefers_codes_that_keep_neighbours():
    from hashindex.training import neighbour_distillation

    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.normal(size=(64, 32)).astype(np.float32))
    x[1] = x[0]  # a duplicate must not produce NaN
    projection = torch.from_numpy(rng.normal(size=(32, 64)).astype(np.float32))
    keeps = torch.sign(x @ projection)  # random-hyperplane codes preserve angles
    scrambled = keeps[torch.from_numpy(rng.permutation(64))]
    config = TrainConfig()
    kept = neighbour_distillation(keeps, x, config)
    lost = neighbour_distillation(scrambled, x, config)
    assert torch.isfinite(kept) and kept >= 0
    assert kept < 0.5 * lost, (float(kept), float(lost))


def test_similarity_term_improves_neighbour_recall():
    # points on a 6-d linear manifold in 32-d: near neighbours are well defined
    rng = np.random.default_rng(2)
    points = rng.normal(size=(800, 6)) @ rng.normal(size=(6, 32))
    points += 0.05 * rng.normal(size=(800, 32))
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    exact = points @ points.T
    np.fill_diagonal(exact, -np.inf)
    true = np.argsort(-exact, axis=1)[:, :10]

    def recall(weight):
        config = TrainConfig(epochs=15, show_progress=False, similarity_weight=weight, seed=1)
        codes = encode_codes(train(points, "vanilla", 32, config).model, points)
        distances = hamming_distance_matrix(codes, codes).astype(float)
        distances += np.random.default_rng(0).random(distances.shape) * 0.5  # random tie-break
        np.fill_diagonal(distances, np.inf)
        found = np.argsort(distances, axis=1)[:, :10]
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, true)])

    assert recall(1.0) > recall(0.0) + 0.05


def test_mdl_reports_both_description_costs_and_both_fall(clustered):
    points, _ = clustered
    result = train(points, "mdl", 16, FAST, small_options("mdl"))
    first, last = result.history[0], result.history[-1]
    assert {"reconstruction", "code_cost"} <= set(first)
    assert last["reconstruction"] < first["reconstruction"]
    assert last["loss"] < first["loss"]
    model = result.model  # the learned prior is a probability per bit, the variance positive
    prior = torch.sigmoid(model.prior_logits.detach())
    assert prior.shape == (16,) and ((prior > 0) & (prior < 1)).all()
    cheaper = train(points, "mdl", 16, FAST,
                    VARIANTS["mdl"].options(hidden=(64, 32), code_cost_weight=20.0))
    assert cheaper.history[-1]["code_cost"] < last["code_cost"]  # β buys shorter codes
