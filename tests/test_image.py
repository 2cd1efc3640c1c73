import dataclasses
from pathlib import Path
from typing import Any

import pytest

from chutes.image import (
    DEFAULT_BASE,
    Add,
    AptInstall,
    Entrypoint,
    Env,
    Expose,
    FromBase,
    Image,
    ImageError,
    Maintainer,
    PipInstall,
    Python,
    Run,
    User,
    Workdir,
)

# The chute folder of these images: add() sources must exist there.
IMAGE_CONTEXT = Path(__file__).parent / "image_context"


def make() -> Image:
    return Image(username="mycompany", name="custom-ai", tag="1.0", folder=IMAGE_CONTEXT)


def full_image() -> Image:
    return (
        make()
        .from_base("nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04")
        .with_python("3.11")
        .apt_install(["git", "curl=7.88.1-10"])
        .pip_install("torch==2.3.0 uvicorn[standard]", index_url="https://download.pytorch.org/whl/cu121")
        .pip_install(["numpy>=1.26,<3", "git+https://github.com/org/repo.git@main"])
        .run_command("echo \"$HOME\" && ls -la | grep 'x'")
        .with_env("HF_HOME", "/cache dir")
        .set_workdir("/app")
        .set_user("1000:1000")
        .add(".", "/app")
        .copy("requirements.txt", "/app/requirements.txt")
        .with_entrypoint(["python", "-m", "app"])
        .with_maintainer("Jane <jane@example.com>")
        .expose(8000)
    )


def test_reference_and_str() -> None:
    image = make()
    assert image.reference == "mycompany/custom-ai:1.0"
    assert str(image) == "mycompany/custom-ai:1.0"
    assert image.readme == ""
    assert "mycompany/custom-ai:1.0" in repr(image)


def test_default_base() -> None:
    image = make()
    assert image.base == DEFAULT_BASE == "python:3.11-slim"
    assert image.steps == (FromBase(DEFAULT_BASE),)


def test_builder_records_typed_steps_in_order() -> None:
    image = full_image()
    assert image.base == "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04"
    assert image.steps == (
        FromBase("nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04"),
        Python("3.11"),
        AptInstall(("git", "curl=7.88.1-10")),
        PipInstall(("torch==2.3.0", "uvicorn[standard]"), "https://download.pytorch.org/whl/cu121"),
        PipInstall(("numpy>=1.26,<3", "git+https://github.com/org/repo.git@main")),
        Run("echo \"$HOME\" && ls -la | grep 'x'"),
        Env("HF_HOME", "/cache dir"),
        Workdir("/app"),
        User("1000:1000"),
        Add(".", "/app"),
        Add("requirements.txt", "/app/requirements.txt"),
        Entrypoint(("python", "-m", "app")),
        Maintainer("Jane <jane@example.com>"),
        Expose(8000),
    )


def test_methods_return_self() -> None:
    image = make()
    assert image.apt_install("git") is image
    assert image.with_env("A", "b") is image


def test_steps_are_immutable() -> None:
    image = make().apt_install("git")
    with pytest.raises(dataclasses.FrozenInstanceError):
        image.steps[1].packages = ("curl",)  # type: ignore[misc,union-attr]
    assert isinstance(image.steps, tuple)


def test_from_base_after_other_steps_is_rejected() -> None:
    with pytest.raises(
        ImageError, match=r"from_base\('ubuntu:22.04'\) must be called before any other step; apt_install"
    ):
        make().apt_install("git").from_base("ubuntu:22.04")


def test_from_base_twice_replaces() -> None:
    image = make().from_base("ubuntu:22.04").from_base("debian:12")
    assert image.steps == (FromBase("debian:12"),)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"username": "MyCompany"}, r"invalid image username 'MyCompany': use lowercase"),
        ({"username": "-acme"}, "invalid image username '-acme'"),
        ({"name": "my image"}, "invalid image name 'my image'"),
        ({"name": ""}, "image name must not be empty"),
        ({"tag": ".hidden"}, r"invalid image tag '.hidden'"),
        ({"tag": "x" * 129}, "invalid image tag"),
        ({"tag": "1.0\n"}, "image tag must be a single line"),
        ({"tag": 1.0}, "image tag must be a string, got float"),
    ],
)
def test_invalid_identity(kwargs: dict[str, Any], pattern: str) -> None:
    args: dict[str, Any] = {"username": "acme", "name": "app", "tag": "1.0", **kwargs}
    with pytest.raises(ImageError, match=pattern):
        Image(**args)


@pytest.mark.parametrize("tag", ["latest", "1.0.0-rc1", "v2_cuda12.4", "A" * 128])
def test_valid_tags(tag: str) -> None:
    assert Image("acme", "my.app_x-y", tag).tag == tag


def test_error_is_value_error() -> None:
    assert issubclass(ImageError, ValueError)


@pytest.mark.parametrize("package", ["git;rm", "Git", "git curl\n", "$(whoami)", "pkg>1"])
def test_invalid_apt_package(package: str) -> None:
    with pytest.raises(ImageError, match="apt_install package"):
        make().apt_install([package])


@pytest.mark.parametrize("packages", ["libgl1-mesa-glx", "g++", "python3.11-dev", "pkg=1.2-3", "libc6:amd64"])
def test_valid_apt_packages(packages: str) -> None:
    assert make().apt_install(packages).steps[-1] == AptInstall((packages,))


def test_apt_install_splits_string_on_spaces() -> None:
    assert make().apt_install("git  curl").steps[-1] == AptInstall(("git", "curl"))


def test_empty_package_list() -> None:
    with pytest.raises(ImageError, match="pip_install needs at least one package"):
        make().pip_install([])


@pytest.mark.parametrize("package", ["torch;rm -rf /", "numpy && ls", "pkg`id`", "a|b", "numpy>=1.26\n", "x $(y)"])
def test_invalid_pip_package(package: str) -> None:
    with pytest.raises(ImageError, match="pip_install package"):
        make().pip_install([package])


@pytest.mark.parametrize(
    "package", ["torch==2.3.0", "numpy>=1.26", "uvicorn[standard]", "vllm[a,b]~=0.6.0", "zope.interface", "a!=1.0"]
)
def test_valid_pip_packages(package: str) -> None:
    assert make().pip_install(package).steps[-1] == PipInstall((package,))


def test_invalid_index_url() -> None:
    with pytest.raises(ImageError, match="invalid pip_install index_url 'ftp://x'"):
        make().pip_install("torch", index_url="ftp://x")


def test_run_command_rejects_nul_and_other_separators() -> None:
    with pytest.raises(ImageError, match="single line without control characters"):
        make().run_command("echo \0")
    for separator in ("\u2028", "\x85", "\x0b", "\x1b[2J"):
        with pytest.raises(ImageError, match="single line without control characters"):
            make().run_command(f"echo a{separator}b")
        with pytest.raises(ImageError, match="must be a single-line string"):
            make().with_env("GREETING", f"a{separator}b")
    assert make().run_command("printf 'a\tb'").steps[-1] == Run("printf 'a\tb'")
    with pytest.raises(ImageError, match="must not be empty"):
        make().run_command("  ")


@pytest.mark.parametrize("key", ["1ABC", "MY-VAR", "A B", ""])
def test_invalid_env_key(key: str) -> None:
    with pytest.raises(ImageError, match="environment variable name"):
        make().with_env(key, "x")


def test_env_value_rules() -> None:
    assert make().with_env("EMPTY", "").steps[-1] == Env("EMPTY", "")
    with pytest.raises(ImageError, match="environment variable A must be a single-line string"):
        make().with_env("A", "x\ny")
    with pytest.raises(ImageError, match="must be a single-line string, got 3"):
        make().with_env("A", 3)  # type: ignore[arg-type]


def test_invalid_paths_and_user() -> None:
    with pytest.raises(ImageError, match="set_workdir path must be a single line"):
        make().set_workdir("/app\n")
    with pytest.raises(ImageError, match="add dest must not be empty"):
        make().add(".", "")
    with pytest.raises(ImageError, match="invalid user 'root; id'"):
        make().set_user("root; id")


def test_invalid_python_version() -> None:
    with pytest.raises(ImageError, match="invalid python version '2.7'"):
        make().with_python("2.7")


def test_invalid_base() -> None:
    with pytest.raises(ImageError, match="invalid base image 'ubuntu 22.04'"):
        make().from_base("ubuntu 22.04")


def test_entrypoint_needs_arguments() -> None:
    with pytest.raises(ImageError, match="with_entrypoint expects arguments"):
        make().with_entrypoint()
    with pytest.raises(ImageError, match="with_entrypoint expects arguments"):
        make().with_entrypoint([])


def test_entrypoint_takes_arguments_or_a_list() -> None:
    assert make().with_entrypoint("python", "-m", "app").steps[-1] == Entrypoint(("python", "-m", "app"))
    assert make().with_entrypoint(["python", "-m", "app"]).steps[-1] == Entrypoint(("python", "-m", "app"))
    assert make().with_entrypoint("serve").steps[-1] == Entrypoint(("serve",))
    with pytest.raises(ImageError, match="with_entrypoint argument"):
        make().with_entrypoint("python", "")


@pytest.mark.parametrize("port", [0, 65536, True, "80"])
def test_invalid_port(port: Any) -> None:
    with pytest.raises(ImageError, match="expose port must be an integer from 1 to 65535"):
        make().expose(port)


def test_steps_data_shape() -> None:
    assert full_image().to_steps_data() == [
        {"from_base": "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04"},
        {"with_python": "3.11"},
        {"apt_install": ["git", "curl=7.88.1-10"]},
        {
            "pip_install": {
                "packages": ["torch==2.3.0", "uvicorn[standard]"],
                "index_url": "https://download.pytorch.org/whl/cu121",
            }
        },
        {"pip_install": ["numpy>=1.26,<3", "git+https://github.com/org/repo.git@main"]},
        {"run_command": "echo \"$HOME\" && ls -la | grep 'x'"},
        {"with_env": {"key": "HF_HOME", "value": "/cache dir"}},
        {"set_workdir": "/app"},
        {"set_user": "1000:1000"},
        {"add": {"source": ".", "dest": "/app"}},
        {"add": {"source": "requirements.txt", "dest": "/app/requirements.txt"}},
        {"with_entrypoint": ["python", "-m", "app"]},
        {"with_maintainer": "Jane <jane@example.com>"},
        {"expose": 8000},
    ]


def test_default_base_omitted_from_steps_data() -> None:
    assert make().apt_install("git").to_steps_data() == [{"apt_install": ["git"]}]


def test_steps_data_round_trip() -> None:
    image = full_image()
    rebuilt = Image.from_steps_data("mycompany", "custom-ai", "1.0", image.to_steps_data(), folder=IMAGE_CONTEXT)
    assert rebuilt == image
    assert rebuilt.steps == image.steps
    default = make().run_command("true")
    assert Image.from_steps_data("mycompany", "custom-ai", "1.0", default.to_steps_data()) == default


def test_from_steps_data_accepts_copy_alias_and_keyword_tables() -> None:
    image = Image.from_steps_data(
        "acme",
        "app",
        "1",
        [{"copy": {"source": "weights", "dest": "/b"}}, {"apt_install": {"packages": "git"}}],
        readme="hi",
        folder=IMAGE_CONTEXT,
    )
    assert image.steps[1:] == (Add("weights", "/b"), AptInstall(("git",)))
    assert image.readme == "hi"


def test_from_steps_data_unknown_step() -> None:
    with pytest.raises(ImageError, match=r"steps\[1\]: unknown step 'apt_instal'; did you mean 'apt_install'\?"):
        Image.from_steps_data("acme", "app", "1", [{"apt_install": "git"}, {"apt_instal": "curl"}])


def test_from_steps_data_bad_shape() -> None:
    with pytest.raises(ImageError, match=r"steps\[0\]: expected a table with exactly one key"):
        Image.from_steps_data("acme", "app", "1", [{"apt_install": "git", "pip_install": "x"}])


def test_from_steps_data_bad_arguments() -> None:
    with pytest.raises(ImageError, match=r"steps\[0\] \(with_env\): bad arguments"):
        Image.from_steps_data("acme", "app", "1", [{"with_env": {"name": "A", "value": "b"}}])
    with pytest.raises(ImageError, match=r"steps\[0\] \(apt_install\): invalid apt_install package 'Git'"):
        Image.from_steps_data("acme", "app", "1", [{"apt_install": ["Git"]}])
    with pytest.raises(ImageError, match=r"steps\[1\] \(from_base\): from_base\('x'\) must be called before"):
        Image.from_steps_data("acme", "app", "1", [{"set_user": "app"}, {"from_base": "x"}])


# -- the chutes SDK's builder forms -------------------------------------------------------------------------


def test_multi_line_run_command_becomes_one_line() -> None:
    command = """
        apt-get update && \\
            apt-get install -y git
        # a comment line

        pip install --upgrade pip
        echo 'a  b' |
            wc -c
        true
            && echo done
    """
    [step] = make().run_command(command).steps[1:]
    assert step == Run(
        "apt-get update && apt-get install -y git && pip install --upgrade pip && echo 'a  b' | wc -c "
        "&& true && echo done"
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("echo 'a\nb'", "opens a quote it does not close"),
        ("cat <<EOF\nhello\nEOF", "here-document"),
        ("\n  # only a comment\n", "must not be empty"),
    ],
)
def test_multi_line_run_command_that_cannot_be_one_line(command: str, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        make().run_command(command)


def test_multi_line_run_command_renders_as_one_run() -> None:
    from chutes.render.dockerfile import render_step

    [step] = make().run_command("apt-get update\napt-get install -y curl").steps[1:]
    assert render_step(step) == ["RUN apt-get update && apt-get install -y curl"]


def test_with_python_defaults_to_the_documented_version() -> None:
    from chutes.image import DEFAULT_PYTHON

    assert make().with_python().steps[-1] == Python(DEFAULT_PYTHON)
    assert DEFAULT_PYTHON == "3.12"


def test_apt_remove() -> None:
    from chutes.image import AptRemove
    from chutes.render.dockerfile import render_step

    image = make().apt_remove("build-essential git")
    assert image.steps[-1] == AptRemove(("build-essential", "git"))
    assert image.to_steps_data() == [{"apt_remove": ["build-essential", "git"]}]
    assert render_step(image.steps[-1])[0] == "RUN apt-get remove -y --purge build-essential git \\"
    with pytest.raises(ImageError, match="invalid apt_remove package"):
        make().apt_remove("Bad;rm")


def test_add_source_must_exist_in_the_chutes_folder(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"0")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "a.json").write_text("{}")
    image = Image(username="acme", name="app", tag="1", folder=tmp_path)
    image.add("model.bin", "/app/model.bin").add("configs/", "/app/configs/").add("configs/*.json", "/etc/app/")
    with pytest.raises(ImageError, match=r"add source 'missing.json' does not exist in the chute's folder"):
        image.add("missing.json", "/app/")
    with pytest.raises(ImageError, match=r"steps\[0\] \(add\): add source 'nope'"):
        Image.from_steps_data("acme", "app", "1", [{"add": {"source": "nope", "dest": "/x"}}], folder=tmp_path)


def test_add_source_defaults_to_the_creating_modules_folder() -> None:
    image = Image(username="acme", name="app", tag="1")
    assert image.folder == Path(__file__).parent
    image.add("image_context/requirements.txt", "/app/requirements.txt")
