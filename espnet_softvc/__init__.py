"""espnet-softvc: the Soft-VC acoustic model and a denoising postnet as an ESPnet2 plugin.

Importing this package registers our model classes in ESPnet's ``espnet2.tasks.tts.tts_choices`` (``--tts
softvc``), so ``TTSTask.build_model_from_file`` and packing load Soft-VC models. ``espnet2.tasks.tts`` takes ~10 s
to import, so if it is not imported yet the registration runs right after it is (an import hook), not now.

Nothing touches the network: ESPnet's tasks import ``g2p_en``, which downloads NLTK data at import time when it is
missing; the same hook runs that import with ``nltk.download`` switched off (Soft-VC never uses phonemes).
"""

import contextlib
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


@contextlib.contextmanager
def _registering(module):
    yield
    register(module)


@contextlib.contextmanager
def _without_downloads(module):
    import nltk

    download, nltk.download = nltk.download, lambda *args, **kwargs: False
    try:
        yield
    finally:
        nltk.download = download


HOOKS = {TTS_TASK: _registering, "g2p_en": _without_downloads}  # module -> context its import runs in


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, loader, hook):
        self.loader, self.hook = loader, hook

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with self.hook(module):
            self.loader.exec_module(module)


class _ImportHooks(importlib.abc.MetaPathFinder):
    """Finds the modules of ``HOOKS`` through the other finders and runs their import in their context."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in HOOKS:
            return None
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if finder is not self else None
            if spec is not None:
                spec.loader = _HookedLoader(spec.loader, HOOKS[fullname])
                return spec
        return None


if TTS_TASK in sys.modules:
    register(sys.modules[TTS_TASK])
if not any(isinstance(finder, _ImportHooks) for finder in sys.meta_path):
    sys.meta_path.insert(0, _ImportHooks())
