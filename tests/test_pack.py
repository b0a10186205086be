"""Packing in ESPnet's model-zoo format, loading it back, and refusing hostile archives."""

import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from espnet_softvc.bin.pack import pack_model
from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.softvc.original_format import save_original
from espnet_softvc.utils.archive import unpack, unpacked
from espnet_softvc.utils.errors import UserError
from tests.conftest import assert_user_error, run_cli, run_main

RESULTS = """# RESULTS
| model | L1 valid | MCD |
|---|---|---|
| softvc_discrete | 0.61 | 9.9 |
| softvc_soft | 0.42 | 7.7 |
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """A recipe dir with exp/softvc_soft/{config.yaml,model.pth} (random weights) and RESULTS.md, packed by the CLI."""
    from espnet_softvc.tasks.load import load_model, save_espnet

    root = tmp_path_factory.mktemp("recipe")
    torch.manual_seed(0)
    save_original(AcousticModel(discrete=False), root / "original.pt")
    save_espnet(load_model(root / "original.pt")[0], root / "exp" / "softvc_soft")
    (root / "RESULTS.md").write_text(RESULTS)
    exp = root / "exp/softvc_soft"
    proc = run_cli(
        "espnet_softvc.bin.pack",
        "--train_config",
        exp / "config.yaml",
        "--model_file",
        exp / "model.pth",
        "--results",
        root / "RESULTS.md",
        "--outpath",
        exp / "packed.zip",
        "--root",
        root,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root


def test_pack_layout_and_model_card(recipe):
    with zipfile.ZipFile(recipe / "exp/softvc_soft/packed.zip") as z:
        names = set(z.namelist())
        card = z.read("README.md").decode()
        meta = yaml.safe_load(z.read("meta.yaml"))
    assert {"meta.yaml", "README.md", "RESULTS.md", "exp/softvc_soft/config.yaml", "exp/softvc_soft/model.pth"} <= names
    assert meta["files"] == {"model_file": "exp/softvc_soft/model.pth"}
    assert meta["yaml_files"] == {"train_config": "exp/softvc_soft/config.yaml"}
    assert "| softvc_soft | 0.42 | 7.7 |" in card and "softvc_discrete" not in card  # its own row only
    assert "soft: HuBERT-Soft" in card and "Unit2Speech.from_pretrained" in card


def hf_cache(cachedir, tag, folder):
    """``folder`` laid out as huggingface_hub caches ``tag`` for espnet_model_zoo: snapshot links into blobs/."""
    repo = cachedir / f"models--{tag.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "blobs").mkdir()
    for i, path in enumerate(sorted(p for p in folder.rglob("*") if p.is_file())):
        blob = repo / "blobs" / f"sha{i}"
        os.replace(path, blob)
        link = repo / "snapshots" / "0123abcd" / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def test_pack_unpack_identical_outputs(recipe, tmp_path):
    from espnet_softvc.bin.softvc_inference import Unit2Speech

    units = torch.randn(15, 256, generator=torch.Generator().manual_seed(1))
    before = Unit2Speech(recipe / "exp/softvc_soft/config.yaml", recipe / "exp/softvc_soft/model.pth")(units)
    zip_path = tmp_path / "elsewhere.zip"  # moved away from the recipe: nothing may point back there
    os.replace(recipe / "exp/softvc_soft/packed.zip", zip_path)
    try:
        zipfile.ZipFile(zip_path).extractall(tmp_path / "folder")  # a plain unzip: config not rewritten
        zipfile.ZipFile(zip_path).extractall(tmp_path / "hf")
        hf_cache(tmp_path / "zoo", "someone/softvc_soft", tmp_path / "hf")
        outputs = [
            Unit2Speech.from_pretrained(zip_path)(units),
            Unit2Speech.from_pretrained(tmp_path / "folder")(units),
            Unit2Speech.from_pretrained("someone/softvc_soft", cachedir=tmp_path / "zoo")(units),
            Unit2Speech.from_pretrained(recipe / "original.pt")(units),  # the original checkpoint format
        ]
    finally:
        os.replace(zip_path, recipe / "exp/softvc_soft/packed.zip")
    for out in outputs:
        assert torch.equal(out["feat_gen"], before["feat_gen"]) and torch.equal(out["wav"], before["wav"])
    with pytest.raises(UserError, match="someone/other: .* not in the espnet_model_zoo cache"):
        Unit2Speech.from_pretrained("someone/other", cachedir=tmp_path / "zoo")


@pytest.fixture(scope="module")
def postnet_recipe(recipe):
    """exp/softvc_soft_postnet in ``recipe``: the Soft-VC postnet option (``tts_conf.postnet: denoising``, recipe stage
    7), random weights, the postnet's last layer perturbed so that it changes the output; packed by the CLI."""
    from espnet_softvc.tasks.softvc import SoftVCTask

    exp = recipe / "exp/softvc_soft_postnet"
    exp.mkdir()
    config = yaml.safe_load((recipe / "exp/softvc_soft/config.yaml").read_text())
    config["tts_conf"].update(postnet="denoising", postnet_conf={"arch": "conv", "max_log_gain": 3.0})
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.manual_seed(1)
    model, _ = SoftVCTask.build_model_from_file(exp / "config.yaml", None, "cpu")
    with torch.no_grad():
        for param in model.tts.postnet.parameters():
            param.add_(0.1 * torch.randn_like(param))
    torch.save(model.state_dict(), exp / "valid.loss.ave.pth")
    proc = run_main(
        "espnet_softvc.bin.pack",
        "--train_config",
        exp / "config.yaml",
        "--model_file",
        exp / "valid.loss.ave.pth",
        "--outpath",
        exp / "packed.zip",
        "--root",
        recipe,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return exp


def test_packed_model_reproduces_its_source_with_and_without_postnet(recipe, postnet_recipe, tmp_path):
    from espnet_softvc.bin.softvc_inference import Unit2Speech

    units = torch.randn(15, 256, generator=torch.Generator().manual_seed(2))
    for exp, postnet in [(recipe / "exp/softvc_soft", False), (postnet_recipe, True)]:
        model_file = next(p for p in exp.glob("*.pth"))
        source = Unit2Speech(exp / "config.yaml", model_file)(units)
        packed = Unit2Speech.from_pretrained(exp / "packed.zip")(units)
        assert packed.keys() == source.keys() and ("feat_gen_before_postnet" in packed) == postnet
        for key in source:
            assert torch.equal(packed[key], source[key]), key
        with zipfile.ZipFile(exp / "packed.zip") as z:
            card = z.read("README.md").decode()
            assert [n for n in z.namelist() if n.endswith(".pth")] == [str(model_file.relative_to(recipe))]
        if postnet:  # the postnet does something, and the card says it is applied
            assert not torch.equal(packed["feat_gen"], packed["feat_gen_before_postnet"])
            assert "then its denoising postnet (part of this model" in card
        else:
            assert "the Soft-VC acoustic model alone (no postnet)" in card


def test_pack_has_no_standalone_postnet_options(recipe, tmp_path):
    exp = recipe / "exp/softvc_soft"
    args = ["--train_config", exp / "config.yaml", "--model_file", exp / "model.pth", "--outpath", tmp_path / "x.zip"]
    proc = run_main("espnet_softvc.bin.pack", *args, "--postnet_config", exp / "config.yaml", "--root", recipe)
    assert proc.returncode != 0 and "unrecognized arguments: --postnet_config" in proc.stderr
    assert not (tmp_path / "x.zip").exists()


def test_stats_files_are_packed_and_config_rewritten(tmp_path):
    root = tmp_path / "recipe"
    (root / "exp/m").mkdir(parents=True)
    (root / "exp/stats").mkdir()
    np.savez(root / "exp/stats/feats_stats.npz", count=np.array(3), sum=np.ones(128), sum_square=np.ones(128))
    config = {"normalize": "global_mvn", "normalize_conf": {"stats_file": "exp/stats/feats_stats.npz"}}
    (root / "exp/m/config.yaml").write_text(yaml.safe_dump(config))
    torch.save({"w": torch.ones(2)}, root / "exp/m/model.pth")
    out = pack_model(tmp_path / "m.zip", root / "exp/m/config.yaml", root / "exp/m/model.pth", root=root)
    with unpacked(out) as files:
        assert set(files) == {"train_config", "model_file"}
        assert torch.load(files["model_file"], weights_only=True)["w"].sum() == 2
        stats = yaml.safe_load(Path(files["train_config"]).read_text())["normalize_conf"]["stats_file"]
        assert stats.endswith("exp/stats/feats_stats.npz") and not stats.startswith(str(root))
        assert np.load(stats)["count"] == 3

    with pytest.raises(UserError, match="outside --root"):
        pack_model(tmp_path / "m2.zip", root / "exp/m/config.yaml", tmp_path / "m.zip", root=root)
    proc = run_main(
        "espnet_softvc.bin.pack",
        "--train_config",
        root / "exp/m/config.yaml",
        "--model_file",
        root / "exp/m/missing.pth",
        "--outpath",
        tmp_path / "m3.zip",
        "--root",
        root,
    )
    assert_user_error(proc, "missing.pth", "not found")


# --- hostile archives: each is refused, names the member, and writes nothing ---
META = yaml.safe_dump({"files": {"model_file": "exp/model.pth"}, "yaml_files": {"train_config": "exp/config.yaml"}})


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hostile_zip(path, name, data=b"x", symlink=False):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("meta.yaml", META)
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = 0o120777 << 16
        z.writestr(info, data)
    return path


def torch_bytes(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "case, name, make, message",
    [
        ("absolute", "/tmp/abs-evil.txt", dict(), "absolute path"),
        ("dotdot", "exp/../../escape.txt", dict(), "contains '..'"),
        ("symlink", "exp/model.pth", dict(data=b"../../../etc/passwd", symlink=True), "link pointing outside"),
        ("abs-symlink", "exp/model.pth", dict(data=b"/etc/passwd", symlink=True), "link pointing outside"),
        ("pickle", "exp/model.pth", dict(data="pickle"), "not a tensor-only checkpoint"),
        (
            "yaml-tag",
            "exp/config.yaml",
            dict(data=b"a: !!python/object/apply:os.system ['touch pwned']\n"),
            "not a safe YAML",
        ),
        ("script", "exp/run.sh", dict(data=b"rm -rf ~"), "not a checkpoint, YAML, array or plain data"),
    ],
)
def test_hostile_zip_refused(tmp_path, case, name, make, message):
    marker = tmp_path / "pwned"
    if make.get("data") == "pickle":
        make = dict(data=torch_bytes({"w": RunsCode(str(marker))}))
    archive = hostile_zip(tmp_path / f"{case}.zip", name, **make)
    with pytest.raises(UserError, match=f"{case}.zip: member '{name}' .*{message}"):
        unpack(archive, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "escape.txt").exists() and not os.path.exists("/tmp/abs-evil.txt")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_hostile_tar_links_refused(tmp_path):
    for kind, target in [(tarfile.SYMTYPE, "../../outside.pth"), (tarfile.LNKTYPE, "../outside.pth")]:
        path = tmp_path / f"links{kind.decode()}.tar"
        with tarfile.open(path, "w") as t:
            meta = META.encode()
            info = tarfile.TarInfo("meta.yaml")
            info.size = len(meta)
            t.addfile(info, io.BytesIO(meta))
            link = tarfile.TarInfo("exp/model.pth")
            link.type, link.linkname = kind, target
            t.addfile(link)
        with pytest.raises(UserError, match="member 'exp/model.pth' is a link pointing outside"):
            unpack(path, tmp_path / "out")


def test_folder_link_outside_refused(tmp_path):
    folder = tmp_path / "model"
    (folder / "exp").mkdir(parents=True)
    (folder / "meta.yaml").write_text(META)
    (folder / "exp/config.yaml").write_text("a: 1\n")
    (tmp_path / "outside.pth").write_bytes(torch_bytes({"w": torch.ones(1)}))
    (folder / "exp/model.pth").symlink_to(tmp_path / "outside.pth")
    with pytest.raises(UserError, match="'exp/model.pth' is a link pointing outside"), unpacked(folder):
        pass
