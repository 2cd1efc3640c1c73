from pathlib import Path

import pytest
from render_tools import hadolint

from chutes.chute import Chute
from chutes.image import Add, Env, Image, Run, Workdir
from chutes.render.dockerfile import render_dockerfile, render_step, secret_env_keys
from chutes.render.quoting import RenderError
from chutes.target import load_target

HEALTHCHECK = (
    "HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD "
    '["python3", "-c", "import sys, urllib.request; sys.exit(0 if '
    "urllib.request.urlopen('http://127.0.0.1:8000/_health', timeout=4).status == 200 else 1)\"]"
)


def lines(text: str) -> list[str]:
    return text.splitlines()


# The chute folder of these images: add() sources must exist there.
IMAGE_CONTEXT = Path(__file__).parent / "image_context"


def image() -> Image:
    return Image(username="mycompany", name="custom-ai", tag="1.0", folder=IMAGE_CONTEXT)


def test_plain_string_image_is_the_base() -> None:
    chute = Chute(username="me", name="plain", image="python:3.11", tagline="Says hi")
    out = lines(render_dockerfile(chute, serve_target="chute.toml"))
    assert "FROM python:3.11" in out
    assert "LABEL org.opencontainers.image.title=plain \\" in out
    assert '      org.opencontainers.image.description="Says hi"' in out
    assert out[-7:] == [
        "COPY app /app",
        "ENV CHUTES_DATA_DIR=/var/lib/chutes",
        "USER 1000",
        "EXPOSE 8000",
        HEALTHCHECK,
        "ENTRYPOINT []",
        'CMD ["python3", "-m", "chutes", "serve", "chute.toml", "--host", "0.0.0.0", "--port", "8000"]',
    ]
    assert out.index("COPY framework /opt/chutes-framework") < out.index("USER 1000")
    assert "RUN pip install --no-cache-dir /opt/chutes-framework" in out
    assert "COPY app /app" in out


def test_image_steps_render_in_order() -> None:
    img = (
        image()
        .from_base("nvidia/cuda:12.4.1-runtime-ubuntu22.04")
        .with_python("3.11")
        .apt_install(["git", "curl=7.81.0-1"])
        .pip_install("torch==2.3.0 uvicorn[standard] numpy>=1.26", index_url="https://download.pytorch.org/whl/cu121")
        .pip_install(["transformers==4.44.0"])
        .with_env("HF_HOME", "/cache")
        .run_command("python -c 'import torch' && echo ok")
        .set_workdir("/srv")
        .add("weights/", "/models/")
        .with_maintainer("Jane <jane@example.com>")
        .expose(9000)
    )
    chute = Chute(username="me", name="gpu", image=img)
    out = lines(render_dockerfile(chute, serve_target="chute.toml"))
    start = out.index("FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04")
    setup = out[
        out.index("    PIP_DISABLE_PIP_VERSION_CHECK=1") + 1 : out.index("COPY framework /opt/chutes-framework")
    ]
    assert start == 3
    assert setup == [
        "COPY --from=ghcr.io/astral-sh/uv:0.8.4 /uv /usr/local/bin/uv",
        "ENV UV_PYTHON_INSTALL_DIR=/opt/python",
        "RUN uv venv --seed --python 3.11 /opt/venv",
        'ENV VIRTUAL_ENV=/opt/venv PATH="/opt/venv/bin:$PATH"',
        "# hadolint ignore=DL3008",
        "RUN apt-get update \\",
        "    && apt-get install -y --no-install-recommends git curl=7.81.0-1 \\",
        "    && rm -rf /var/lib/apt/lists/*",
        "# hadolint ignore=DL3013",
        "RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cu121 "
        "torch==2.3.0 'uvicorn[standard]' 'numpy>=1.26'",
        "RUN pip install --no-cache-dir transformers==4.44.0",
        "ENV HF_HOME=/cache",
        "RUN python -c 'import torch' && echo ok",
        "WORKDIR /srv",
        "COPY app/weights/ /models/",
        'LABEL maintainer="Jane <jane@example.com>"',
        "EXPOSE 9000",
    ]
    # The image's own EXPOSE differs from the serving port, so 8000 is exposed too.
    assert "EXPOSE 8000" in out


def test_image_user_is_kept_and_framework_installed_as_root() -> None:
    chute = Chute(username="me", name="own-user", image=image().set_user("app"))
    out = lines(render_dockerfile(chute, serve_target="chute.toml"))
    assert out.index("USER app") < out.index("USER root") < out.index("COPY framework /opt/chutes-framework")
    assert "RUN mkdir -p /var/lib/chutes && chown app /var/lib/chutes" in out
    assert out[-5] == "USER app"


@pytest.mark.parametrize("user", ["root", "0", "0:0", "root:root"])
def test_root_image_user_still_serves_as_the_non_root_user(user: str, tmp_path: Path) -> None:
    chute = Chute(username="me", name="rooted", image=image().set_user(user).apt_install("git"))
    text = render_dockerfile(chute, serve_target="chute.toml")
    out = lines(text)
    assert [line for line in out if line.startswith("USER ")] == [f"USER {user}", "USER 1000"]
    assert hadolint(text, tmp_path).returncode == 0


def test_secret_looking_environment_variables_are_flagged() -> None:
    img = image().with_env("HF_TOKEN", "hf_abc").with_env("TOKENIZERS_PARALLELISM", "false").with_env("API_KEY", "")
    assert secret_env_keys(img) == ["HF_TOKEN"]
    assert secret_env_keys("python:3.11") == []
    out = lines(render_dockerfile(Chute(username="me", name="leaky", image=img), serve_target="chute.toml"))
    warning = out.index("ENV HF_TOKEN=hf_abc") - 1
    assert out[warning].startswith("# warning: HF_TOKEN looks like a secret")
    assert not out[out.index("ENV TOKENIZERS_PARALLELISM=false") - 1].startswith("# warning")


def test_copy_of_the_whole_app_is_not_repeated() -> None:
    chute = Chute(username="me", name="app", image=image().set_workdir("/app").add(".", "/app"))
    out = lines(render_dockerfile(chute, serve_target="chute.toml"))
    assert out.count("COPY app /app") == 1


def test_injection_in_env_values_is_quoted() -> None:
    img = image().with_env("GREETING", 'say "hi" $(id) `id` ${HOME}; rm -rf / \\')
    out = lines(render_dockerfile(Chute(username="me", name="env", image=img), serve_target="chute.toml"))
    assert 'ENV GREETING="say \\"hi\\" \\$(id) `id` \\${HOME}; rm -rf / "\\\\""' in out


def test_serve_target_with_quotes_and_spaces_stays_one_argument() -> None:
    chute = Chute(username="me", name="odd", image="python:3.11")
    out = render_dockerfile(chute, serve_target='my specs/chute "x" $(id).toml')
    assert 'CMD ["python3", "-m", "chutes", "serve", "my specs/chute \\"x\\" $(id).toml", "--host"' in out


def test_run_commands_that_could_spill_over_are_wrapped() -> None:
    assert render_step(Run("echo $(date) > /tmp/x")) == ["RUN echo $(date) > /tmp/x"]
    assert render_step(Run("echo done \\")) == ["RUN /bin/sh -c 'echo done \\'"]
    assert render_step(Run("cat <<EOF")) == ["RUN /bin/sh -c 'cat <<EOF'"]
    assert render_step(Run('["rm", "-rf", "/"]')) == ['RUN /bin/sh -c \'["rm", "-rf", "/"]\'']


def test_paths_with_spaces_use_json_or_quotes() -> None:
    assert render_step(Add("my models", "/opt/my models")) == ['COPY ["app/my models", "/opt/my models"]']
    assert render_step(Workdir("/srv/my app")) == ['WORKDIR "/srv/my app"']


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (Env("X", "a\nRUN evil"), "environment variable X must be a single line without control characters"),
        (Env("X", "a\0b"), "environment variable X must be a single line"),
        (Env("X", "a\u2028RUN evil"), "environment variable X must be a single line"),
        (Run("echo a\x85USER root"), "run_command command must be a single line"),
        (Add("a", "/x\u2029y"), "add dest must be a single line"),
        (Add("a", "--chown=0:0"), "add dest must not start with '-', got '--chown=0:0'"),
        (Run("echo hi\nUSER root"), "run_command command must be a single line"),
        (Workdir("relative/dir"), "set_workdir path must be an absolute path like '/app', got 'relative/dir'"),
        (Workdir("/a\nb"), "set_workdir path must be a single line"),
        (Add("../secrets", "/x"), "add source must be a path inside the chute's folder"),
        (Add("/etc/passwd", "/x"), "add source must be a path inside the chute's folder"),
        (Add("a$HOME", "/x"), r"add source must not contain \$"),
        (Add("a", '/x"y'), 'add dest must not contain "'),
    ],
)
def test_unsafe_values_are_rejected(step: Env | Run | Workdir | Add, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render_step(step)


def test_bad_port_is_rejected() -> None:
    with pytest.raises(RenderError, match="port must be an integer from 1 to 65535, got 0"):
        render_dockerfile("python:3.11", port=0)


def test_an_image_or_a_base_renders_alone() -> None:
    assert "FROM python:3.12-slim" in render_dockerfile("python:3.12-slim")
    text = render_dockerfile(image().apt_install("git"))
    assert "FROM python:3.11-slim" in text
    assert "    && apt-get install -y --no-install-recommends git \\" in text


def test_module_chute_serves_its_module_attribute() -> None:
    chute = load_target("examples.textkit_chute:chute")
    assert 'CMD ["python3", "-m", "chutes", "serve", "examples.textkit_chute:chute",' in render_dockerfile(chute)


def test_user_template_overrides_a_block(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile.j2").write_text(
        '{% extends "base/Dockerfile.j2" %}\n{% block setup %}\n{{ super() }}RUN echo custom-setup\n{% endblock %}\n'
    )
    text = render_dockerfile(Chute(username="me", name="c", image=image().with_env("A", "1")), templates_dir=tmp_path)
    out = lines(text)
    assert out[out.index("ENV A=1") + 1] == "RUN echo custom-setup"
    assert out[-1].startswith("CMD [")


def test_strict_undefined_in_a_user_template(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile.j2").write_text("FROM {{ no_such_variable }}\n")
    with pytest.raises(ValueError, match="'no_such_variable' is undefined"):
        render_dockerfile("python:3.11", templates_dir=tmp_path)


def test_missing_templates_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist or is not a folder"):
        render_dockerfile("python:3.11", templates_dir=tmp_path / "nope")


@pytest.mark.parametrize(
    "img",
    [
        "python:3.11",
        image()
        .from_base("nvidia/cuda:12.4.1-runtime-ubuntu22.04")
        .with_python("3.11")
        .apt_install(["git", "curl"])
        .pip_install("torch==2.3.0 uvicorn[standard] numpy>=1.26")
        .with_env("X", 'a "b" $(id) `c` \\')
        .with_env("Y", "ends\\")
        .run_command("echo done \\")
        .run_command("cat <<EOF")
        .set_workdir("/my app")
        .add("my file", "/app/x")
        .with_maintainer("Jane <j@example.com>"),
        image().set_user("app").with_entrypoint(["tini", "--"]).expose(8000),
    ],
    ids=["string", "full", "user"],
)
def test_hadolint_finds_no_warning(img: str | Image, tmp_path: Path) -> None:
    chute = Chute(username="me", name="lint", image=img, tagline='Quotes " and $(x)')
    result = hadolint(render_dockerfile(chute, serve_target="chute.toml"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
