"""softvc-pack: pack a trained Soft-VC model in ESPnet's model-zoo format (``espnet2.main_funcs.pack_funcs``).

The zip holds ``meta.yaml``, the training ``config.yaml``, the model file, every stats file the config names,
``RESULTS.md`` when given, and a ``README.md`` model card that says what the model applies (the acoustic model alone,
or with the denoising postnet that is part of it: ``tts_conf.postnet: denoising``, recipe stage 7). A packed model
gives exactly the output of the model it was packed from.
Like ``espnet2.bin.pack``, member names are paths relative to ``--root`` (the recipe directory, where the
config's relative paths start), so unpacking can rewrite the config to the new location::

    softvc-pack --train_config exp/softvc_soft/config.yaml --model_file exp/softvc_soft/valid.loss.ave.pth \\
        --results RESULTS.md --outpath exp/softvc_soft/softvc_soft_valid.loss.ave.zip
    python -c "from espnet_softvc.bin.softvc_inference import Unit2Speech; \\
        Unit2Speech.from_pretrained('exp/softvc_soft/softvc_soft_valid.loss.ave.zip')"
"""

import argparse
import contextlib
import io
import itertools
import os
import tempfile
from pathlib import Path

import yaml
from espnet2.main_funcs.pack_funcs import Archiver, pack

from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import check_outputs

UNITS = {  # discrete?: (units, the matching Soft-VC HiFi-GAN)
    True: (
        "discrete: HuBERT-base layer-7 features -> k-means (100 clusters), (N,) int ids 0..99 at 50 Hz",
        "hifigan-hubert-discrete-bbad3043.pt",
    ),
    False: ("soft: HuBERT-Soft, (N, 256) float frames at 50 Hz", "hifigan-hubert-soft-65f03469.pt"),
}


def stats_files(config):
    """Paths of the statistics files a training config names (``normalize_conf.stats_file`` etc.)."""
    if isinstance(config, dict):
        found = [v for k, v in config.items() if k.endswith("stats_file") and isinstance(v, str)]
        return found + [p for v in config.values() for p in stats_files(v)]
    if isinstance(config, list):
        return [p for v in config for p in stats_files(v)]
    return []


def results_rows(results, tag):
    """Header and the rows whose cell is ``tag`` of each markdown table in ``results``."""
    lines = Path(results).read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines[1:], start=1):
        if line.startswith("|") and set(line) <= set("|-: "):  # the separator under a table header
            body = itertools.takewhile(lambda row: row.startswith("|"), lines[i + 1 :])
            rows = [row for row in body if tag in [cell.strip().strip("`*") for cell in row.split("|")]]
            out += lines[i - 1 : i + 1] + rows if rows else []
    return out


def applied(config):
    """What a model of this training config applies, in words (from ``tts_conf.postnet``)."""
    if config.get("tts", "softvc") != "softvc":
        return f"`tts: {config['tts']}` (not a Soft-VC acoustic model): its output as `feat_gen`"
    postnet = (config.get("tts_conf") or {}).get("postnet")
    if postnet == "denoising":
        return (
            "the Soft-VC acoustic model, then its denoising postnet (part of this model, `tts_conf.postnet: "
            "denoising`: trained on the frozen acoustic model's free-running output). `feat_gen` is the postnet's "
            "output; `feat_gen_before_postnet` the acoustic model's"
        )
    if postnet is None:
        return "the Soft-VC acoustic model alone (no postnet): `feat_gen` is its output"
    raise UserError(f"unknown tts_conf.postnet {postnet!r} in the training config")


def model_card(config, train_config, model_file, tag, outpath, results=None):
    """README.md of the packed model: what it applies, data, units, config, the RESULTS.md row(s), how to load it."""
    tts_conf = config.get("tts_conf") or {}
    data = [f"- {name}: `{path}` ({kind})" for path, name, kind in config.get("train_data_path_and_name_and_type", [])]
    keys = [
        "tts",
        "tts_conf",
        "normalize",
        "optim",
        "optim_conf",
        "scheduler",
        "batch_type",
        "batch_size",
        "batch_bins",
        "max_epoch",
        "num_iters_per_epoch",
        "seed",
    ]
    summary = yaml.safe_dump({k: config[k] for k in keys if k in config}, sort_keys=False).strip()
    rows = results_rows(results, tag) if results else []
    name, (units, hifigan) = Path(outpath).name, UNITS[bool(tts_conf.get("discrete", False))]
    return f"""---
tags: [espnet, audio, soft-vc, voice-conversion, text-to-speech]
library_name: espnet
---
# Soft-VC acoustic model `{tag}` (ESPnet)

Speech units -> 128-bin log-mel (16 kHz, hop 10 ms) with the Soft-VC acoustic model (van Niekerk et al.,
ICASSP 2022), as an ESPnet model of the espnet-softvc plugin.

Applied: {applied(config)}.

## Data
Training data (paths as in the recipe):
{chr(10).join(data) or "- (not recorded in the config)"}

## Units
{units}

## Config
Model file `{Path(model_file).name}`, training config `{Path(train_config).name}`; the main settings:
```yaml
{summary}
```

## Results
{chr(10).join(rows) or "(no RESULTS.md row for this model)"}

## How to use
```python
from espnet_softvc.bin.softvc_inference import Unit2Speech

unit2speech = Unit2Speech.from_pretrained("{name}")  # the zip, its unpacked folder, or a model-zoo tag
out = unit2speech(units)  # (N,) ids or (N, 256) floats -> {{"feat_gen": (2N, 128), "wav": (S,)}}
# a vocoder users already have: Unit2Speech.from_pretrained("{name}", vocoder_file="{hifigan}")
```
Unpacking checks every member (no absolute paths, `..` or outward links; tensor-only checkpoints, safe YAML).
"""


def pack_model(
    outpath,
    train_config,
    model_file,
    results=None,
    options=(),
    root=".",
    tag=None,
):
    """Write the packed model ``outpath`` (.zip); returns its path.

    Every file must lie under ``root``: member names are paths relative to it (``root`` should be the
    directory training ran in, so the config's relative stats paths match the members).
    """
    root, outpath = Path(root).resolve(), Path(outpath).resolve()
    if outpath.suffix != ".zip":
        raise UserError(f"{outpath}: the packed model must be a .zip (ESPnet's model-zoo format)")
    train_config, model_file = Path(train_config).resolve(), Path(model_file).resolve()
    results = results and Path(results).resolve()
    options = [Path(p).resolve() for p in options]
    yaml_files, files = {"train_config": train_config}, {"model_file": model_file}
    with contextlib.chdir(root):
        try:
            config = yaml.safe_load(Path(train_config).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise UserError(f"{train_config}: cannot read the training config ({e})") from None
        if not isinstance(config, dict):
            raise UserError(f"{train_config}: not an ESPnet training config (no mapping)")
        stats = [Path(p).resolve() for p in stats_files(config) if Path(p).is_file()]
        options = list(dict.fromkeys(options + stats + ([results] if results else [])))
        for path in [*yaml_files.values(), *files.values(), *options]:
            if not path.exists():
                raise UserError(f"{path}: file to pack not found")
            if not path.is_relative_to(root):
                raise UserError(f"{path}: outside --root {root}; run from the recipe directory or pass --root")
        check_outputs([outpath], [*yaml_files.values(), *files.values(), *options], outpath.parent)
        tag = tag or train_config.parent.name
        card = model_card(config, train_config, model_file, tag, outpath, results)
        outpath.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=outpath.parent) as tmp:
            tmp_out = Path(tmp) / outpath.name
            with contextlib.redirect_stdout(io.StringIO()):  # pack_funcs prints one line per member
                pack(files=files, yaml_files=yaml_files, outpath=tmp_out, option=options)
                with Archiver(tmp_out, mode="a") as archive:
                    card = io.BytesIO(card.encode())
                    archive.addfile(archive.generate_info("README.md", card.getbuffer().nbytes), card)
            os.replace(tmp_out, outpath)
    return outpath


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Pack a Soft-VC model in ESPnet's model-zoo format (zip + meta.yaml).")
    parser.add_argument("--outpath", type=Path, required=True, help="packed model to write (.zip)")
    parser.add_argument("--train_config", type=Path, required=True, help="exp/<tag>/config.yaml")
    parser.add_argument("--model_file", type=Path, required=True, help="exp/<tag>/valid.loss.ave.pth")
    parser.add_argument("--results", type=Path, help="RESULTS.md: packed, and its row for the model goes in the card")
    parser.add_argument("--option", type=Path, action="append", default=[], help="any further file to pack")
    parser.add_argument("--root", type=Path, default=Path("."), help="paths in the zip are relative to it (default .)")
    parser.add_argument("--tag", help="model name in the card and RESULTS.md (default: the config's directory)")
    args = parser.parse_args(argv)
    out = pack_model(
        args.outpath,
        args.train_config,
        args.model_file,
        args.results,
        args.option,
        args.root,
        args.tag,
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
