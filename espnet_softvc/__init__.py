"""espnet-softvc: the Soft-VC acoustic model and a denoising postnet as an ESPnet2 plugin.

Importing this package registers our model classes in ESPnet's ``espnet2.tasks.tts.tts_choices`` (``--tts
softvc``), so ``TTSTask.build_model_from_file`` and packing load Soft-VC models. ``espnet2.tasks.tts`` takes ~10 s
to import, so if it is not imported yet the registration runs right after it is (an import hook), not now.
"""

import importlib
import importlib.abc
import sys

TTS_TASK = "espnet2.tasks.tts"
TTS_CLASSES = {"softvc": "espnet_softvc.softvc.espnet_model:SoftVC"}  # --tts name -> "module:class"


def register(tts_task_module):
    """Add ``TTS_CLASSES`` to ``tts_task_module.tts_choices`` (idempotent)."""
    for name, target in TTS_CLASSES.items():
        module, cls = target.split(":")
        tts_task_module.tts_choices.classes.setdefault(name, getattr(importlib.import_module(module), cls))


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        register(module)


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Finds ``espnet2.tasks.tts`` through the other finders and registers our classes once it has run."""

    def find_spec(self, fullname, path, target=None):
        if fullname != TTS_TASK:
            return None
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if finder is not self else None
            if spec is not None:
                spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


if TTS_TASK in sys.modules:
    register(sys.modules[TTS_TASK])
elif not any(isinstance(finder, _RegisterOnImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterOnImport())
