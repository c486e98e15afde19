"""The torch-free config schema says what the real classes' signatures say."""
from asr.model.config_schema import SCHEMA
from asr.model.registry import REGISTRY, ROOT_CLASSES, qualified_name


def test_schema_matches_the_registered_classes():
    assert set(SCHEMA) == set(REGISTRY)
    for name, entry in REGISTRY.items():
        keywords = entry.keywords()
        schema = SCHEMA[name]
        assert schema.name == entry.cls.__name__
        assert schema.keywords == tuple(keywords), f"{name}: update asr/model/config_schema.py"
        assert schema.required == {k for k, p in keywords.items() if p.default is p.empty}, name
        assert schema.module_args == entry.module_args, name
        assert schema.root == (entry.cls in ROOT_CLASSES), name
    assert all(qualified_name(e.cls) == n for n, e in REGISTRY.items())
