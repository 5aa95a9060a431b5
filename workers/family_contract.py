"""The shared contract every supernet family passes, built-in or plug-in (importable by plug-ins).

Subclass it in a test module and set the class attributes::

    from workers.family_contract import SupernetFamilyContract

    class TestMyFamily(SupernetFamilyContract):
        family = MY_FAMILY                      # a SupernetFamily
        space_json = {"family": "my_family", ...}   # a small space of it
        input_shape = (1, 8, 8)                 # one example's shape, of a kind the family accepts

pytest then runs every ``test_*`` method below on the family: forward of sampled sub-networks,
extraction equal to the supernet, weight sharing, checkpoint round trip, cost metrics, export to
TorchScript and ONNX verified with ONNX Runtime, and its quantizable units (if it declares any).
It needs pytest, like any test suite.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from search_spaces.family import ArchSpace, SupernetFamily
from search_spaces.params import ParamSpace
from search_spaces.quantization import Quantization, policy_from_config, uniform_policy
from search_spaces.supernet import Supernet, count_params
from workers.costs import measure_costs
from workers.export import MANIFEST_FILE, ONNX_FILE, export_onnx, export_subnet
from workers.fake_quant import quantized_layers
from workers.onnx_quant import nodes_by_unit, quantize_model
from workers.training import recalibrate_batchnorm

N_RANDOM_ARCHS = 6
TOLERANCE = 1e-5


class SupernetFamilyContract:
    family: ClassVar[SupernetFamily]
    space_json: ClassVar[dict[str, Any]]
    input_shape: ClassVar[tuple[int, ...]]
    num_classes: ClassVar[int] = 3
    batch_size: ClassVar[int] = 4

    # --- fixtures -------------------------------------------------------------------------------

    @pytest.fixture
    def space(self) -> ArchSpace:
        return self.family.space.model_validate(self.space_json)

    @pytest.fixture
    def supernet(self, space: ArchSpace) -> Supernet:
        """A supernet whose normalisation statistics are not the initial ones, in eval mode."""
        torch.manual_seed(0)
        model = self.family.supernet_class().from_space(space, self.input_shape, self.num_classes)
        model.train()
        with torch.no_grad():
            for arch in self.archs(space)[:3]:
                model(self.inputs(seed=1, n=16), arch)
        return model.eval()

    def inputs(self, seed: int = 0, n: int | None = None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn((n or self.batch_size, *self.input_shape), generator=generator)  # (B, ...)

    def archs(self, space: ArchSpace) -> list[Any]:
        rng = np.random.default_rng(0)
        return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(N_RANDOM_ARCHS)]

    # --- the space ------------------------------------------------------------------------------

    def test_space_is_json_and_configs_round_trip(self, space: ArchSpace) -> None:
        assert self.family.space.model_validate(json.loads(space.model_dump_json())) == space
        assert space.family == self.family.name
        for arch in self.archs(space):
            config = space.config_from_arch(arch)
            assert space.validate_arch(config) == arch
            assert json.loads(json.dumps(config)) == config
            assert json.loads(json.dumps(arch.to_config())) == arch.to_config()

    # --- the supernet ---------------------------------------------------------------------------

    def test_every_sampled_subnet_runs_and_gives_finite_logits(
        self, space: ArchSpace, supernet: Supernet
    ) -> None:
        x = self.inputs()
        for arch in self.archs(space):
            with torch.no_grad():
                logits = supernet(x, arch)
            assert logits.shape == (self.batch_size, self.num_classes)
            assert torch.isfinite(logits).all()

    def test_extracted_subnet_equals_the_supernet(self, space: ArchSpace, supernet: Supernet) -> None:
        x = self.inputs()
        for arch in self.archs(space):
            subnet = supernet.extract(arch).eval()
            assert not any(isinstance(m, Supernet) for m in subnet.modules())
            with torch.no_grad():
                assert torch.allclose(subnet(x), supernet(x, arch), atol=TOLERANCE), arch

    def test_extracted_weights_are_copies(self, space: ArchSpace, supernet: Supernet) -> None:
        before = copy.deepcopy(supernet.state_dict())
        subnet = supernet.extract(space.largest())
        with torch.no_grad():
            for p in subnet.parameters():
                p.add_(1.0)
        for name, tensor in supernet.state_dict().items():
            assert torch.equal(tensor, before[name]), name

    def test_subnets_share_the_supernets_weights(self, space: ArchSpace, supernet: Supernet) -> None:
        supernet.train()
        supernet.zero_grad()
        supernet(self.inputs(), space.smallest()).sum().backward()
        with_grad = [p for p in supernet.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
        assert with_grad, "no weight of the supernet received a gradient from its smallest sub-network"
        assert count_params(supernet.extract(space.smallest())) < count_params(supernet)

    def test_checkpoint_round_trip_through_json_config(self, space: ArchSpace, supernet: Supernet) -> None:
        config = json.loads(json.dumps(supernet.config.to_dict()))
        clone = self.family.supernet_class().from_config_dict(config)
        clone.load_state_dict(supernet.state_dict())
        clone.eval()
        x = self.inputs()
        with torch.no_grad():
            for arch in self.archs(space)[:3]:
                assert torch.allclose(clone(x, arch), supernet(x, arch), atol=TOLERANCE)

    # --- costs and export -----------------------------------------------------------------------

    def test_cost_metrics_are_counted_and_ordered(self, space: ArchSpace, supernet: Supernet) -> None:
        largest = measure_costs(supernet.extract(space.largest()), self.input_shape, repeats=5, warmup=1)
        smallest = measure_costs(supernet.extract(space.smallest()), self.input_shape, repeats=5, warmup=1)
        costs = largest.as_dict()
        assert costs["params"] == count_params(supernet.extract(space.largest()))
        assert costs["macs"] > 0 and costs["model_bytes"] > 0 and costs["peak_memory_mb"] > 0
        assert costs["latency_ms"] > 0 and costs["latency_ms_b32"] > 0 and costs["latency_threads"] >= 1
        assert smallest.macs <= largest.macs and smallest.params <= largest.params

    def test_export_to_torchscript_and_onnx_is_verified(
        self, space: ArchSpace, supernet: Supernet, tmp_path: Path
    ) -> None:
        subnet: nn.Module = supernet.extract(space.sample(np.random.default_rng(3)))
        recalibrate_batchnorm(subnet, self.inputs(seed=2, n=32).numpy())
        verify = self.inputs(seed=4, n=8).numpy()
        export_subnet(
            subnet, tmp_path, {"family": self.family.name}, input_shape=self.input_shape, verify_inputs=verify
        )
        manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
        assert manifest["verification"]["onnx"]["passed"] is True
        assert manifest["verification"]["torchscript"]["passed"] is True
        assert (tmp_path / ONNX_FILE).is_file()

    def test_quantizable_units_follow_the_architecture_and_convert(
        self, space: ArchSpace, supernet: Supernet, tmp_path: Path
    ) -> None:
        """A family that declares quantizable units: the active units of an architecture are exactly
        the ones its genes' conditions leave active, each names layers of the extracted sub-network,
        and every unit converts to INT8 in ONNX Runtime. A family without units cannot be quantized."""
        units = space.quant_units()
        if not units:
            with pytest.raises(ValueError, match="no quantizable layers"):
                Quantization().check_units(units, self.family.name)
            return
        genes = Quantization(weights=["int8"], activations=["int8"]).params(units)
        params = ParamSpace(space.params() + genes)
        for arch in self.archs(space):
            config = space.config_from_arch(arch)
            for gene in genes:
                if params.is_active(gene, config):
                    config[gene.name] = gene.choices[0]
            scopes = space.quant_unit_scopes(arch)
            assert {k[3:] for k in config if k.startswith("qw_")} == set(scopes)
            names = [
                name
                for name, _, _ in quantized_layers(supernet.extract(arch), policy_from_config(config), scopes)
            ]
            for unit, scope in scopes.items():
                in_scope = [n for n in names if n == scope or n.startswith(scope + ".")]
                assert in_scope, f"unit {unit} ({scope}) has no convolution or linear layer"
        arch = space.largest()
        subnet = supernet.extract(arch)
        scopes = space.quant_unit_scopes(arch)
        float_path, int8_path = tmp_path / "float.onnx", tmp_path / "int8.onnx"
        export_onnx(subnet, self.input_shape, float_path)
        summary = quantize_model(
            float_path,
            int8_path,
            uniform_policy(list(scopes), "int8", "int8"),
            scopes,
            self.inputs(n=16).numpy(),
        )
        assert all(nodes for nodes in nodes_by_unit(onnx.load(str(float_path)), scopes).values())
        assert summary["static_nodes"] > 0
        assert {"QuantizeLinear", "DequantizeLinear"} <= {
            n.op_type for n in onnx.load(str(int8_path)).graph.node
        }
