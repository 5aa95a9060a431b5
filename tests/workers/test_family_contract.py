"""Every built-in supernet family, and a plug-in family, passes the shared contract suite."""

from __future__ import annotations

from search_spaces.families import get_family
from workers.family_contract import SupernetFamilyContract


class TestElasticCNN(SupernetFamilyContract):
    family = get_family("elastic_cnn")
    space_json = {
        "family": "elastic_cnn",
        "stage_channels": [4, 8],
        "depth": [1, 2],
        "width_mult": [0.5, 1.0],
        "kernel_size": [3, 5],
        "kernel_per_block": True,
        "squeeze_excite": True,
    }
    input_shape = (1, 8, 8)


class TestElasticTransformer(SupernetFamilyContract):
    family = get_family("elastic_transformer")
    space_json = {
        "family": "elastic_transformer",
        "num_layers": [1, 2],
        "num_heads": [1, 2],
        "embed_dim": [16, 32],
        "mlp_ratio": [1, 2],
        "per_layer": True,
    }
    input_shape = (12, 1)


class TestElasticMLP(SupernetFamilyContract):
    family = get_family("elastic_mlp")
    space_json = {"family": "elastic_mlp", "depth": [1, 2], "width": [8, 16], "activation": ["relu", "gelu"]}
    input_shape = (13,)
