from __future__ import annotations

import datetime
import importlib
import importlib.resources
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

import kilnflow.config
from kilnflow.config import ConfigLoader
from kilnflow.errors import ConfigError, MissingConfigError

Tree = dict[str, str]


def write_tree(root: Path, files: Tree) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def make_tar(archive: Path, members: Tree) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def make_zip(archive: Path, members: Tree) -> Path:
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, text in members.items():
            zipped.writestr(name, text)
    return archive


def packaged_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: Tree) -> Any:
    """The conf folder of a package imported from a zip, as an installed wheel may be."""
    package = f"kilnflow_conf_{uuid.uuid4().hex}"
    members = {f"{package}/__init__.py": "", **{f"{package}/conf/{k}": v for k, v in files.items()}}
    monkeypatch.syspath_prepend(str(make_zip(tmp_path / "package.zip", members)))
    importlib.import_module(package)
    return importlib.resources.files(package) / "conf"


def build_source(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: Tree
) -> tuple[Any, str]:
    """Return the conf source and how messages name its root."""
    if kind == "directory":
        root = write_tree(tmp_path / "conf", files)
        return root, str(root)
    if kind == "tar.gz in a folder":
        archive = make_tar(tmp_path / "conf.tar.gz", {f"conf/{k}": v for k, v in files.items()})
        return str(archive), f"{archive}/conf"
    if kind == "tgz at the root":
        archive = make_tar(tmp_path / "conf.tgz", files)
        return archive, str(archive)
    if kind == "zip at the root":
        archive = make_zip(tmp_path / "conf.zip", files)
        return archive, str(archive)
    if kind == "zip in a folder":
        archive = make_zip(tmp_path / "conf.zip", {f"conf/{k}": v for k, v in files.items()})
        return archive, f"{archive}/conf"
    assert kind == "packaged Traversable"
    conf = packaged_conf(tmp_path, monkeypatch, files)
    assert not isinstance(conf, os.PathLike)
    return conf, str(conf).rstrip("/")


SOURCE_KINDS = [
    "directory",
    "tar.gz in a folder",
    "tgz at the root",
    "zip at the root",
    "zip in a folder",
    "packaged Traversable",
]

PROJECT_CONF: Tree = {
    "base/catalog.yml": (
        "cars:\n  type: pandas.CSVDataset\n  filepath: ${globals:paths.raw}/cars.csv\n"
    ),
    "base/catalog_models.json": json.dumps({"model": {"type": "pickle.PickleDataset"}}),
    "base/pipelines/training/catalog.yaml": "features:\n  type: MemoryDataset\n",
    "base/parameters.yml": "n: 3\nseed: 42\n",
    "base/parameters/model.yml": "model:\n  lr: 0.01\n  depth: 3\n",
    "base/globals.yml": "paths:\n  raw: data/01_raw\n",
    "base/.ipynb_checkpoints/catalog-checkpoint.yml": "cars: {}\n",
    "base/catalog_notes.txt": "cars: not configuration\n",
    "local/parameters.yml": "seed: 7\n",
    "local/credentials.yml": "db:\n  user: me\n",
}


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_every_source_kind_loads_the_same_configuration(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = build_source(kind, tmp_path, monkeypatch, PROJECT_CONF)
    loader = ConfigLoader(source)

    assert loader.env == "local"
    assert dict(loader) == {
        "catalog": {
            "cars": {"type": "pandas.CSVDataset", "filepath": "data/01_raw/cars.csv"},
            "model": {"type": "pickle.PickleDataset"},
            "features": {"type": "MemoryDataset"},
        },
        "parameters": {"n": 3, "seed": 7, "model": {"lr": 0.01, "depth": 3}},
        "credentials": {"db": {"user": "me"}},
        "globals": {"paths": {"raw": "data/01_raw"}},
    }


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_every_source_kind_names_the_file_at_fault(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"base/catalog.yml": "a: 1\n", "base/nested/catalog.yml": "a: 2\n"}
    source, root = build_source(kind, tmp_path, monkeypatch, files)

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(source)["catalog"]

    assert str(excinfo.value) == (
        f"Key 'a' is defined in both {root}/base/catalog.yml and "
        f"{root}/base/nested/catalog.yml; keep it in one file of environment 'base'."
    ).replace("/", os.sep if kind == "directory" else "/")


def test_public_names() -> None:
    assert kilnflow.config.__all__ == ["ConfigLoader", "conf_files"]


def test_attributes_describe_the_source_and_env(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": "", "prod/catalog.yml": ""})

    loader = ConfigLoader(str(conf), env="prod")

    assert loader.conf_source == conf
    assert loader.env == "prod"
    assert loader.base_env == "base"
    assert "prod" in repr(loader)


def test_run_env_replaces_top_level_keys_of_base(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {
            "base/parameters.yml": "model:\n  lr: 0.01\n  depth: 3\nn: 1\n",
            "prod/parameters.yml": "model:\n  lr: 0.5\n",
        },
    )

    assert ConfigLoader(conf, env="prod")["parameters"] == {"model": {"lr": 0.5}, "n": 1}


def test_custom_base_and_default_run_env(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf", {"common/parameters.yml": "a: 1\nb: 1\n", "dev/parameters.yml": "b: 2\n"}
    )

    loader = ConfigLoader(conf, base_env="common", default_run_env="dev")

    assert loader["parameters"] == {"a": 1, "b": 2}


def test_env_equal_to_base_reads_base_once(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": "a: 1\n"})

    assert ConfigLoader(conf, env="base")["parameters"] == {"a": 1}


def test_same_key_in_base_and_env_is_not_a_duplicate(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {"base/catalog.yml": "cars: {type: A}\n", "local/catalog.yml": "cars: {type: B}\n"},
    )

    assert ConfigLoader(conf)["catalog"] == {"cars": {"type": "B"}}


def test_underscore_keys_are_file_local_helpers(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {
            "base/catalog_a.yml": "_csv: &csv {type: pandas.CSVDataset}\na:\n  <<: *csv\n",
            "base/catalog_b.yml": "_csv: &csv {type: pandas.CSVDataset}\nb:\n  <<: *csv\n",
        },
    )

    assert ConfigLoader(conf)["catalog"] == {
        "a": {"type": "pandas.CSVDataset"},
        "b": {"type": "pandas.CSVDataset"},
    }


def test_custom_config_patterns_add_a_config_name(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {
            "base/airflow.yml": "schedule: '@daily'\n",
            "base/airflow/retries.yml": "retries: 2\n",
            "base/catalog.yml": "airflow_x: {}\n",
        },
    )

    loader = ConfigLoader(conf, config_patterns={"airflow": ["airflow*", "airflow/**"]})

    assert loader["airflow"] == {"schedule": "@daily", "retries": 2}
    assert list(loader) == ["catalog", "parameters", "credentials", "globals", "airflow"]
    assert "airflow" in loader


def test_a_known_name_without_files_is_empty(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": "a: 1\n"})

    assert ConfigLoader(conf)["credentials"] == {}


def test_unknown_config_name_is_a_missing_config_and_a_key_error(tmp_path: Path) -> None:
    loader = ConfigLoader(write_tree(tmp_path / "conf", {"base/catalog.yml": ""}))

    with pytest.raises(MissingConfigError) as excinfo:
        loader["catalogs"]

    assert isinstance(excinfo.value, KeyError)
    assert str(excinfo.value).startswith("No configuration named 'catalogs'")
    assert "Did you mean 'catalog'?" in str(excinfo.value)
    assert loader.get("catalogs") is None
    assert "catalogs" not in loader
    assert len(loader) == 4


def test_results_are_cached_and_returned_as_copies(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": "model: {lr: 0.1}\n"})
    loader = ConfigLoader(conf)

    first = loader["parameters"]
    first["model"]["lr"] = 99
    (conf / "base" / "parameters.yml").write_text("model: {lr: 0.2}\n")

    assert loader["parameters"] == {"model": {"lr": 0.1}}
    assert ConfigLoader(conf)["parameters"] == {"model": {"lr": 0.2}}


def test_files_are_read_in_sorted_path_order(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {
            "base/parameters_b.yml": "_order: b\n",
            "base/parameters_a.yml": "_order: a\nx: ${_order}\n",
        },
    )

    assert ConfigLoader(conf)["parameters"] == {"x": "b"}


def test_empty_files_are_empty_mappings(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {"base/catalog.yml": "", "base/catalog.json": " \n", "base/parameters.yml": "# none\n"},
    )
    loader = ConfigLoader(conf)

    assert loader["catalog"] == {}
    assert loader["parameters"] == {}


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [("catalog.yml", "- a\n- b\n", "list"), ("catalog.json", '"text"', "str")],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, name: str, text: str, kind: str) -> None:
    conf = write_tree(tmp_path / "conf", {f"base/{name}": text})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    assert str(excinfo.value) == (
        f"{conf / 'base' / name} holds a {kind} at its top level; it must be a mapping of "
        "keys to values."
    )


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": "a: 1\nb: [1, 2\nc: 3\n"})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    message = str(excinfo.value)
    assert message.startswith(f"{conf / 'base' / 'catalog.yml'}, line 3: invalid YAML (")
    assert message.endswith("; fix the syntax.")


def test_unreadable_yaml_names_file(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "base" / "catalog.yml").write_bytes(b"a: \xff\xfe\x00bad\n")

    with pytest.raises(ConfigError, match=r"catalog\.yml is not valid YAML"):
        ConfigLoader(conf)["catalog"]


def test_json_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    # A missing comma, which every Python reports at the same place (3.13 reports a
    # trailing comma at the comma, older versions at the brace after it).
    conf = write_tree(tmp_path / "conf", {"base/catalog.json": '{\n  "a": 1\n  "b": 2\n}\n'})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    assert str(excinfo.value).startswith(f"{conf / 'base' / 'catalog.json'}, line 3: invalid JSON")


def test_json_that_is_not_utf8_names_file(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "base" / "catalog.json").write_bytes(b'{"a": "\xff"}')

    with pytest.raises(ConfigError, match=r"catalog\.json is not UTF-8 text"):
        ConfigLoader(conf)["catalog"]


def test_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": "a: 1\n"})
    (conf / "base" / "catalog.yml").symlink_to(conf / "base" / "missing.yml")

    with pytest.raises(ConfigError, match=r"catalog\.yml cannot be read \(No such file"):
        ConfigLoader(conf)["catalog"]


def test_globals_interpolation_with_nested_keys_and_defaults(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {
            "base/globals.yml": "paths:\n  raw: data/raw\nformats: [csv, parquet]\nseed: 1\n",
            "local/globals.yml": "seed: 2\n",
            "base/catalog.yml": (
                "cars:\n"
                "  filepath: ${globals:paths.raw}/cars.${globals:formats.0}\n"
                "  paths: ${globals:paths}\n"
                "  seed: ${globals:seed}\n"
                "  bucket: ${globals:bucket,local-bucket}\n"
                "  retries: ${globals:retries,3}\n"
            ),
        },
    )

    assert ConfigLoader(conf)["catalog"] == {
        "cars": {
            "filepath": "data/raw/cars.csv",
            "paths": {"raw": "data/raw"},
            "seed": 2,
            "bucket": "local-bucket",
            "retries": 3,
        }
    }


def test_missing_globals_key_names_key_and_file(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {"base/globals.yml": "a: 1\n", "base/catalog.yml": "cars:\n  path: ${globals:paths.raw}\n"},
    )

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    assert str(excinfo.value) == (
        f"{conf / 'base' / 'catalog.yml'}, key 'cars.path': globals key 'paths.raw' is not "
        "defined and has no default; add it to a globals file or write "
        "${globals:paths.raw,<default>}."
    )


def test_globals_may_not_refer_to_globals(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/globals.yml": "a: 1\nb: ${globals:a}\nc: ${a}\n"})

    with pytest.raises(ConfigError, match=r"cannot be used inside globals itself"):
        ConfigLoader(conf)["globals"]


def test_globals_themselves_may_use_runtime_params(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {
            "base/globals.yml": "bucket: ${runtime_params:bucket,dev}\nraw: ${bucket}/raw\n",
            "base/catalog.yml": "cars: {path: '${globals:raw}'}\n",
        },
    )

    loader = ConfigLoader(conf, runtime_params={"bucket": "prod"})

    assert loader["catalog"] == {"cars": {"path": "prod/raw"}}


def test_runtime_params_interpolation_with_defaults(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {
            "base/catalog.yml": (
                "cars:\n"
                "  path: data/${runtime_params:run.date}/cars.csv\n"
                "  sample: ${runtime_params:sample,0.5}\n"
                "  owner: ${runtime_params:owner,null}\n"
            )
        },
    )

    loader = ConfigLoader(conf, runtime_params={"run.date": "2024-01-01"})

    assert loader["catalog"] == {
        "cars": {"path": "data/2024-01-01/cars.csv", "sample": 0.5, "owner": None}
    }


def test_missing_runtime_param_names_key_and_file(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": "lr: ${runtime_params:lr}\n"})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["parameters"]

    assert str(excinfo.value) == (
        f"{conf / 'base' / 'parameters.yml'}, key 'lr': runtime parameter 'lr' was not passed "
        "and has no default; pass it at run time or write ${runtime_params:lr,<default>}."
    )


def test_a_resolver_takes_at_most_one_default(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": "a: ${runtime_params:a,1,2}\n"})

    with pytest.raises(ConfigError, match=r"key 'a': .* at most one default, not 2 defaults"):
        ConfigLoader(conf)["parameters"]


def test_unresolvable_interpolation_names_key_and_file(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": "cars:\n  - ${nowhere.to.go}\n"})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    assert str(excinfo.value) == (
        f"{conf / 'base' / 'catalog.yml'}, key 'cars[0]': cannot resolve the interpolation "
        "(Interpolation key 'nowhere.to.go' not found); fix the ${...} expression."
    )


def test_loaders_do_not_share_interpolation_values(tmp_path: Path) -> None:
    files = {"base/catalog.yml": "a: ${globals:x}-${runtime_params:y}\n"}
    one = ConfigLoader(
        write_tree(tmp_path / "one", {**files, "base/globals.yml": "x: 1\n"}),
        runtime_params={"y": "one"},
    )
    two = ConfigLoader(
        write_tree(tmp_path / "two", {**files, "base/globals.yml": "x: 2\n"}),
        runtime_params={"y": "two"},
    )

    assert one["catalog"] == {"a": "1-one"}
    assert two["catalog"] == {"a": "2-two"}


def test_resolvers_refuse_to_work_outside_a_loader(tmp_path: Path) -> None:
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationResolutionError

    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": "a: ${runtime_params:y,1}\n"})
    assert ConfigLoader(conf)["catalog"] == {"a": 1}

    stray = OmegaConf.create({"a": "${runtime_params:y,1}"})
    with pytest.raises(InterpolationResolutionError, match=r"only resolved while kilnflow"):
        OmegaConf.to_container(stray, resolve=True)


def test_environment_variables_resolve_in_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILNFLOW_TEST_PASSWORD", "s3cret")
    conf = write_tree(
        tmp_path / "conf",
        {"base/credentials.yml": "db:\n  password: ${oc.env:KILNFLOW_TEST_PASSWORD}\n"},
    )

    assert ConfigLoader(conf)["credentials"] == {"db": {"password": "s3cret"}}


def test_missing_environment_variable_names_key_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KILNFLOW_TEST_UNSET", raising=False)
    conf = write_tree(
        tmp_path / "conf", {"base/credentials.yml": "db:\n  pw: ${oc.env:KILNFLOW_TEST_UNSET}\n"}
    )

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["credentials"]

    message = str(excinfo.value)
    assert message.startswith(f"{conf / 'base' / 'credentials.yml'}, key 'db.pw': cannot resolve")
    assert "KILNFLOW_TEST_UNSET" in message


@pytest.mark.parametrize("name", ["catalog", "parameters", "globals"])
def test_environment_variables_are_refused_outside_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("KILNFLOW_TEST_PASSWORD", "s3cret")
    conf = write_tree(
        tmp_path / "conf", {f"base/{name}.yml": "db:\n  - ${ oc.env:KILNFLOW_TEST_PASSWORD}\n"}
    )

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)[name]

    assert str(excinfo.value) == (
        f"{conf / 'base' / (name + '.yml')}, key 'db[0]': ${{oc.env:...}} is only allowed in "
        "credentials; move the value to a credentials file and refer to it from there."
    )


def test_runtime_params_deep_merge_over_parameters(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {"base/parameters.yml": "model: {lr: 0.01, depth: 3, opt: {name: sgd, m: 0.9}}\nn: 1\n"},
    )

    loader = ConfigLoader(
        conf,
        runtime_params={"model.lr": 0.1, "n": 3, "model.opt": {"name": "adam"}, "new.key": "x"},
    )

    assert loader["parameters"] == {
        "model": {"lr": 0.1, "depth": 3, "opt": {"name": "adam", "m": 0.9}},
        "n": 3,
        "new": {"key": "x"},
    }
    assert loader.runtime_params == {
        "model.lr": 0.1,
        "n": 3,
        "model.opt": {"name": "adam"},
        "new.key": "x",
    }


def test_runtime_params_take_part_in_interpolation(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {
            "base/parameters.yml": (
                "rate: 1\ndoubled: ${rate}\nmodel: {lr: 0.01}\nsteps: '${model.lr}'\n"
            )
        },
    )

    loader = ConfigLoader(conf, runtime_params={"rate": 5, "model.lr": 0.5})

    assert loader["parameters"] == {"rate": 5, "doubled": 5, "model": {"lr": 0.5}, "steps": 0.5}
    assert ConfigLoader(conf)["parameters"]["doubled"] == 1


def test_a_bad_runtime_param_interpolation_names_the_runtime_parameters(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": "rate: 1\n"})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf, runtime_params={"x": "${nowhere}"})["parameters"]

    assert str(excinfo.value).startswith("runtime parameters, key 'x': cannot resolve")


def test_runtime_params_with_a_dict_and_dotted_keys_combine(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": ""})

    loader = ConfigLoader(conf, runtime_params={"a.b": 1, "a": {"c": 2}})

    assert loader["parameters"] == {"a": {"b": 1, "c": 2}}


def test_runtime_params_override_only_parameters(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": "n: 1\n"})

    assert ConfigLoader(conf, runtime_params={"n": 2})["catalog"] == {"n": 1}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"a..b": 1}, "Runtime parameter name 'a..b' is invalid"),
        ({"": 1}, "Runtime parameter name '' is invalid"),
        ({1: 1}, "Runtime parameter name 1 is invalid"),
        (
            {"a": 1, "a.b": 2},
            "Runtime parameter 'a.b' clashes with another one at 'a'",
        ),
        ({"a.b": 2, "a": 1}, "Runtime parameter 'a' clashes with another one at 'a'"),
    ],
)
def test_bad_runtime_params_are_refused(
    tmp_path: Path, params: dict[Any, Any], message: str
) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": ""})

    with pytest.raises(ConfigError, match=message):
        ConfigLoader(conf, runtime_params=params)


def test_fast_path_and_omegaconf_path_give_identical_results(tmp_path: Path) -> None:
    plain = (
        "ints: 1\nfloats: [1.5, 1e3, .inf]\nbools: [true, false]\nnothing: null\n"
        "date: 2024-01-02\nmissing: '???'\nnested: {a: [1, {b: c}], 2: two}\n"
        "text: 'dollar $ and {braces}'\nempty: {}\nempty_list: []\n"
    )
    fast = write_tree(tmp_path / "fast", {"base/parameters.yml": plain})
    slow = write_tree(tmp_path / "slow", {"base/parameters.yml": plain + "copy: ${ints}\n"})

    fast_result = ConfigLoader(fast)["parameters"]
    slow_result = ConfigLoader(slow)["parameters"]

    assert slow_result.pop("copy") == 1
    assert fast_result == slow_result
    assert fast_result["date"] == datetime.date(2024, 1, 2)
    assert {k: type(v) for k, v in fast_result.items()} == {
        k: type(v) for k, v in slow_result.items()
    }


def test_absent_default_run_env_is_skipped(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": "a: 1\n"})

    loader = ConfigLoader(conf)

    assert loader.env == "local"
    assert loader["parameters"] == {"a": 1}


def test_explicit_env_that_does_not_exist_lists_existing_envs(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf", {"base/catalog.yml": "", "prod/catalog.yml": "", "staging/x.yml": ""}
    )

    with pytest.raises(MissingConfigError) as excinfo:
        ConfigLoader(conf, env="prd")

    assert str(excinfo.value) == (
        f"Environment 'prd' not found: '{conf / 'prd'}' does not exist (environments found: "
        "base, prod, staging); pass one of those or create the folder. Did you mean 'prod'?"
    )


def test_explicit_default_env_must_exist(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": ""})

    with pytest.raises(MissingConfigError, match=r"Environment 'local' not found"):
        ConfigLoader(conf, env="local")


def test_missing_base_env_names_its_path(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"local/catalog.yml": ""})

    with pytest.raises(MissingConfigError) as excinfo:
        ConfigLoader(conf)

    assert str(excinfo.value) == (
        f"Base environment folder '{conf / 'base'}' does not exist (environments found: "
        "local); create it to hold the configuration shared by every environment."
    )


@pytest.mark.parametrize(("argument", "value"), [("env", "../prod"), ("base_env", "..")])
def test_env_names_must_be_plain_folder_names(tmp_path: Path, argument: str, value: str) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": ""})

    with pytest.raises(ConfigError, match=rf"{argument}='{value}' is not an environment name"):
        ConfigLoader(conf, **{argument: value})


def test_missing_conf_source_is_named(tmp_path: Path) -> None:
    with pytest.raises(MissingConfigError) as excinfo:
        ConfigLoader(tmp_path / "nowhere")

    assert str(excinfo.value) == (
        f"Configuration source '{tmp_path / 'nowhere'}' does not exist; pass an existing conf "
        "folder or a .tar.gz, .tgz or .zip archive of one."
    )


def test_missing_packaged_conf_source_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = packaged_conf(tmp_path, monkeypatch, {"base/catalog.yml": ""})

    with pytest.raises(MissingConfigError, match=r"does not exist or is not a folder"):
        ConfigLoader(conf / "elsewhere")


def test_conf_source_file_must_be_an_archive(tmp_path: Path) -> None:
    source = tmp_path / "conf.rar"
    source.write_bytes(b"")

    with pytest.raises(ConfigError, match=r"conf\.rar' is a file but not a \.tar\.gz"):
        ConfigLoader(source)


def test_conf_source_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"conf_source must be a path .*, not int"):
        ConfigLoader(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["conf.tar.gz", "conf.zip"])
def test_corrupt_archive_is_named(tmp_path: Path, name: str) -> None:
    archive = tmp_path / name
    archive.write_bytes(b"this is not an archive")

    with pytest.raises(ConfigError, match=rf"Archive '.*{name}' cannot be read"):
        ConfigLoader(archive)


@pytest.mark.parametrize("member", ["../evil.yml", "/etc/evil.yml", "base/../../evil.yml"])
@pytest.mark.parametrize("maker", [make_tar, make_zip])
def test_archive_members_escaping_the_root_are_refused(
    tmp_path: Path, member: str, maker: Any
) -> None:
    archive = maker(
        tmp_path / ("conf.tgz" if maker is make_tar else "conf.zip"),
        {
            "base/catalog.yml": "a: 1\n",
            member: "b: 2\n",
        },
    )

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(archive)

    assert str(excinfo.value) == (
        f"Archive '{archive}' member '{member}' points outside the archive; rebuild the "
        "archive with paths relative to the conf folder."
    )


def test_tar_links_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "conf.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("base/catalog.yml")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(archive)

    assert str(excinfo.value) == (
        f"Archive '{archive}' member 'base/catalog.yml' is a link or special file; rebuild "
        "the archive with regular files and folders only."
    )


def test_zip_links_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "conf.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("base/parameters.yml", "a: 1\n")
        link = zipfile.ZipInfo("base/catalog.yml")
        link.external_attr = (0o120777) << 16
        zipped.writestr(link, "/etc/passwd")

    with pytest.raises(ConfigError, match=r"member 'base/catalog.yml' is a link or special file"):
        ConfigLoader(archive)


def test_archive_with_only_folder_entries_and_base_at_root(tmp_path: Path) -> None:
    archive = tmp_path / "conf.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("base/", "")
        zipped.writestr("./base/parameters.yml", "a: 1\n")

    assert ConfigLoader(archive)["parameters"] == {"a": 1}


def test_importing_the_package_loads_no_parser() -> None:
    code = (
        "import sys, kilnflow.config\n"
        "heavy = {'omegaconf', 'yaml', 'importlib_resources', 'tarfile', 'zipfile'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_configs_without_interpolation_skip_omegaconf(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf",
        {"base/catalog.yml": "cars: {type: A}\n", "base/parameters.yml": "a: ${b}\nb: 1\n"},
    )
    code = (
        "import sys\n"
        "from kilnflow.config import ConfigLoader\n"
        f"loader = ConfigLoader({str(conf)!r})\n"
        "loader['catalog']\n"
        "print('omegaconf' in sys.modules)\n"
        "loader['parameters']\n"
        "print('omegaconf' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.split() == ["False", "True"]


# --- Bounded reading: hostile configuration ends fast with one line naming the file.

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize("name", ["parameters", "catalog"])
def test_alias_bomb_is_refused_naming_the_file(tmp_path: Path, name: str) -> None:
    conf = write_tree(tmp_path / "conf", {f"base/{name}.yml": LAUGHS})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)[name]

    assert str(excinfo.value) == (
        f"{conf / 'base' / name}.yml, line 7: aliases expand this document to more than "
        "1,000,000 values (an alias bomb?); write the values out or use fewer nested aliases."
    )


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": "a: 1\nloop: &l {next: *l}\n"})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    assert str(excinfo.value) == (
        f"{conf / 'base' / 'catalog.yml'}, line 2: alias *l refers to a collection that "
        "contains it; configuration cannot be recursive."
    )


def test_anchors_and_merge_keys_within_bounds_still_work(tmp_path: Path) -> None:
    text = (
        "_defaults: &defaults\n  type: JSONDataset\n  save_args: {indent: 2}\n"
        "cars:\n  <<: *defaults\n  filepath: cars.json\n"
        "trucks:\n  <<: *defaults\n  type: TextDataset\n  filepath: trucks.txt\n"
    )
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": text})

    assert ConfigLoader(conf)["catalog"] == {
        "cars": {"type": "JSONDataset", "save_args": {"indent": 2}, "filepath": "cars.json"},
        "trucks": {"type": "TextDataset", "save_args": {"indent": 2}, "filepath": "trucks.txt"},
    }


@pytest.mark.parametrize(
    ("text", "line", "key", "first"),
    [
        ("cars:\n  type: A\nseed: 1\ncars:\n  type: B\n", 4, "cars", 1),
        ("cars:\n  type: A\n  filepath: x\n  type: B\n", 4, "type", 2),
        ("cars: {type: A, type: B}\n", 1, "type", 1),
        ("1: one\n'1': string one\n1: one again\n", 3, "1", 1),
    ],
)
def test_duplicate_yaml_keys_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, first: int
) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": text})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    assert str(excinfo.value) == (
        f"{conf / 'base' / 'catalog.yml'}, line {line}: key '{key}' is already defined on "
        f"line {first} of the same mapping; keep one definition."
    )


def test_same_key_in_sibling_mappings_is_no_duplicate(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf", {"base/parameters.yml": "a: {x: 1}\nb: {x: 2}\n'1': s\n1: i\n"}
    )

    assert ConfigLoader(conf)["parameters"] == {"a": {"x": 1}, "b": {"x": 2}, "1": "s", 1: "i"}


def test_duplicate_json_keys_name_file_and_key(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.json": '{"cars": {"a": 1, "a": 2}}'})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    assert str(excinfo.value) == (
        f"{conf / 'base' / 'catalog.json'}: key 'a' is defined twice in one object; keep one "
        "definition."
    )


def deep_yaml(levels: int) -> str:
    return "".join("  " * i + "k:\n" for i in range(levels)) + "  " * levels + "v: 1\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("parameters.yml", deep_yaml(600), ", line 51: nesting is deeper than 50 levels"),
        ("parameters.yml", "[" * 600 + "]" * 600, ", line 1: nesting is deeper than 50 levels"),
        (
            "parameters.yml",
            "a: " + "[" * 100_000 + "]" * 100_000,
            ", line 1: invalid YAML (exceeded maximum nesting depth)",
        ),
        ("parameters.json", "[" * 600 + "]" * 600, ": nesting is deeper than 50 levels"),
        ("parameters.json", "[" * 100_000 + "]" * 100_000, ": nesting is deeper than 50 levels"),
    ],
)
def test_deep_nesting_is_a_clear_error(tmp_path: Path, name: str, text: str, message: str) -> None:
    conf = write_tree(tmp_path / "conf", {f"base/{name}": text})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["parameters"]

    assert str(excinfo.value).startswith(f"{conf / 'base' / name}{message}")


def test_nesting_up_to_the_limit_resolves(tmp_path: Path) -> None:
    text = deep_yaml(49).replace("v: 1", "v: ${runtime_params:v,1}")
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": text})

    node = ConfigLoader(conf, runtime_params={"v": 2})["parameters"]
    for _ in range(49):
        node = node["k"]
    assert node == {"v": 2}


def test_link_loop_in_conf_names_the_link(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/catalog.yml": "a: 1\n"})
    (conf / "base" / "again").symlink_to(".")
    (conf / "base" / "more").symlink_to(".")

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    assert str(excinfo.value) == (
        f"{conf / 'base' / 'more'} is a link to a folder that contains it (a link loop); "
        "remove the link."
    )


def test_links_inside_conf_are_followed(tmp_path: Path) -> None:
    conf = write_tree(
        tmp_path / "conf", {"shared/catalog.yml": "a: 1\n", "shared/params.yml": "p: 1\n"}
    )
    (conf / "base").mkdir()
    (conf / "base" / "shared").symlink_to(conf / "shared")
    (conf / "base" / "parameters.yml").symlink_to(Path("shared", "params.yml"))

    loader = ConfigLoader(conf)

    assert (loader["catalog"], loader["parameters"]) == ({"a": 1}, {"p": 1})


@pytest.mark.parametrize("kind", ["file", "folder", "env"])
def test_links_leaving_conf_are_refused_naming_the_link(tmp_path: Path, kind: str) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": "a: 1\n"})
    outside = write_tree(tmp_path / "outside", {"catalog.yml": "stolen: 1\n"})
    link = {
        "file": conf / "base" / "catalog.yml",
        "folder": conf / "base" / "more",
        "env": conf / "local",
    }[kind]
    link.symlink_to(outside / "catalog.yml" if kind == "file" else outside)

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    target = outside / "catalog.yml" if kind == "file" else outside
    assert str(excinfo.value) == (
        f"{link} is a link to {target}, outside the configuration folder {conf}; copy the "
        "file into the configuration folder instead."
    )


@pytest.mark.parametrize("name", ["conf", "conf.tgz", "conf.zip"])
def test_fifo_as_conf_source_is_refused(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(fifo)

    assert str(excinfo.value) == (
        f"Configuration source '{fifo}' is not a regular file or folder (a FIFO, device or "
        "socket); pass a conf folder or a .tar.gz, .tgz or .zip archive of one."
    )


def test_device_as_conf_source_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^Configuration source '/dev/zero' is not a regular"):
        ConfigLoader("/dev/zero")


def test_fifo_inside_conf_is_refused_naming_it(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": "a: 1\n"})
    os.mkfifo(conf / "base" / "catalog.yml")

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(conf)["catalog"]

    assert str(excinfo.value) == (
        f"{conf / 'base' / 'catalog.yml'} is not a regular file (a FIFO, device or socket); "
        "replace it with a configuration file or remove it."
    )
    assert ConfigLoader(conf)["parameters"] == {"a": 1}


MIB = 1 << 20
# The final, empty deflate block that ends a stream.
DEFLATE_END = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
_ZEROS = zlib.compressobj(9, zlib.DEFLATED, -15)
# One MiB of zeros as deflate blocks that decode on their own.
DEFLATED_MIB = _ZEROS.compress(bytes(MIB)) + _ZEROS.flush(zlib.Z_FULL_FLUSH)


def deflated(data: bytes | int) -> tuple[bytes, int, int]:
    """Raw deflate blocks, CRC and size for ``data``, or for that many MiB of zeros.

    Every piece ends with a full flush, so it decodes on its own and pieces
    can be joined (add ``DEFLATE_END`` to close the stream). Zeros repeat one
    compressed MiB: gigabytes cost a few megabytes and are never built. Their
    CRC is left at 0: a reader that keeps to its bounds never inflates that
    far, and one that does fails with a different message.
    """
    if isinstance(data, bytes):
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)
        return packed, zlib.crc32(data), len(data)
    return DEFLATED_MIB * data, 0, data * MIB


def tar_gz_bomb(archive: Path, members: dict[str, bytes | int]) -> Path:
    """A .tar.gz of ``members`` (content, or MiB of zeros) in one gzip stream."""
    stream = b""
    for name, data in members.items():
        info = tarfile.TarInfo(name)
        info.size = len(data) if isinstance(data, bytes) else data * MIB
        stream += deflated(info.tobuf())[0] + deflated(data)[0]
        if isinstance(data, bytes) and len(data) % 512:
            stream += deflated(bytes(512 - len(data) % 512))[0]
    stream += deflated(bytes(1024))[0] + DEFLATE_END
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    archive.write_bytes(gzip_header + stream + bytes(8))
    return archive


def zip_bomb(archive: Path, members: dict[str, bytes | int]) -> Path:
    """A .zip of deflated ``members`` (content, or MiB of zeros), written field by field."""
    local, central = b"", b""
    for name, data in members.items():
        packed, crc, size = deflated(data)
        packed += DEFLATE_END
        encoded = name.encode()
        fields = struct.pack(
            "<HHHHHIIIHH", 20, 0, 8, 0, 0x21, crc, len(packed), size, len(encoded), 0
        )
        offset = struct.pack("<HHHII", 0, 0, 0, 0, len(local))
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields + offset + encoded
        local += b"PK\x03\x04" + fields + encoded + packed
    count = len(members)
    end = struct.pack("<HHHHIIH", 0, 0, count, count, len(central), len(local), 0)
    archive.write_bytes(local + central + b"PK\x05\x06" + end)
    return archive


def test_tar_member_inflating_to_gigabytes_is_refused_before_inflating(tmp_path: Path) -> None:
    archive = tar_gz_bomb(
        tmp_path / "conf.tar.gz", {"base/parameters.yml": b"a: 1\n", "base/data.bin": 3072}
    )

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(archive)

    assert str(excinfo.value) == (
        f"Archive '{archive}' inflates to more than 64 MiB (at member 'base/data.bin'); a "
        "configuration archive should hold configuration files only."
    )


def test_tar_of_many_large_members_stops_at_the_cap(tmp_path: Path) -> None:
    members: dict[str, bytes | int] = {f"base/part{i}.bin": 8 for i in range(256)}
    archive = tar_gz_bomb(tmp_path / "conf.tgz", members)

    with pytest.raises(ConfigError, match=r"inflates to more than 64 MiB \(at member 'base/part7"):
        ConfigLoader(archive)


def test_wanted_zip_member_inflating_to_gigabytes_is_refused(tmp_path: Path) -> None:
    archive = zip_bomb(tmp_path / "conf.zip", {"base/parameters.yml": 2048})

    with pytest.raises(ConfigError) as excinfo:
        ConfigLoader(archive)

    assert str(excinfo.value) == (
        f"{archive}/base/parameters.yml is larger than 16 MiB; configuration files must be "
        "small: move data out of the configuration."
    )


def test_zip_members_no_pattern_selects_are_never_inflated(tmp_path: Path) -> None:
    archive = zip_bomb(
        tmp_path / "conf.zip",
        {"base/parameters.yml": b"a: 1\n", "base/data.bin": 2048, "base/notes.yml": 2048},
    )

    assert ConfigLoader(archive)["parameters"] == {"a": 1}


def test_a_pattern_added_later_reads_its_archive_member(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "conf.zip", {"base/spark.yml": "cores: 2\n"})
    loader = ConfigLoader(archive)

    loader.config_patterns["spark"] = ["spark*"]

    assert loader["spark"] == {"cores": 2}


def test_oversized_file_in_a_folder_is_refused(tmp_path: Path) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": "a: 1\n"})
    with (conf / "base" / "catalog.yml").open("wb") as big:
        big.truncate(17 * MIB)

    with pytest.raises(ConfigError, match=r"catalog\.yml is larger than 16 MiB"):
        ConfigLoader(conf)["catalog"]


@pytest.mark.parametrize(
    "value",
    [
        "${oc.env:HOME}",
        "${ oc.env :HOME}",
        "${globals:x,'${oc.env:HOME}'}",
        r"\${oc.env:HOME}",
        "${oc.decode:'${oc.env:HOME}'}",
    ],
)
def test_environment_is_unreachable_outside_credentials(tmp_path: Path, value: str) -> None:
    conf = write_tree(tmp_path / "conf", {"base/parameters.yml": f"home: {json.dumps(value)}\n"})

    with pytest.raises(ConfigError, match=r"key 'home': .* is only allowed in credentials"):
        ConfigLoader(conf)["parameters"]


@pytest.mark.parametrize("resolver", ["oc.decode", "oc.create", "kilnflow_test_home"])
def test_only_allowed_resolvers_run_outside_credentials(
    tmp_path: Path, resolver: str, request: pytest.FixtureRequest
) -> None:
    from omegaconf import OmegaConf

    register = getattr(OmegaConf, "register_resolver", OmegaConf.register_new_resolver)
    register("kilnflow_test_home", lambda: os.environ["HOME"], replace=True)
    request.addfinalizer(lambda: OmegaConf.clear_resolver("kilnflow_test_home"))
    conf = write_tree(
        tmp_path / "conf",
        {
            "base/catalog.yml": f"cars: {{filepath: '${{{resolver}:x}}'}}\n",
            "base/credentials.yml": f"db: {{home: '${{{resolver}:}}'}}\n",
        },
    )
    loader = ConfigLoader(conf)

    with pytest.raises(ConfigError) as excinfo:
        loader["catalog"]

    assert str(excinfo.value) == (
        f"{conf / 'base' / 'catalog.yml'}, key 'cars.filepath': resolver '{resolver}' is only "
        "allowed in credentials (elsewhere: globals, oc.dict.keys, oc.dict.values, oc.select, "
        "runtime_params); move the value to a credentials file."
    )
    if resolver == "kilnflow_test_home":
        assert loader["credentials"] == {"db": {"home": os.environ["HOME"]}}
