"""One registry of score methods: each method's options model and its function agree."""

import inspect

from spectrumkit.choices import SCORE_METHODS
from spectrumkit.config.score import method_models
from spectrumkit.scores import METHODS, OPTION_MODELS, SCORE_REGISTRY


def test_each_method_has_its_options_model_and_its_function():
    assert tuple(SCORE_REGISTRY) == SCORE_METHODS == METHODS
    for name, entry in SCORE_REGISTRY.items():
        assert entry.options.method_name() == name
        assert OPTION_MODELS[name] is entry.options
        fn = entry.load()
        assert callable(fn) and fn.__name__ == f"{name}_scores"
        assert list(inspect.signature(fn).parameters)[:7] == [
            "fn", "model", "batch", "xs", "theta", "generator", "o"]


def test_the_configuration_knows_every_registered_method_and_the_two_training_ones():
    assert list(method_models()) == [*SCORE_METHODS, "dense", "l2"]
