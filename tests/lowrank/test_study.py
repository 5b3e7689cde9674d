"""Low-rank study jobs at tiny sizes."""

import pytest
import torch

from rfattn.core import ConfigError, generator
from rfattn.experiment.hydra_app import compose, job_config
from rfattn.lowrank import Parameterization, init_weights, run_lowrank_job, train

from .helpers import draw

TINY = ["d=16", "patterns=16", "n=300", "n_test=400", "m=16", "epochs=6"]
TRAIN = ["probe=64", "r_grid=[0,1,2,4]", "prune_rates=[0.0,0.5]", "record_every=20"]


def job(*overrides):
    train_kind = "kind=adapter" not in overrides
    return run_lowrank_job(job_config(compose("lowrank", [*TINY, *TRAIN * train_kind,
                                                          *overrides])))


def test_job_is_deterministic_and_covers_every_analysis():
    rows = job("seed=1")
    assert rows.equals(job("seed=1"))
    assert not rows.value.equals(job("seed=2").value)
    assert set(rows.analysis) == {"history", "final", "rank", "spectrum", "truncation",
                                  "pruning", "row_norms"}
    assert (rows.seed == 1).all() and rows.value.notna().all()


def test_seeds_trained_in_one_batch_do_not_interact():
    # the model trains several seeds in one set of batched kernels (the study uses one):
    # each seed's numbers are those it gets alone, to the last bit
    data, mu, X, y, _ = draw(n=128)
    (W2, a), (W1, _) = (init_weights(16, 16, 16, 16, [generator(s, "w") for s in seeds])
                        for seeds in ([0, 1], [1]))
    X2 = torch.stack([X, X.flip(0)])
    p2, p1 = Parameterization(W2, "full"), Parameterization(W1, "full")
    train(p2, a, X2, torch.stack([y, y.flip(0)]), 0.5, 32, 3, [generator(0, "b"),
                                                               generator(1, "b")])
    train(p1, a, X2[1:], y.flip(0)[None], 0.5, 32, 3, [generator(1, "b")])
    for name, w in p1.matrices().items():
        assert torch.equal(p2.matrices()[name][1], w[0]), name


def test_value_update_is_rank_two_on_the_relevant_span():
    rows = job("K=1", "epochs=15", "n=600")
    rank = rows[rows.analysis == "rank"].set_index(["matrix", "metric"]).value
    assert rank[("v", "numerical_rank")] == 2
    assert rank[("v", "relevant_energy")] > 0.9
    final = rows[rows.analysis == "final"].set_index("metric").value
    assert final["test_error"] < 0.05


def test_adapter_job_and_config_errors():
    rows = job("kind=adapter", "method=lora", "r=2")
    assert set(rows.metric) == {"test_error", "test_hinge", "train_error", "train_hinge",
                                "parameters"}
    assert (rows.method == "lora").all() and (rows.r == 2).all()
    # LoRA of rank 2 on Q, K, V (16 x 16) and O (16 x 16): 2 (in + out) each
    assert rows[rows.metric == "parameters"].value.item() == 2 * 4 * 32
    with pytest.raises(ConfigError, match="seed"):
        job("seed=-1")
    with pytest.raises(ConfigError, match="r_grid"):
        job("r_grid=[-1]")
    with pytest.raises(ConfigError, match="adapter_lr.lora"):
        job("kind=adapter", "adapter_lr.lora=0")
